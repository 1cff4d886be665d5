// CPU twin of src/ops/cross_entropy.ts, in float64. Tests only.

export interface CrossEntropyRef {
  losses: Float64Array; // [BT] lse - logit[target]
  dlogits: Float64Array; // [BT, V] weights[r] * (softmax - onehot(target)) = d loss / d logits
  loss: number; // sum_r weights[r] * losses[r]
}

export function crossEntropy({ logits, targets, weights, rows, V }: {
  logits: ArrayLike<number>; // [BT, V]
  targets: ArrayLike<number>; // [BT]
  weights: ArrayLike<number>; // [BT]
  rows: number;
  V: number;
}): CrossEntropyRef {
  const losses = new Float64Array(rows);
  const dlogits = new Float64Array(rows * V);
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * V;
    let max = -Infinity;
    for (let j = 0; j < V; j++) max = Math.max(max, logits[base + j]);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[base + j] - max);
    const lse = max + Math.log(sum);
    const t = targets[r];
    losses[r] = lse - logits[base + t];
    loss += weights[r] * losses[r];
    for (let j = 0; j < V; j++) {
      dlogits[base + j] = weights[r] * (Math.exp(logits[base + j] - lse) - (j === t ? 1 : 0));
    }
  }
  return { losses, dlogits, loss };
}
