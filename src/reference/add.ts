// CPU twin of src/ops/add.ts, in float64. Tests only.
export function add({ a, b, n }: { a: ArrayLike<number>; b: ArrayLike<number>; n: number }): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
  return out;
}
