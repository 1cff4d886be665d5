// The Llama-style decoder as dispatch lists: forward (saving what backward needs) and backward.
//
// Both are built once per (config, batch shape) and encoded every step. Per block:
//   xn1 = rmsnorm(x) ; q,k,v = xn1·Wq,k,v^T (+b) ; rope(q,k) ; att = attention(q,k,v)
//   xMid = x + att·Wo^T ; xn2 = rmsnorm(xMid) ; h = silu(xn2·Wg^T) * (xn2·Wu^T) ; xOut = xMid + h·Wd^T
// then xnF = rmsnorm(xOut) and logits = xnF·Wlm^T (Wlm is the embedding when tied). The embedding and
// the LM head go through src/model/vocab.ts, so they work on vocabulary row chunks and logits row blocks
// when those are larger than one binding.
// Full fine-tuning: gradients of weights are written (never accumulated) except the embedding's, which
// adds onto the LM head's when tied; the trainer clears the gradient buffers before backward.
// LoRA (weights with adapters, src/model/lora.ts): every targeted linear adds scale·(x·A^T)·B^T to its
// output; the base is frozen, so backward only carries dx through it and writes the adapters' gradients.
// A frozen base may store its matrices in f16 (src/model/params.ts): every linear reads its weight as matmul's
// operand B (forward x·W^T, backward dy·W), so it passes bF16 for them; the embedding and LM head go through
// vocab.ts, which reads each chunk's dtype. Norm weights and biases are always f32.

import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import type { Dispatch } from '../gpu/kernel';
import { attention, attentionBackward } from '../ops/attention';
import { matmul, sumRows } from '../ops/matmul';
import { rmsnorm, rmsnormBackward } from '../ops/rmsnorm';
import { rope } from '../ops/rope';
import { swiglu, swigluBackward } from '../ops/swiglu';
import type { Acts } from './activations';
import { headDim, type ModelConfig } from './config';
import { adapterOf, hasBias, LORA_MODULES, loraBackward, loraForward, loraName, type LoraTarget, type ModelWeights, targetDims } from './lora';
import { layerName, matrixDtype, type ParamBuffers } from './params';
import { blocksOf, embedTokens, embedTokensBackward, lmHead, lmHeadBackward } from './vocab';

export interface Shape {
  B: number;
  T: number;
}

function lmHeadName(cfg: ModelConfig): string {
  return cfg.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
}

/** y[M,N] = x[M,K]·W^T (+ bias), W stored [N,K] (in f16 when wF16). */
function linear(gpu: Gpu, x: View, w: View, wF16: boolean, y: View, M: number, N: number, K: number, bias?: View): Dispatch[] {
  return matmul(gpu, { a: x, b: w, bF16: wF16, c: y, M, N, K, transB: true, bias });
}

/** Backward of linear: dx[M,K] (+)= dy·W, and when the weight trains dW[N,K] = dy^T·x (and db = column sums of dy). */
function linearBackward(
  gpu: Gpu,
  a: { x: View; w: View; wF16: boolean; dy: View; dx: View; dw?: View; db?: View; M: number; N: number; K: number; accumulateDx: boolean },
): Dispatch[] {
  return [
    ...matmul(gpu, { a: a.dy, b: a.w, bF16: a.wF16, c: a.dx, M: a.M, N: a.K, K: a.N, accumulate: a.accumulateDx }),
    ...(a.dw ? matmul(gpu, { a: a.dy, b: a.x, c: a.dw, M: a.N, N: a.K, K: a.M, transA: true }) : []),
    ...(a.db ? sumRows(gpu, { x: a.dy, out: a.db, M: a.M, N: a.N }) : []),
  ];
}

/** Adapters need their u and du buffers: activations allocated with the same LoRA config. */
function checkLoraActs(p: ModelWeights, acts: Acts<View>): void {
  const missing = p.lora?.config.targets.find((t) => !acts.layers[0].lora[t]);
  if (p.lora && (missing || !acts.loraDu)) {
    throw new Error(`The weights carry LoRA adapters (${p.lora.config.targets.join(', ')}) but the activations were allocated without them; pass the LoRA config to allocateActs.`);
  }
}

/** Forward pass up to the logits. Reads tokens, positions and start from `acts`. */
export function buildForward(gpu: Gpu, cfg: ModelConfig, p: ModelWeights, acts: Acts<View>, { B, T }: Shape): Dispatch[] {
  checkLoraActs(p, acts);
  const BT = B * T;
  const C = cfg.dModel;
  const D = headDim(cfg);
  const [H, Hkv, F] = [cfg.nHeads, cfg.nKvHeads, cfg.dFF];
  const w = (l: number, rest: string) => p.view(layerName(l, rest));
  const f16 = (l: number, rest: string) => p.dtype(layerName(l, rest)) === 'f16';
  // A block's linear layer t: y = x·W^T (+ b), plus its adapter's scale·(x·A^T)·B^T.
  const proj = (l: number, t: LoraTarget, x: View, y: View): Dispatch[] => {
    const [N, K] = targetDims(cfg, t);
    const m = LORA_MODULES[t];
    const ad = adapterOf(p, l, t);
    return [
      ...linear(gpu, x, w(l, `${m}.weight`), f16(l, `${m}.weight`), y, BT, N, K, hasBias(cfg, t) ? w(l, `${m}.bias`) : undefined),
      ...(ad ? loraForward(gpu, { x, y, u: acts.layers[l].lora[t]!, ...ad, M: BT, N, K }) : []),
    ];
  };
  const out: Dispatch[] = [];
  out.push(...embedTokens(gpu, { tokens: acts.tokens, table: p.chunks('model.embed_tokens.weight'), out: acts.layers[0].xIn, rows: BT, C, V: cfg.vocab }));
  // Every residual add is fused into the norm that reads its sum (rmsnorm's `residual`): the attention
  // block's into post_attention_layernorm, the MLP block's into the next layer's input_layernorm or,
  // after the last layer, into the final norm.
  let pending: { a: View; b: View } | undefined; // the previous layer's MLP residual add, not yet encoded
  for (let l = 0; l < cfg.nLayers; l++) {
    const a = acts.layers[l];
    out.push(
      ...rmsnorm(gpu, { x: a.xIn, w: w(l, 'input_layernorm.weight'), y: a.xn1, rstd: a.rstd1, rows: BT, C, eps: cfg.normEps, residual: pending }),
      ...proj(l, 'q', a.xn1, a.q),
      ...proj(l, 'k', a.xn1, a.k),
      ...proj(l, 'v', a.xn1, a.v),
      ...rope(gpu, { x: a.q, positions: acts.positions, rows: BT, heads: H, D, theta: cfg.ropeTheta, also: { x: a.k, heads: Hkv } }),
      ...attention(gpu, { q: a.q, k: a.k, v: a.v, out: a.att, lse: a.lse, start: acts.start, B, Tq: T, Tk: T, H, Hkv, D }),
      ...proj(l, 'o', a.att, acts.proj),
      ...rmsnorm(gpu, { x: a.xMid, w: w(l, 'post_attention_layernorm.weight'), y: a.xn2, rstd: a.rstd2, rows: BT, C, eps: cfg.normEps, residual: { a: a.xIn, b: acts.proj } }),
      ...proj(l, 'gate', a.xn2, a.gate),
      ...proj(l, 'up', a.xn2, a.up),
      ...swiglu(gpu, { gate: a.gate, up: a.up, out: a.h, n: BT * F }),
      ...proj(l, 'down', a.h, acts.proj),
    );
    pending = { a: a.xMid, b: acts.proj }; // xNext = xMid + down: the next norm writes it, before anything reuses proj
  }
  out.push(
    ...rmsnorm(gpu, { x: acts.xOut, w: p.view('model.norm.weight'), y: acts.xnF, rstd: acts.rstdF, rows: BT, C, eps: cfg.normEps, residual: pending }),
    ...lmHead(gpu, { x: acts.xnF, w: p.chunks(lmHeadName(cfg)), logits: blocksOf(acts.logits, cfg.vocab), C, V: cfg.vocab }),
  );
  return out;
}

/**
 * Backward pass from dlogits (already in the blocks of acts.logits) to the gradients of what trains, in `g`: every
 * parameter (laid out like `p`), or, when `p` carries adapters, the adapters only (laid out like them).
 */
export function buildBackward(gpu: Gpu, cfg: ModelConfig, p: ModelWeights, g: ParamBuffers, acts: Acts<View>, { B, T }: Shape): Dispatch[] {
  checkLoraActs(p, acts);
  const BT = B * T;
  const C = cfg.dModel;
  const D = headDim(cfg);
  const [H, Hkv, F] = [cfg.nHeads, cfg.nKvHeads, cfg.dFF];
  const frozen = p.lora !== undefined;
  if (!frozen && matrixDtype(p.layout) === 'f16') {
    throw new Error('buildBackward: these weights store their matrices in f16, which only a frozen base under LoRA may do; full fine-tuning needs f32 weights (baseDtype f32).');
  }
  const w = (l: number, rest: string) => p.view(layerName(l, rest));
  const f16 = (l: number, rest: string) => p.dtype(layerName(l, rest)) === 'f16';
  /** The gradient of a base parameter, or undefined when the base is frozen. */
  const gb = (name: string) => (frozen ? undefined : g.view(name));
  const head = lmHeadName(cfg);
  const gw = (l: number, rest: string) => gb(layerName(l, rest));
  // A block's linear layer t, given dy: dx (+)= dy·W, the weight's (and bias's) gradient unless frozen,
  // then its adapter's gradients and dx += du·A.
  const proj = (l: number, t: LoraTarget, x: View, dy: View, dx: View, accumulateDx: boolean): Dispatch[] => {
    const [N, K] = targetDims(cfg, t);
    const m = LORA_MODULES[t];
    const ad = adapterOf(p, l, t);
    const db = hasBias(cfg, t) ? gw(l, `${m}.bias`) : undefined;
    return [
      ...linearBackward(gpu, { x, w: w(l, `${m}.weight`), wF16: f16(l, `${m}.weight`), dy, dx, dw: gw(l, `${m}.weight`), db, M: BT, N, K, accumulateDx }),
      ...(ad ? loraBackward(gpu, {
        x, dy, dx, u: acts.layers[l].lora[t]!, du: acts.loraDu!, ...ad, M: BT, N, K,
        dA: g.view(loraName(l, t, 'A')), dB: g.view(loraName(l, t, 'B')),
      }) : []),
    ];
  };
  const out: Dispatch[] = [];
  // LM head and final norm. With tied embeddings the head's gradient is written here and the
  // embedding's gradient is added to it at the end.
  out.push(
    ...lmHeadBackward(gpu, {
      x: acts.xnF, w: p.chunks(head), logits: blocksOf(acts.logits, cfg.vocab), C, V: cfg.vocab, dx: acts.dxn, dw: frozen ? undefined : g.chunks(head),
    }),
    ...rmsnormBackward(gpu, { dy: acts.dxn, x: acts.xOut, w: p.view('model.norm.weight'), rstd: acts.rstdF, dx: acts.dres, dw: gb('model.norm.weight'), rows: BT, C }),
  );
  for (let l = cfg.nLayers - 1; l >= 0; l--) {
    const a = acts.layers[l];
    out.push(
      // MLP: dres is the gradient of xOut = xMid + down(h).
      ...proj(l, 'down', a.h, acts.dres, acts.dh, false),
      ...swigluBackward(gpu, { gate: a.gate, up: a.up, dout: acts.dh, dgate: acts.dgate, dup: acts.dup, n: BT * F }),
      ...proj(l, 'gate', a.xn2, acts.dgate, acts.dxn, false),
      ...proj(l, 'up', a.xn2, acts.dup, acts.dxn, true),
      ...rmsnormBackward(gpu, { dy: acts.dxn, x: a.xMid, w: w(l, 'post_attention_layernorm.weight'), rstd: a.rstd2, dx: acts.dres, dw: gw(l, 'post_attention_layernorm.weight'), rows: BT, C, accumulate: true }),
      // Attention: dres is now the gradient of xMid = xIn + o_proj(att).
      ...proj(l, 'o', a.att, acts.dres, acts.datt, false),
      ...attentionBackward(gpu, { q: a.q, k: a.k, v: a.v, out: a.att, dout: acts.datt, lse: a.lse, start: acts.start, dq: acts.dq, dk: acts.dk, dv: acts.dv, delta: acts.delta, B, T, H, Hkv, D }),
      ...rope(gpu, { x: acts.dq, positions: acts.positions, rows: BT, heads: H, D, theta: cfg.ropeTheta, inverse: true, also: { x: acts.dk, heads: Hkv } }),
      ...proj(l, 'q', a.xn1, acts.dq, acts.dxn, false),
      ...proj(l, 'k', a.xn1, acts.dk, acts.dxn, true),
      ...proj(l, 'v', a.xn1, acts.dv, acts.dxn, true),
      ...rmsnormBackward(gpu, { dy: acts.dxn, x: a.xIn, w: w(l, 'input_layernorm.weight'), rstd: a.rstd1, dx: acts.dres, dw: gw(l, 'input_layernorm.weight'), rows: BT, C, accumulate: true }),
    );
  }
  if (!frozen) {
    out.push(
      ...embedTokensBackward(gpu, {
        dout: acts.dres, unique: acts.tokUnique, offsets: acts.tokOffsets, positions: acts.tokPositions,
        dtable: g.chunks('model.embed_tokens.weight'), rows: BT, C, V: cfg.vocab, accumulate: cfg.tieEmbeddings,
      }),
    );
  }
  return out;
}
