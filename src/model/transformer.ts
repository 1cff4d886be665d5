// The Llama-style decoder as dispatch lists: forward (saving what backward needs) and backward.
//
// Both are built once per (config, batch shape) and encoded every step. Per block:
//   xn1 = rmsnorm(x) ; q,k,v = xn1·Wq,k,v^T (+b) ; rope(q,k) ; att = attention(q,k,v)
//   xMid = x + att·Wo^T ; xn2 = rmsnorm(xMid) ; h = silu(xn2·Wg^T) * (xn2·Wu^T) ; xOut = xMid + h·Wd^T
// then xnF = rmsnorm(xOut) and logits = xnF·Wlm^T (Wlm is the embedding when tied).
// Gradients of weights are written (never accumulated) except the embedding's, which adds onto the
// LM head's when tied; the trainer clears the gradient buffers before backward.

import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import type { Dispatch } from '../gpu/kernel';
import { add } from '../ops/add';
import { attention, attentionBackward } from '../ops/attention';
import { embedding, embeddingBackward } from '../ops/embedding';
import { matmul, sumRows } from '../ops/matmul';
import { rmsnorm, rmsnormBackward } from '../ops/rmsnorm';
import { rope } from '../ops/rope';
import { swiglu, swigluBackward } from '../ops/swiglu';
import type { Acts } from './activations';
import { headDim, type ModelConfig } from './config';
import { layerName, type ParamBuffers } from './params';

export interface Shape {
  B: number;
  T: number;
}

function lmHeadName(cfg: ModelConfig): string {
  return cfg.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
}

/** y[M,N] = x[M,K]·W^T (+ bias), W stored [N,K]. */
function linear(gpu: Gpu, x: View, w: View, y: View, M: number, N: number, K: number, bias?: View): Dispatch[] {
  return matmul(gpu, { a: x, b: w, c: y, M, N, K, transB: true, bias });
}

/** Backward of linear: dx[M,K] (+)= dy·W and dW[N,K] = dy^T·x (and db = column sums of dy). */
function linearBackward(
  gpu: Gpu,
  a: { x: View; w: View; dy: View; dx: View; dw: View; db?: View; M: number; N: number; K: number; accumulateDx: boolean },
): Dispatch[] {
  return [
    ...matmul(gpu, { a: a.dy, b: a.w, c: a.dx, M: a.M, N: a.K, K: a.N, accumulate: a.accumulateDx }),
    ...matmul(gpu, { a: a.dy, b: a.x, c: a.dw, M: a.N, N: a.K, K: a.M, transA: true }),
    ...(a.db ? sumRows(gpu, { x: a.dy, out: a.db, M: a.M, N: a.N }) : []),
  ];
}

/** Forward pass up to the logits. Reads tokens, positions and start from `acts`. */
export function buildForward(gpu: Gpu, cfg: ModelConfig, p: ParamBuffers, acts: Acts<View>, { B, T }: Shape): Dispatch[] {
  const BT = B * T;
  const C = cfg.dModel;
  const D = headDim(cfg);
  const [H, Hkv, F] = [cfg.nHeads, cfg.nKvHeads, cfg.dFF];
  const w = (l: number, rest: string) => p.view(layerName(l, rest));
  const bias = (l: number, name: string) => (cfg.qkvBias ? w(l, `self_attn.${name}.bias`) : undefined);
  const out: Dispatch[] = [];
  out.push(...embedding(gpu, { tokens: acts.tokens, table: p.view('model.embed_tokens.weight'), out: acts.layers[0].xIn, rows: BT, C, V: cfg.vocab }));
  for (let l = 0; l < cfg.nLayers; l++) {
    const a = acts.layers[l];
    const xNext = l + 1 < cfg.nLayers ? acts.layers[l + 1].xIn : acts.xOut;
    out.push(
      ...rmsnorm(gpu, { x: a.xIn, w: w(l, 'input_layernorm.weight'), y: a.xn1, rstd: a.rstd1, rows: BT, C, eps: cfg.normEps }),
      ...linear(gpu, a.xn1, w(l, 'self_attn.q_proj.weight'), a.q, BT, H * D, C, bias(l, 'q_proj')),
      ...linear(gpu, a.xn1, w(l, 'self_attn.k_proj.weight'), a.k, BT, Hkv * D, C, bias(l, 'k_proj')),
      ...linear(gpu, a.xn1, w(l, 'self_attn.v_proj.weight'), a.v, BT, Hkv * D, C, bias(l, 'v_proj')),
      ...rope(gpu, { x: a.q, positions: acts.positions, rows: BT, heads: H, D, theta: cfg.ropeTheta }),
      ...rope(gpu, { x: a.k, positions: acts.positions, rows: BT, heads: Hkv, D, theta: cfg.ropeTheta }),
      ...attention(gpu, { q: a.q, k: a.k, v: a.v, out: a.att, lse: a.lse, start: acts.start, B, Tq: T, Tk: T, H, Hkv, D }),
      ...linear(gpu, a.att, w(l, 'self_attn.o_proj.weight'), acts.proj, BT, C, H * D),
      ...add(gpu, { a: a.xIn, b: acts.proj, out: a.xMid, n: BT * C }),
      ...rmsnorm(gpu, { x: a.xMid, w: w(l, 'post_attention_layernorm.weight'), y: a.xn2, rstd: a.rstd2, rows: BT, C, eps: cfg.normEps }),
      ...linear(gpu, a.xn2, w(l, 'mlp.gate_proj.weight'), a.gate, BT, F, C),
      ...linear(gpu, a.xn2, w(l, 'mlp.up_proj.weight'), a.up, BT, F, C),
      ...swiglu(gpu, { gate: a.gate, up: a.up, out: a.h, n: BT * F }),
      ...linear(gpu, a.h, w(l, 'mlp.down_proj.weight'), acts.proj, BT, C, F),
      ...add(gpu, { a: a.xMid, b: acts.proj, out: xNext, n: BT * C }),
    );
  }
  out.push(
    ...rmsnorm(gpu, { x: acts.xOut, w: p.view('model.norm.weight'), y: acts.xnF, rstd: acts.rstdF, rows: BT, C, eps: cfg.normEps }),
    ...linear(gpu, acts.xnF, p.view(lmHeadName(cfg)), acts.logits, BT, cfg.vocab, C),
  );
  return out;
}

/** Backward pass from dlogits (already in acts.logits) to every parameter gradient in `g`. */
export function buildBackward(gpu: Gpu, cfg: ModelConfig, p: ParamBuffers, g: ParamBuffers, acts: Acts<View>, { B, T }: Shape): Dispatch[] {
  const BT = B * T;
  const C = cfg.dModel;
  const D = headDim(cfg);
  const [H, Hkv, F] = [cfg.nHeads, cfg.nKvHeads, cfg.dFF];
  const w = (l: number, rest: string) => p.view(layerName(l, rest));
  const gw = (l: number, rest: string) => g.view(layerName(l, rest));
  const out: Dispatch[] = [];
  // LM head and final norm. With tied embeddings the head's gradient is written here and the
  // embedding's gradient is added to it at the end.
  out.push(
    ...linearBackward(gpu, { x: acts.xnF, w: p.view(lmHeadName(cfg)), dy: acts.logits, dx: acts.dxn, dw: g.view(lmHeadName(cfg)), M: BT, N: cfg.vocab, K: C, accumulateDx: false }),
    ...rmsnormBackward(gpu, { dy: acts.dxn, x: acts.xOut, w: p.view('model.norm.weight'), rstd: acts.rstdF, dx: acts.dres, dw: g.view('model.norm.weight'), rows: BT, C }),
  );
  for (let l = cfg.nLayers - 1; l >= 0; l--) {
    const a = acts.layers[l];
    const qkv = (name: 'q' | 'k' | 'v') => `self_attn.${name}_proj`;
    const db = (name: 'q' | 'k' | 'v') => (cfg.qkvBias ? gw(l, `${qkv(name)}.bias`) : undefined);
    out.push(
      // MLP: dres is the gradient of xOut = xMid + down(h).
      ...linearBackward(gpu, { x: a.h, w: w(l, 'mlp.down_proj.weight'), dy: acts.dres, dx: acts.dh, dw: gw(l, 'mlp.down_proj.weight'), M: BT, N: C, K: F, accumulateDx: false }),
      ...swigluBackward(gpu, { gate: a.gate, up: a.up, dout: acts.dh, dgate: acts.dgate, dup: acts.dup, n: BT * F }),
      ...linearBackward(gpu, { x: a.xn2, w: w(l, 'mlp.gate_proj.weight'), dy: acts.dgate, dx: acts.dxn, dw: gw(l, 'mlp.gate_proj.weight'), M: BT, N: F, K: C, accumulateDx: false }),
      ...linearBackward(gpu, { x: a.xn2, w: w(l, 'mlp.up_proj.weight'), dy: acts.dup, dx: acts.dxn, dw: gw(l, 'mlp.up_proj.weight'), M: BT, N: F, K: C, accumulateDx: true }),
      ...rmsnormBackward(gpu, { dy: acts.dxn, x: a.xMid, w: w(l, 'post_attention_layernorm.weight'), rstd: a.rstd2, dx: acts.dres, dw: gw(l, 'post_attention_layernorm.weight'), rows: BT, C, accumulate: true }),
      // Attention: dres is now the gradient of xMid = xIn + o_proj(att).
      ...linearBackward(gpu, { x: a.att, w: w(l, 'self_attn.o_proj.weight'), dy: acts.dres, dx: acts.datt, dw: gw(l, 'self_attn.o_proj.weight'), M: BT, N: C, K: H * D, accumulateDx: false }),
      ...attentionBackward(gpu, { q: a.q, k: a.k, v: a.v, out: a.att, dout: acts.datt, lse: a.lse, start: acts.start, dq: acts.dq, dk: acts.dk, dv: acts.dv, delta: acts.delta, B, T, H, Hkv, D }),
      ...rope(gpu, { x: acts.dq, positions: acts.positions, rows: BT, heads: H, D, theta: cfg.ropeTheta, inverse: true }),
      ...rope(gpu, { x: acts.dk, positions: acts.positions, rows: BT, heads: Hkv, D, theta: cfg.ropeTheta, inverse: true }),
      ...linearBackward(gpu, { x: a.xn1, w: w(l, `${qkv('q')}.weight`), dy: acts.dq, dx: acts.dxn, dw: gw(l, `${qkv('q')}.weight`), db: db('q'), M: BT, N: H * D, K: C, accumulateDx: false }),
      ...linearBackward(gpu, { x: a.xn1, w: w(l, `${qkv('k')}.weight`), dy: acts.dk, dx: acts.dxn, dw: gw(l, `${qkv('k')}.weight`), db: db('k'), M: BT, N: Hkv * D, K: C, accumulateDx: true }),
      ...linearBackward(gpu, { x: a.xn1, w: w(l, `${qkv('v')}.weight`), dy: acts.dv, dx: acts.dxn, dw: gw(l, `${qkv('v')}.weight`), db: db('v'), M: BT, N: Hkv * D, K: C, accumulateDx: true }),
      ...rmsnormBackward(gpu, { dy: acts.dxn, x: a.xIn, w: w(l, 'input_layernorm.weight'), rstd: a.rstd1, dx: acts.dres, dw: gw(l, 'input_layernorm.weight'), rows: BT, C, accumulate: true }),
    );
  }
  out.push(
    ...embeddingBackward(gpu, {
      dout: acts.dres, unique: acts.tokUnique, offsets: acts.tokOffsets, positions: acts.tokPositions,
      dtable: g.view('model.embed_tokens.weight'), rows: BT, C, V: cfg.vocab, accumulate: cfg.tieEmbeddings,
    }),
  );
  return out;
}
