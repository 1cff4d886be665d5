// CPU twin of src/ops/adamw.ts, in float64: one AdamW update with the same global-norm clipping. Tests only.
import type { AdamwHyper } from '../ops/adamw';

export interface AdamwRef {
  params: Float64Array; // [n] after the update
  m: Float64Array; // [n]
  v: Float64Array; // [n]
  normSq: number; // sum of g^2 before clipping
}

export function adamw({ params, grads, m, v, n, decayEnd, hyper: h }: {
  params: ArrayLike<number>; // [n]
  grads: ArrayLike<number>; // [n]
  m: ArrayLike<number>; // [n]
  v: ArrayLike<number>; // [n]
  n: number;
  decayEnd: number;
  hyper: AdamwHyper;
}): AdamwRef {
  let normSq = 0;
  for (let i = 0; i < n; i++) normSq += grads[i] * grads[i];
  const scale = h.maxGradNorm > 0 ? Math.min(1, h.maxGradNorm / (Math.sqrt(normSq) + 1e-6)) : 1;
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  const out = { params: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n), normSq };
  for (let i = 0; i < n; i++) {
    const g = scale * grads[i];
    const mi = h.beta1 * m[i] + (1 - h.beta1) * g;
    const vi = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    const p = params[i];
    const decay = i < decayEnd ? h.weightDecay * p : 0;
    out.m[i] = mi;
    out.v[i] = vi;
    out.params[i] = p - h.lr * (mi / bc1 / (Math.sqrt(vi / bc2) + h.eps) + decay);
  }
  return out;
}
