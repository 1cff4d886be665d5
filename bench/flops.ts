// FLOP and byte counts, written out per case. A count is the work the algorithm needs, not what a kernel
// happens to do (a kernel that recomputes or rereads is charged nothing extra), so a GFLOP/s or GB/s
// figure is "effective" and comparable across engines.
//
// Shape letters: B batch, T sequence, C model width, H query heads, Hkv key/value heads, D head size,
// F MLP width, V vocabulary, M/N/K the matmul dims (C[M,N] = A[M,K]·B[K,N]).

import { headDim, type ModelConfig } from '../src/model/config';
import { layoutParams } from '../src/model/params';

/** One multiply-add is two FLOPs: C[M,N] = A[M,K]·B[K,N]. */
export function matmulFlops(M: number, N: number, K: number): number {
  return 2 * M * N * K;
}

/** Query-key pairs a causal mask keeps: each of T queries sees itself and every earlier key. */
export function causalPairs(B: number, H: number, T: number): number {
  return (B * H * T * (T + 1)) / 2;
}

/** Causal attention forward: per kept pair, q·k (2D) and p·v (2D). Softmax is not counted. */
export function attentionForwardFlops(B: number, T: number, H: number, D: number): number {
  return 4 * D * causalPairs(B, H, T);
}

/**
 * Attention backward: dV = P^T·dO, dP = dO·V^T, dQ = dS·K, dK = dS^T·Q (2D per pair each) = 2x the
 * forward's two products; recomputing S = Q·K^T (which our kernels and FlashAttention do) is a fifth,
 * counted as in FlashAttention-2: backward = 2.5 x forward.
 */
export function attentionBackwardFlops(B: number, T: number, H: number, D: number): number {
  return 2.5 * attentionForwardFlops(B, T, H, D);
}

/** RMSNorm forward traffic: read x [rows,C] and w [C], write y [rows,C] and rstd [rows], all f32. */
export function rmsnormBytes(rows: number, C: number): number {
  return 4 * (2 * rows * C + C + rows);
}

/**
 * Fused cross-entropy traffic: read logits [rows,V] once, targets and weights [rows], write losses
 * [rows]; with the gradient, also write dlogits [rows,V] over the logits.
 */
export function crossEntropyBytes(rows: number, V: number, grad: boolean): number {
  return 4 * (rows * V * (grad ? 2 : 1) + 3 * rows);
}

/** Weights that multiply activations (every projection and the LM head); the embedding gather is not a matmul. */
export function linearParams(cfg: ModelConfig): number {
  const C = cfg.dModel;
  const D = headDim(cfg);
  const perLayer = C * cfg.nHeads * D * 2 + C * cfg.nKvHeads * D * 2 + 3 * C * cfg.dFF;
  return cfg.nLayers * perLayer + cfg.vocab * C;
}

/** Every parameter, without alignment padding (what "a 5M model" means). */
export function paramCount(cfg: ModelConfig): number {
  return layoutParams(cfg).count;
}

/** Forward FLOPs of the whole model on B x T tokens: every linear layer plus causal attention. */
export function modelForwardFlops(cfg: ModelConfig, B: number, T: number): number {
  const attn = cfg.nLayers * attentionForwardFlops(B, T, cfg.nHeads, headDim(cfg));
  return 2 * B * T * linearParams(cfg) + attn;
}

/**
 * One training step: forward, then backward at twice the forward's matmuls (dX and dW per linear layer)
 * and 2.5x its attention. The usual 6·N·tokens plus the attention term; norms, activations, the loss and
 * AdamW are elementwise and not counted (as in PaLM's MFU).
 */
export function trainStepFlops(cfg: ModelConfig, B: number, T: number): number {
  const D = headDim(cfg);
  const attn = cfg.nLayers * (attentionForwardFlops(B, T, cfg.nHeads, D) + attentionBackwardFlops(B, T, cfg.nHeads, D));
  return 6 * B * T * linearParams(cfg) + attn;
}

/** Model FLOP utilisation: achieved FLOP/s over the device's peak (TFLOP/s, f32), or undefined when unknown. */
export function mfu(flops: number, seconds: number, peakTflops: number | undefined): number | undefined {
  if (!peakTflops || !(seconds > 0)) return undefined;
  return flops / seconds / (peakTflops * 1e12);
}

export const giga = (x: number) => x / 1e9;
