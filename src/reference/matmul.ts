// CPU twin of src/ops/matmul.ts, in float64. Tests only.
//
// op(A) is [M,K]: A stored [M,K], or [K,M] when transA. op(B) is [K,N]: B stored [K,N], or [N,K] when transB.

export interface RefMatmulArgs {
  a: ArrayLike<number>;
  b: ArrayLike<number>;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** The previous C [M,N], added to when accumulate is true. */
  c0?: ArrayLike<number>;
  accumulate?: boolean;
  /** [N], added to every row. */
  bias?: ArrayLike<number>;
  /** Scales op(A)·op(B) (not c0, not the bias). Default 1. */
  alpha?: number;
}

/** op(A)[m, k] and op(B)[k, n] as flat indices into the stored arrays. */
function indexA(m: number, k: number, M: number, K: number, transA: boolean): number {
  return transA ? k * M + m : m * K + k;
}
function indexB(k: number, n: number, K: number, N: number, transB: boolean): number {
  return transB ? n * K + k : k * N + n;
}

/** C = alpha·op(A)·op(B) (+ bias), or C = c0 + alpha·op(A)·op(B) when accumulate. */
export function matmul({ a, b, M, N, K, transA = false, transB = false, c0, accumulate = false, bias, alpha = 1 }: RefMatmulArgs): Float64Array {
  if (accumulate && !c0) throw new Error('reference matmul: accumulate needs c0');
  const c = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[indexA(m, k, M, K, transA)] * b[indexB(k, n, K, N, transB)];
      s *= alpha;
      if (bias) s += bias[n];
      if (accumulate) s += c0![m * N + n];
      c[m * N + n] = s;
    }
  }
  return c;
}

/**
 * Gradients of C = op(A)·op(B) given dC [M,N], in the stored layouts of A and B:
 * d op(A) = dC·op(B)^T, d op(B) = op(A)^T·dC. (The bias gradient is sumRows(dC).)
 */
export function matmulBackward({ a, b, dc, M, N, K, transA = false, transB = false }: {
  a: ArrayLike<number>;
  b: ArrayLike<number>;
  dc: ArrayLike<number>;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
}): { da: Float64Array; db: Float64Array } {
  const da = new Float64Array(M * K);
  const db = new Float64Array(K * N);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += dc[m * N + n] * b[indexB(k, n, K, N, transB)];
      da[indexA(m, k, M, K, transA)] = s;
    }
  }
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let m = 0; m < M; m++) s += a[indexA(m, k, M, K, transA)] * dc[m * N + n];
      db[indexB(k, n, K, N, transB)] = s;
    }
  }
  return { da, db };
}

/** out[n] = sum_m x[m, n] (+ out0[n] when accumulate). x is [M, N]. */
export function sumRows({ x, M, N, out0, accumulate = false }: {
  x: ArrayLike<number>;
  M: number;
  N: number;
  out0?: ArrayLike<number>;
  accumulate?: boolean;
}): Float64Array {
  if (accumulate && !out0) throw new Error('reference sumRows: accumulate needs out0');
  const out = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = accumulate ? out0![n] : 0;
    for (let m = 0; m < M; m++) s += x[m * N + n];
    out[n] = s;
  }
  return out;
}
