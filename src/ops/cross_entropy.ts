// Host side of shaders/cross_entropy.wgsl: fused softmax cross-entropy (optionally with dlogits written
// in place over the logits) and the deterministic weighted sum that turns per-row losses into the loss.
import code from '../../shaders/cross_entropy.wgsl?raw';
import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, makeDispatch } from '../gpu/kernel';
import { perRow, threadsPerRow } from './profile';
import { checkDims, checkLen } from './shapes';

const shader = { name: 'cross_entropy', code };

export interface CrossEntropyArgs {
  logits: View; // [rows, V]; in grad mode overwritten with dlogits
  targets: View; // [row0 + rows] u32, each < V (a target >= V gives a NaN loss for its row)
  weights: View; // [row0 + rows] loss weight per row, from lossWeights(mask)
  losses: View; // [row0 + rows] out: lse - logit[target], for every row whatever its weight
  rows: number; // BT, or the rows of one block of logits
  V: number;
  /** true: ALSO overwrite logits in place with dlogits = weights[r] * (softmax - onehot(target)). */
  grad?: boolean;
  /** Logits as row blocks: this block holds batch rows [row0, row0 + rows) (targets, weights, losses index those). Default 0. */
  row0?: number;
}

/** Per row (a workgroup each, or a thread each on CPU drivers): the row's softmax statistics, its loss and (grad mode) its gradient. */
export function crossEntropy(gpu: Gpu, { logits, targets, weights, losses, rows, V, grad = false, row0 = 0 }: CrossEntropyArgs): Dispatch[] {
  checkDims('crossEntropy', { rows, V });
  if (!Number.isInteger(row0) || row0 < 0) throw new Error(`crossEntropy: row0 must be an integer >= 0, got ${row0}`);
  checkLen('crossEntropy', { logits }, rows * V);
  checkLen('crossEntropy', { targets, weights, losses }, row0 + rows);
  return [
    makeDispatch(gpu, {
      label: `${grad ? 'cross_entropy.fwd_bwd' : 'cross_entropy.fwd'}${row0 ? ` rows ${row0}..` : ''}`,
      shader,
      ...perRow(gpu, 'main', rows),
      constants: { WG: threadsPerRow(V) },
      uniforms: [rows, V, grad ? 1 : 0, row0],
      buffers: { 1: logits, 2: targets, 3: weights, 4: losses },
    }),
  ];
}

export interface WeightedSumArgs {
  losses: View; // [BT]
  weights: View; // [BT]
  out: View; // [1] out: sum_r weights[r] * losses[r]
  rows: number; // BT
}

/** out[0] = sum_r weights[r] * losses[r], in one workgroup with a fixed summation order (deterministic). */
export function weightedSum(gpu: Gpu, { losses, weights, out, rows }: WeightedSumArgs): Dispatch[] {
  checkDims('weightedSum', { rows });
  checkLen('weightedSum', { losses, weights }, rows);
  checkLen('weightedSum', { out }, 1);
  return [
    makeDispatch(gpu, {
      shader,
      entry: 'weighted_sum',
      uniforms: [rows],
      buffers: { 3: weights, 4: losses, 5: out },
      workgroups: [1],
    }),
  ];
}

/**
 * Per-row loss weights from a 0/1 (or fractional) mask: mask[r] / sum(mask), so that the weighted sum of
 * the per-row losses is the mean loss over the masked tokens. An all-zero mask gives all-zero weights
 * (loss 0 and zero gradients, never NaN).
 */
export function lossWeights(mask: ArrayLike<number>): Float32Array {
  let total = 0;
  for (let i = 0; i < mask.length; i++) {
    const x = mask[i];
    if (!Number.isFinite(x) || x < 0) throw new Error(`lossWeights: mask[${i}] = ${x}; mask values must be finite and >= 0`);
    total += x;
  }
  const w = new Float32Array(mask.length);
  if (total > 0) for (let i = 0; i < mask.length; i++) w[i] = mask[i] / total;
  return w;
}
