// CPU twin of src/ops/swiglu.ts, in float64. Tests only. out = silu(gate) * up.

const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));

export function swiglu({ gate, up, n }: { gate: ArrayLike<number>; up: ArrayLike<number>; n: number }): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
  return out;
}

export function swigluBackward({
  gate,
  up,
  dout,
  n,
}: {
  gate: ArrayLike<number>;
  up: ArrayLike<number>;
  dout: ArrayLike<number>;
  n: number;
}): { dgate: Float64Array; dup: Float64Array } {
  const dgate = new Float64Array(n);
  const dup = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    const s = sigmoid(g);
    dgate[i] = dout[i] * up[i] * (s + g * s * (1 - s));
    dup[i] = dout[i] * g * s;
  }
  return { dgate, dup };
}
