// CPU twin of src/ops/embedding.ts, in float64. Tests only.

export function embedding({ tokens, table, rows, C }: { tokens: ArrayLike<number>; table: ArrayLike<number>; rows: number; C: number; V: number }): Float64Array {
  const out = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) out[r * C + c] = table[tokens[r] * C + c];
  }
  return out;
}

/** dtable [V, C]: the scatter-add of dout's rows onto their tokens' rows (zeros elsewhere). */
export function embeddingBackward({ dout, tokens, rows, C, V }: { dout: ArrayLike<number>; tokens: ArrayLike<number>; rows: number; C: number; V: number }): Float64Array {
  const dtable = new Float64Array(V * C);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) dtable[tokens[r] * C + c] += dout[r * C + c];
  }
  return dtable;
}
