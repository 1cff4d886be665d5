// Numeric checks in the style of llm.c and tinygrad: one tolerance rule, the worst element printed on failure.
import { expect } from 'vitest';

export interface Tol {
  atol: number;
  rtol: number;
}

/** Forward outputs: |gpu - ref| <= 1e-5 + 1e-4 * |ref|. */
export const FWD: Tol = { atol: 1e-5, rtol: 1e-4 };
/** Gradients: |gpu - ref| <= 1e-4 + 1e-3 * |ref|. */
export const GRAD: Tol = { atol: 1e-4, rtol: 1e-3 };

/**
 * Passes when every |actual[i] - expected[i]| <= atol + rtol * |expected[i]| (and nothing is NaN).
 * On failure the message names the worst element: index, both values, and its error over its bound.
 */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tol, label = 'tensor'): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  let worst = -1;
  let worstRatio = 0;
  let bad = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const bound = tol.atol + tol.rtol * Math.abs(e);
    const ratio = Number.isNaN(a) || Number.isNaN(e) ? Infinity : Math.abs(a - e) / bound;
    if (ratio > 1) bad++;
    if (ratio > worstRatio || worst < 0) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (bad > 0) {
    const a = actual[worst];
    const e = expected[worst];
    throw new Error(
      `${label}: ${bad}/${expected.length} elements out of tolerance (atol ${tol.atol}, rtol ${tol.rtol}). ` +
        `Worst at [${worst}]: got ${a}, want ${e}, |diff| ${Math.abs(a - e)} = ${worstRatio.toFixed(2)}x its bound.`,
    );
  }
}

/** Central finite differences of a scalar function, in float64. */
export function finiteDiff(f: (x: Float64Array) => number, x: ArrayLike<number>, eps = 1e-6): Float64Array {
  const xs = Float64Array.from(x);
  const g = new Float64Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    const old = xs[i];
    xs[i] = old + eps;
    const up = f(xs);
    xs[i] = old - eps;
    const down = f(xs);
    xs[i] = old;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

/** Dot product of two arrays in float64: a random projection turns a tensor output into a scalar loss for gradient checks. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
