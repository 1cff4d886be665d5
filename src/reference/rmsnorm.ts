// CPU twin of src/ops/rmsnorm.ts, in float64. Tests only.
// y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) per row of C.

export function rmsnorm({ x, w, rows, C, eps }: { x: ArrayLike<number>; w: ArrayLike<number>; rows: number; C: number; eps: number }): {
  y: Float64Array;
  rstd: Float64Array;
} {
  const y = new Float64Array(rows * C);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[r * C + c] ** 2;
    const rs = 1 / Math.sqrt(ss / C + eps);
    rstd[r] = rs;
    for (let c = 0; c < C; c++) y[r * C + c] = x[r * C + c] * rs * w[c];
  }
  return { y, rstd };
}

/** Gradients of rmsnorm for the output gradient dy (rstd is recomputed from x). */
export function rmsnormBackward({
  dy,
  x,
  w,
  rows,
  C,
  eps,
}: {
  dy: ArrayLike<number>;
  x: ArrayLike<number>;
  w: ArrayLike<number>;
  rows: number;
  C: number;
  eps: number;
}): { dx: Float64Array; dw: Float64Array } {
  const { rstd } = rmsnorm({ x, w, rows, C, eps });
  const dx = new Float64Array(rows * C);
  const dw = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    const rs = rstd[r];
    // d rstd / d x[c] = -rstd^3 * x[c] / C, so dx[c] = rstd * (w dy)[c] - x[c] * rstd^3 * sum(w dy x) / C.
    let s = 0;
    for (let c = 0; c < C; c++) s += w[c] * dy[r * C + c] * x[r * C + c];
    for (let c = 0; c < C; c++) {
      const i = r * C + c;
      dx[i] = rs * w[c] * dy[i] - (x[i] * rs ** 3 * s) / C;
      dw[c] += dy[i] * x[i] * rs;
    }
  }
  return { dx, dw };
}
