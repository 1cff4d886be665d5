// CPU twin of src/ops/rope.ts, in float64. Tests only.
// HF "rotate-half" RoPE on x [rows, heads*D]. Like the GPU (and HF), the angle is the f32 product
// f32(pos) * inv_freq_f32; only cos, sin and the rotation are float64. This is deliberate: at
// position ~4000 the f32 angle differs from the exact one by ~1e-4 rad, which is what HF computes.

function invFreqF32(D: number, theta: number): Float64Array {
  const f = Math.fround;
  const out = new Float64Array(D / 2);
  for (let i = 0; i < D / 2; i++) out[i] = f(1 / f(Math.pow(f(theta), f((2 * i) / D))));
  return out;
}

export function rope({
  x,
  positions,
  rows,
  heads,
  D,
  theta,
  inverse = false,
}: {
  x: ArrayLike<number>;
  positions: ArrayLike<number>;
  rows: number;
  heads: number;
  D: number;
  theta: number;
  inverse?: boolean;
}): Float64Array {
  if (D % 2 !== 0) throw new Error(`rope: D must be even, got ${D}`);
  const half = D / 2;
  const invFreq = invFreqF32(D, theta);
  const out = Float64Array.from(x);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(Math.fround(positions[r]) * invFreq[i]);
      const c = Math.cos(angle);
      const s = inverse ? -Math.sin(angle) : Math.sin(angle);
      for (let h = 0; h < heads; h++) {
        const lo = (r * heads + h) * D + i;
        const x1 = x[lo];
        const x2 = x[lo + half];
        out[lo] = x1 * c - x2 * s;
        out[lo + half] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}
