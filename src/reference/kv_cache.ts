// CPU twin of src/ops/kv_cache.ts. Tests only.
export function kvWrite(a: { src: ArrayLike<number>; cache: ArrayLike<number>; B: number; Tq: number; S: number; W: number; pos0: number }): Float64Array {
  const out = Float64Array.from(a.cache);
  for (let b = 0; b < a.B; b++) {
    for (let t = 0; t < a.Tq; t++) {
      for (let c = 0; c < a.W; c++) out[(b * a.S + a.pos0 + t) * a.W + c] = a.src[(b * a.Tq + t) * a.W + c];
    }
  }
  return out;
}
