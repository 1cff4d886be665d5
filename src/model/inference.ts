// The model for generation: a forward pass over Tq new tokens per sequence that appends their keys and
// values to a KV cache and produces the logits of each sequence's last position.
//
// Prefill runs it once with Tq = the (left-padded) prompt length; decoding runs it with Tq = 1, once per
// token. Only the write position (pos0), the RoPE positions and the attention offset change between
// steps; they are rewritten in place, so a decode step allocates nothing. The blocks are
// src/model/block.ts's, as in training; here attention appends k and v to the cache and attends over it.
//
// Weights with LoRA adapters (src/model/lora.ts) add scale·(x·A^T)·B^T to each targeted linear, as in
// training: two rank-r matmuls per target, cheap next to the base layer, with no merged copy of the
// weights and nothing to undo after generation. The generator passes its weights through unchanged.
// A base stored in f16 (src/model/params.ts) is read as packed halves by every linear (bF16) and, through
// vocab.ts, by the embedding gather and the LM head; arithmetic stays f32.
//
// The embedding and LM head go through src/model/vocab.ts (vocabulary row chunks when the tensor is
// larger than one binding); the logits [B, V] stay one buffer, which sampling reads whole, so a batch
// is refused when they, a layer's KV cache or a step's activations exceed one binding (maxBatchForBindings).

import { createBuffer, upload, type View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, encode } from '../gpu/kernel';
import { add } from '../ops/add';
import { attention, type AttentionArgs, setAttentionOffset } from '../ops/attention';
import { kvWrite, type KvWriteArgs, setKvWritePos } from '../ops/kv_cache';
import { rmsnorm } from '../ops/rmsnorm';
import { blockForward, type BlockBuffers } from './block';
import { headDim, type ModelConfig } from './config';
import type { ModelWeights } from './lora';
import { embedTokens, lmHead } from './vocab';

/** Keys and values of every layer for B sequences of up to S positions. */
export interface KvCache {
  B: number;
  S: number;
  k: View[]; // per layer [B, S, Hkv*D]
  v: View[];
}

/** Bytes of one sequence's keys (or values) in one layer's cache of S positions. */
export function kvRowBytes(cfg: ModelConfig, S: number): number {
  return S * cfg.nKvHeads * headDim(cfg) * 4;
}

export function kvCacheBytes(cfg: ModelConfig, B: number, S: number): number {
  return 2 * cfg.nLayers * B * kvRowBytes(cfg, S);
}

/** Per sequence, the floats of each generation buffer that grows with the batch (S cache positions, Tq new tokens). */
function perSequenceFloats(cfg: ModelConfig, S: number, Tq: number): [string, number][] {
  const D = headDim(cfg);
  return [
    ['one layer\'s KV cache', S * cfg.nKvHeads * D],
    ['the logits', cfg.vocab],
    ['the MLP activations', Tq * cfg.dFF],
    ['the attention activations', Tq * cfg.nHeads * D],
    ['the hidden states', Tq * cfg.dModel],
  ];
}

/** The largest batch whose generation buffers (cache of S positions, steps of Tq tokens) each fit one binding. */
export function maxBatchForBindings(cfg: ModelConfig, S: number, Tq: number, maxBindingBytes: number): number {
  return Math.min(...perSequenceFloats(cfg, S, Tq).map(([, f]) => Math.floor(maxBindingBytes / (4 * f))));
}

/** Refuses a batch B with a generation buffer larger than one binding, naming the largest batch that fits. */
function checkBindings(gpu: Gpu, cfg: ModelConfig, B: number, S: number, Tq: number): void {
  const limit = gpu.limits.maxStorageBufferBindingSize;
  for (const [what, f] of perSequenceFloats(cfg, S, Tq)) {
    if (B * f * 4 <= limit) continue;
    const fit = maxBatchForBindings(cfg, S, Tq, limit);
    throw new Error(
      `Generation for ${B} sequences (${S} cache positions, ${Tq} token${Tq === 1 ? '' : 's'} per step) needs ${B * f * 4} bytes for ${what}, more than this GPU can bind at once ` +
        `(maxStorageBufferBindingSize ${limit} bytes). ` +
        (fit >= 1 ? `Use a generation batch of at most ${fit}.` : 'Use shorter sequences or a smaller model.'),
    );
  }
}

export function createKvCache(gpu: Gpu, cfg: ModelConfig, B: number, S: number): KvCache {
  if (S > cfg.maxSeq) throw new Error(`KV cache of ${S} positions exceeds the model's maxSeq (${cfg.maxSeq}).`);
  checkBindings(gpu, cfg, B, S, 1);
  const n = B * S * cfg.nKvHeads * headDim(cfg) * 4;
  return {
    B, S,
    k: Array.from({ length: cfg.nLayers }, (_, l) => createBuffer(gpu, n, `kv.k${l}`)),
    v: Array.from({ length: cfg.nLayers }, (_, l) => createBuffer(gpu, n, `kv.v${l}`)),
  };
}

/** Bytes of the per-step buffers of a plan (besides the cache), for memory estimates. */
export function inferenceActivationBytes(cfg: ModelConfig, B: number, Tq: number): number {
  const BT = B * Tq;
  const HD = cfg.nHeads * headDim(cfg);
  const KD = cfg.nKvHeads * headDim(cfg);
  const gateUp = Tq === 1 ? BT * 2 * cfg.dFF : 0; // decoding's packed gate and up (createInferencePlan)
  const floats = BT * (4 * cfg.dModel + 2 * HD + 2 * KD + 3 * cfg.dFF + 3) + B * cfg.nHeads * Tq + B * (2 * cfg.dModel + 1 + cfg.vocab) + B + gateUp;
  return floats * 4;
}

export interface InferencePlan {
  B: number;
  Tq: number;
  tokens: View; // [B, Tq] u32 input ids
  positions: View; // [B, Tq] u32 RoPE positions
  start: View; // [B] u32 first real position of each sequence (left padding)
  logits: View; // [B, V] logits of the last position of each sequence
  /** Encodes the plan at write position pos0 (rows pos0..pos0+Tq-1 of the cache). */
  encode(enc: GPUCommandEncoder, pos0: number): void;
  /** Every dispatch of one encode, in order (for profiling: bench/profile.ts times them one by one). */
  dispatches: readonly Dispatch[];
}

/** Builds the dispatches for Tq new tokens per sequence. `start` may be shared between plans. */
export function createInferencePlan(gpu: Gpu, cfg: ModelConfig, p: ModelWeights, cache: KvCache, Tq: number, start?: View): InferencePlan {
  const B = cache.B;
  const S = cache.S;
  const BT = B * Tq;
  const C = cfg.dModel;
  const D = headDim(cfg);
  const [H, Hkv, F, V] = [cfg.nHeads, cfg.nKvHeads, cfg.dFF, cfg.vocab];
  checkBindings(gpu, cfg, B, S, Tq);
  const buf = (floats: number, name: string) => createBuffer(gpu, floats * 4, `infer${Tq}.${name}`);
  const tokens = buf(BT, 'tokens');
  const positions = buf(BT, 'positions');
  const startView = start ?? buf(B, 'start');
  const xA = buf(BT * C, 'xA');
  const xB = buf(BT * C, 'xB');
  const xn = buf(BT * C, 'xn');
  const rstd = buf(BT, 'rstd');
  const q = buf(BT * H * D, 'q');
  const k = buf(BT * Hkv * D, 'k');
  const v = buf(BT * Hkv * D, 'v');
  const att = buf(BT * H * D, 'att');
  const lse = buf(B * H * Tq, 'lse');
  const proj = buf(BT * C, 'proj');
  const gate = buf(BT * F, 'gate');
  const up = buf(BT * F, 'up');
  const h = buf(BT * F, 'h');
  const last = Tq === 1 ? xA : buf(B * C, 'last');
  const lastN = buf(B * C, 'lastNorm');
  const lastR = buf(B, 'lastRstd');
  const logits = buf(B * V, 'logits');
  const u = p.lora ? buf(BT * p.lora.config.rank, 'loraU') : undefined; // x·A^T, used at once (not in inferenceActivationBytes: tiny)

  const body: Dispatch[] = [...embedTokens(gpu, { tokens, table: p.chunks('model.embed_tokens.weight'), out: xA, rows: BT, C, V })];
  const attnCalls: { ds: Dispatch[]; args: AttentionArgs }[] = [];
  const kvCalls: { ds: Dispatch[]; args: KvWriteArgs }[] = [];
  // One buffer set for every block (src/model/block.ts): the stream alternates between xA (entering a block)
  // and xB (after its attention); both norms share xn and rstd, and every LoRA target the u scratch. The
  // last block's MLP residual add goes into the final norm when that norm reads the stream itself (Tq = 1),
  // else it is its own dispatch.
  // Decoding (Tq = 1) computes gate and up with one matmul where the weights allow (block.ts, gateUpWeight).
  const gateUp = Tq === 1 ? buf(BT * 2 * F, 'gateUp') : undefined;
  const x: BlockBuffers = { xIn: xA, rstd1: rstd, xn1: xn, q, k, v, att, xMid: xB, rstd2: rstd, xn2: xn, gate, up, h, proj, loraU: u && (() => u), gateUp };
  let pending: { a: View; b: View } | undefined; // the previous block's MLP residual add, into xA
  for (let l = 0; l < cfg.nLayers; l++) {
    const kvArgs: KvWriteArgs = { src: k, cache: cache.k[l], B, Tq, S, W: Hkv * D, also: { src: v, cache: cache.v[l] } };
    const aArgs: AttentionArgs = { q, k: cache.k[l], v: cache.v[l], out: att, lse, start: startView, B, Tq, Tk: S, H, Hkv, D, qOffset: 0 };
    const kvW = kvWrite(gpu, kvArgs); // keys and values in one dispatch
    const aD = attention(gpu, aArgs);
    kvCalls.push({ ds: kvW, args: kvArgs });
    attnCalls.push({ ds: aD, args: aArgs });
    body.push(...blockForward(gpu, cfg, p, { layer: l, rows: BT, x, positions, residual: pending, attend: () => [...kvW, ...aD] }));
    pending = { a: xB, b: proj };
  }
  const fuseLast = last === xA;
  if (!fuseLast && pending) body.push(...add(gpu, { ...pending, out: xA, n: BT * C }));
  const head: Dispatch[] = [
    ...rmsnorm(gpu, { x: last, w: p.view('model.norm.weight'), y: lastN, rstd: lastR, rows: B, C, eps: cfg.normEps, residual: fuseLast ? pending : undefined }),
    ...lmHead(gpu, { x: lastN, w: p.chunks(cfg.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'), logits: [{ view: logits, first: 0, rows: B }], C, V }),
  ];

  return {
    B, Tq, tokens, positions, start: startView, logits, dispatches: [...body, ...head],
    encode(enc, pos0) {
      for (const c of kvCalls) setKvWritePos(gpu, c.ds, c.args, pos0);
      for (const c of attnCalls) setAttentionOffset(gpu, c.ds, c.args, pos0);
      let pass = enc.beginComputePass();
      encode(pass, body);
      pass.end();
      // Gather the last position of each sequence (all prompts end at Tq-1: they are left-padded).
      if (last !== xA) for (let b = 0; b < B; b++) enc.copyBufferToBuffer(xA.buffer, xA.offset + ((b * Tq + Tq - 1) * C) * 4, last.buffer, last.offset + b * C * 4, C * 4);
      pass = enc.beginComputePass();
      encode(pass, head);
      pass.end();
    },
  };
}

/** Writes RoPE positions for rows pos0..pos0+Tq-1 given each sequence's start. */
export function uploadPositions(gpu: Gpu, plan: InferencePlan, start: ArrayLike<number>, pos0: number): void {
  const pos = new Uint32Array(plan.B * plan.Tq);
  for (let b = 0; b < plan.B; b++) for (let t = 0; t < plan.Tq; t++) pos[b * plan.Tq + t] = Math.max(0, pos0 + t - start[b]);
  upload(gpu, plan.positions, pos);
}
