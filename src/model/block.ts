// One Llama decoder block, written once: the training forward (src/model/transformer.ts) and the KV-cache
// inference plan (src/model/inference.ts) both build their blocks here, so a change to the architecture
// (a bias, QK-norm, another activation) is made in this file. The block's backward is beside its forward.
//
//   xn1 = rmsnorm(xIn) ; q,k,v = xn1·Wq,k,v^T (+b) ; rope(q,k) ; att = attend(q,k,v)
//   xMid = xIn + att·Wo^T ; xn2 = rmsnorm(xMid) ; h = silu(xn2·Wg^T) * (xn2·Wu^T) ; xOut = xMid + h·Wd^T
//
// Shapes (llm.c's glossary): BT rows of C channels; q and att [BT, H·D], k and v [BT, Hkv·D], gate, up
// and h [BT, F]. What differs between the two plans is passed in: the buffers (training keeps every layer's
// activations for backward; inference reuses one set), and `attend`, attention over the same T positions
// (training) or a KV-cache append and attention over the cache (inference).
//
// Every residual add is fused into the norm that reads its sum (rmsnorm's `residual`): the attention output's
// into post_attention_layernorm, and the MLP output's, xOut = xMid + proj, into whatever norm reads the stream
// next (the next block's input_layernorm, or the final norm), which the caller passes as `residual`. So
// `xIn` is written by the input norm when `residual` is given, and xOut is never a buffer of its own.
//
// Weights with LoRA adapters (src/model/lora.ts) add scale·(x·A^T)·B^T to each targeted linear; a frozen base
// stored in f16 is read as packed halves by every linear (matmul's bF16).

import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import type { Dispatch } from '../gpu/kernel';
import { attentionBackward } from '../ops/attention';
import { matmul, sumRows } from '../ops/matmul';
import { rmsnorm, rmsnormBackward } from '../ops/rmsnorm';
import { rope } from '../ops/rope';
import { swiglu, swigluBackward, swigluPacked } from '../ops/swiglu';
import { headDim, type ModelConfig } from './config';
import { adapterOf, hasBias, LORA_MODULES, loraBackward, loraForward, loraName, type LoraTarget, type ModelWeights, targetDims } from './lora';
import { layerName, type ParamBuffers } from './params';

/** A block's forward buffers. Inference may pass one buffer for several roles (xn1 and xn2, rstd1 and rstd2). */
export interface BlockBuffers {
  xIn: View; // [BT, C] the residual stream entering the block (written by the input norm when `residual` is given)
  rstd1: View; // [BT]
  xn1: View; // [BT, C]
  q: View; // [BT, H*D]
  k: View; // [BT, Hkv*D]
  v: View; // [BT, Hkv*D]
  att: View; // [BT, H*D]
  xMid: View; // [BT, C] the residual after attention
  rstd2: View; // [BT]
  xn2: View; // [BT, C]
  gate: View; // [BT, F]
  up: View; // [BT, F]
  h: View; // [BT, F]
  proj: View; // [BT, C] o_proj's and then down_proj's output (the MLP's is the caller's `pending` residual)
  /** u = x·A^T [BT, r] of each targeted linear (LoRA); one buffer may serve every target when nothing reads it later. */
  loraU?: (t: LoraTarget) => View;
  /**
   * [BT, 2F] (inference): where gate_proj and up_proj sit back to back in one buffer (gateUpWeight), one matmul
   * writes both into it and swigluPacked reads them: one dispatch fewer. Training keeps gate and up apart (backward
   * reads them).
   */
  gateUp?: View;
}

export interface BlockForwardArgs {
  layer: number;
  rows: number; // BT
  x: BlockBuffers;
  positions: View; // [BT] u32 RoPE positions
  /** The previous block's MLP residual add, xIn = a + b, fused into this block's input norm. */
  residual?: { a: View; b: View };
  /** Attention of q over k and v into att (and its log-sum-exp where training keeps it). */
  attend: () => Dispatch[];
}

/** y[M,N] = x[M,K]·W^T (+ bias), W stored [N,K] (in f16 when wF16). */
export function linear(gpu: Gpu, x: View, w: View, wF16: boolean, y: View, M: number, N: number, K: number, bias?: View): Dispatch[] {
  return matmul(gpu, { a: x, b: w, bF16: wF16, c: y, M, N, K, transB: true, bias });
}

/** Block linear t of layer l: y = x·W^T (+ b), plus its adapter's scale·(x·A^T)·B^T. */
export function blockLinear(gpu: Gpu, cfg: ModelConfig, p: ModelWeights, l: number, t: LoraTarget, x: View, y: View, rows: number, u?: View): Dispatch[] {
  const [N, K] = targetDims(cfg, t);
  const m = LORA_MODULES[t];
  const name = layerName(l, `${m}.weight`);
  const ad = adapterOf(p, l, t);
  const bias = hasBias(cfg, t) ? p.view(layerName(l, `${m}.bias`)) : undefined;
  return [
    ...linear(gpu, x, p.view(name), p.dtype(name) === 'f16', y, rows, N, K, bias),
    ...(ad ? loraForward(gpu, { x, y, u: u!, ...ad, M: rows, N, K }) : []),
  ];
}

/** gate_proj and up_proj of layer l as one [2F, C] weight, where they sit back to back in one buffer with no adapter or bias; else null. */
export function gateUpWeight(cfg: ModelConfig, p: ModelWeights, l: number): { w: View; f16: boolean } | null {
  if (adapterOf(p, l, 'gate') || adapterOf(p, l, 'up') || hasBias(cfg, 'gate') || hasBias(cfg, 'up')) return null;
  const [g, u] = [layerName(l, 'mlp.gate_proj.weight'), layerName(l, 'mlp.up_proj.weight')];
  const [cg, cu] = [p.chunks(g), p.chunks(u)];
  if (p.dtype(g) !== p.dtype(u) || cg.length !== 1 || cu.length !== 1) return null;
  const [a, b] = [cg[0].view, cu[0].view];
  if (a.buffer !== b.buffer || b.offset !== a.offset + a.size) return null;
  return { w: { buffer: a.buffer, offset: a.offset, size: a.size + b.size }, f16: p.dtype(g) === 'f16' };
}

/** One block's forward, in the order both plans encode it. Leaves xOut = xMid + proj to the next norm (see the header). */
export function blockForward(gpu: Gpu, cfg: ModelConfig, p: ModelWeights, a: BlockForwardArgs): Dispatch[] {
  const { layer: l, rows, x } = a;
  const C = cfg.dModel;
  const D = headDim(cfg);
  const w = (rest: string) => p.view(layerName(l, rest));
  const lin = (t: LoraTarget, from: View, to: View) => blockLinear(gpu, cfg, p, l, t, from, to, rows, x.loraU?.(t));
  const F = cfg.dFF;
  const packed = x.gateUp && gateUpWeight(cfg, p, l);
  const mlpGate = packed
    ? [...linear(gpu, x.xn2, packed.w, packed.f16, x.gateUp!, rows, 2 * F, C), ...swigluPacked(gpu, { gu: x.gateUp!, out: x.h, rows, F })]
    : [...lin('gate', x.xn2, x.gate), ...lin('up', x.xn2, x.up), ...swiglu(gpu, { gate: x.gate, up: x.up, out: x.h, n: rows * F })];
  return [
    ...rmsnorm(gpu, { x: x.xIn, w: w('input_layernorm.weight'), y: x.xn1, rstd: x.rstd1, rows, C, eps: cfg.normEps, residual: a.residual }),
    ...lin('q', x.xn1, x.q),
    ...lin('k', x.xn1, x.k),
    ...lin('v', x.xn1, x.v),
    ...rope(gpu, { x: x.q, positions: a.positions, rows, heads: cfg.nHeads, D, theta: cfg.ropeTheta, also: { x: x.k, heads: cfg.nKvHeads } }),
    ...a.attend(),
    ...lin('o', x.att, x.proj),
    ...rmsnorm(gpu, { x: x.xMid, w: w('post_attention_layernorm.weight'), y: x.xn2, rstd: x.rstd2, rows, C, eps: cfg.normEps, residual: { a: x.xIn, b: x.proj } }),
    ...mlpGate,
    ...lin('down', x.h, x.proj),
  ];
}

/** Backward of linear: dx[M,K] (+)= dy·W, and when the weight trains dW[N,K] = dy^T·x (and db = column sums of dy). */
export function linearBackward(
  gpu: Gpu,
  a: { x: View; w: View; wF16: boolean; dy: View; dx: View; dw?: View; db?: View; M: number; N: number; K: number; accumulateDx: boolean },
): Dispatch[] {
  return [
    ...matmul(gpu, { a: a.dy, b: a.w, bF16: a.wF16, c: a.dx, M: a.M, N: a.K, K: a.N, accumulate: a.accumulateDx }),
    ...(a.dw ? matmul(gpu, { a: a.dy, b: a.x, c: a.dw, M: a.N, N: a.K, K: a.M, transA: true }) : []),
    ...(a.db ? sumRows(gpu, { x: a.dy, out: a.db, M: a.M, N: a.N }) : []),
  ];
}

/** The gradient scratch of a block's backward, shared by every layer: [BT, ·] like the forward's buffers. */
export interface BlockGradients {
  dres: View; // [BT, C] in: the gradient of xOut; out: the gradient of xIn
  dxn: View; // [BT, C]
  datt: View; // [BT, H*D]
  dq: View; // [BT, H*D]
  dk: View; // [BT, Hkv*D]
  dv: View; // [BT, Hkv*D]
  delta: View; // attention backward's row sums
  dh: View; // [BT, F]
  dgate: View; // [BT, F]
  dup: View; // [BT, F]
  loraDu?: View; // [BT, r] (LoRA)
}

export interface BlockBackwardArgs {
  layer: number;
  B: number;
  T: number;
  x: BlockBuffers & { lse: View };
  d: BlockGradients;
  positions: View;
  start: View;
  /** Where the gradients go: every base parameter (`g` laid out like `p`), or with a frozen base the adapters only. */
  g: ParamBuffers;
  frozen: boolean;
}

/** One block's backward: dres holds the gradient of the block's output and is left holding that of its input. */
export function blockBackward(gpu: Gpu, cfg: ModelConfig, p: ModelWeights, a: BlockBackwardArgs): Dispatch[] {
  const { layer: l, B, T, x, d, g, frozen } = a;
  const BT = B * T;
  const C = cfg.dModel;
  const D = headDim(cfg);
  const [H, Hkv] = [cfg.nHeads, cfg.nKvHeads];
  const w = (rest: string) => p.view(layerName(l, rest));
  const gw = (rest: string) => (frozen ? undefined : g.view(layerName(l, rest)));
  // Linear t, given dy: dx (+)= dy·W, the weight's (and bias's) gradient unless frozen, then its adapter's
  // gradients and dx += du·A.
  const lin = (t: LoraTarget, from: View, dy: View, dx: View, accumulateDx: boolean): Dispatch[] => {
    const [N, K] = targetDims(cfg, t);
    const m = LORA_MODULES[t];
    const ad = adapterOf(p, l, t);
    const db = hasBias(cfg, t) ? gw(`${m}.bias`) : undefined;
    return [
      ...linearBackward(gpu, { x: from, w: w(`${m}.weight`), wF16: p.dtype(layerName(l, `${m}.weight`)) === 'f16', dy, dx, dw: gw(`${m}.weight`), db, M: BT, N, K, accumulateDx }),
      ...(ad ? loraBackward(gpu, {
        x: from, dy, dx, u: x.loraU!(t), du: d.loraDu!, ...ad, M: BT, N, K,
        dA: g.view(loraName(l, t, 'A')), dB: g.view(loraName(l, t, 'B')),
      }) : []),
    ];
  };
  return [
    // MLP: dres is the gradient of xOut = xMid + down(h).
    ...lin('down', x.h, d.dres, d.dh, false),
    ...swigluBackward(gpu, { gate: x.gate, up: x.up, dout: d.dh, dgate: d.dgate, dup: d.dup, n: BT * cfg.dFF }),
    ...lin('gate', x.xn2, d.dgate, d.dxn, false),
    ...lin('up', x.xn2, d.dup, d.dxn, true),
    ...rmsnormBackward(gpu, { dy: d.dxn, x: x.xMid, w: w('post_attention_layernorm.weight'), rstd: x.rstd2, dx: d.dres, dw: gw('post_attention_layernorm.weight'), rows: BT, C, accumulate: true }),
    // Attention: dres is now the gradient of xMid = xIn + o_proj(att).
    ...lin('o', x.att, d.dres, d.datt, false),
    ...attentionBackward(gpu, { q: x.q, k: x.k, v: x.v, out: x.att, dout: d.datt, lse: x.lse, start: a.start, dq: d.dq, dk: d.dk, dv: d.dv, delta: d.delta, B, T, H, Hkv, D }),
    ...rope(gpu, { x: d.dq, positions: a.positions, rows: BT, heads: H, D, theta: cfg.ropeTheta, inverse: true, also: { x: d.dk, heads: Hkv } }),
    ...lin('q', x.xn1, d.dq, d.dxn, false),
    ...lin('k', x.xn1, d.dk, d.dxn, true),
    ...lin('v', x.xn1, d.dv, d.dxn, true),
    ...rmsnormBackward(gpu, { dy: d.dxn, x: x.xIn, w: w('input_layernorm.weight'), rstd: x.rstd1, dx: d.dres, dw: gw('input_layernorm.weight'), rows: BT, C, accumulate: true }),
  ];
}
