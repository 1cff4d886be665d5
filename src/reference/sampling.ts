// CPU twin of src/ops/sampling.ts, in float64. Tests only.
//
// The same integer hash as shaders/sampling.wgsl gives the same uniform u for (seed, step, row), and the
// same selection semantics (order keys, tie rules, inverse CDF in index order), computed plainly: top-k
// and top-p by sorting instead of the GPU's bitwise binary search. The GPU sees temperature and topP as
// f32, so they are rounded to f32 here too.
import type { SamplingParams } from '../ops/sampling';

/** PCG-RXS-M-XS 32-bit hash (Jarzynski & Olano 2020), as in the shader. */
export function pcg(v: number): number {
  const state = (Math.imul(v, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The draw for (seed, step, row): 24 random bits as a float in [0, 1). */
export function uniform01(seed: number, step: number, row: number): number {
  const h = pcg((pcg((pcg(seed >>> 0) + step) >>> 0) + row) >>> 0);
  return (h >>> 8) / 16777216;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Order-preserving u32 key of a float (rounded to f32): NaN -> 0, -0 ties with +0. */
export function keyOf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return 0;
  if (b === 0x80000000) return 0x80000000;
  return (b & 0x80000000) !== 0 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
}

/** Index of the largest logit, the lowest index on ties (NaN ranks below everything). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  let bk = keyOf(row[0]);
  for (let i = 1; i < row.length; i++) {
    const k = keyOf(row[i]);
    if (k > bk) {
      bk = k;
      best = i;
    }
  }
  return best;
}

function isGreedy(params: SamplingParams): boolean {
  return params.temperature === 0 || params.topK === 1;
}

/** Unnormalised weights exp((l - max) / T) of the tokens kept by top-k and top-p; 0 for the others. */
function keptWeights(row: ArrayLike<number>, params: SamplingParams): Float64Array {
  const V = row.length;
  const T = Math.fround(params.temperature);
  const topP = Math.fround(params.topP);
  const keys = Array.from({ length: V }, (_, i) => keyOf(row[i]));
  const top = argmax(row);
  const kmax = keys[top];
  const lmax = row[top];
  const w = new Float64Array(V);
  for (let i = 0; i < V; i++) w[i] = keys[i] === 0 ? 0 : keys[i] === kmax ? 1 : Math.exp((row[i] - lmax) / T);

  // Token indices by key, largest first.
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => keys[b] - keys[a] || a - b);
  let thr = 1; // key 0 is NaN: never kept
  if (params.topK > 1 && params.topK < V) thr = Math.max(thr, keys[order[params.topK - 1]]); // ties at the k-th all kept
  if (topP < 1) {
    let massK = 0;
    for (let i = 0; i < V; i++) if (keys[i] >= thr) massK += w[i];
    const need = topP * massK;
    // Walk groups of equal keys downwards; the first group whose cumulative mass reaches `need` sets it.
    let cum = 0;
    for (let j = 0; j < V; j++) {
      const k = keys[order[j]];
      if (k < thr) break;
      cum += w[order[j]];
      const groupEnds = j === V - 1 || keys[order[j + 1]] !== k;
      if (groupEnds && cum >= need) {
        thr = k;
        break;
      }
    }
  }
  for (let i = 0; i < V; i++) if (keys[i] < thr) w[i] = 0;
  return w;
}

/** The distribution the sampler draws one row from, after temperature, top-k and top-p (one-hot if greedy). */
export function probabilities(row: ArrayLike<number>, params: SamplingParams): Float64Array {
  if (isGreedy(params)) {
    const p = new Float64Array(row.length);
    p[argmax(row)] = 1;
    return p;
  }
  const w = keptWeights(row, params);
  let total = 0;
  for (const x of w) total += x;
  return w.map((x) => x / total);
}

/** The token drawn for one row with uniform u: the first index whose cumulative kept weight exceeds u * total. */
export function drawRow(row: ArrayLike<number>, params: SamplingParams, u: number): number {
  if (isGreedy(params)) return argmax(row);
  const w = keptWeights(row, params);
  let total = 0;
  for (const x of w) total += x;
  const target = u * total;
  // Equivalently: the last positive-weight token whose exclusive prefix is <= target (robust when
  // rounding puts target at the total).
  let chosen = -1;
  let cum = 0;
  for (let i = 0; i < w.length; i++) {
    if (w[i] > 0 && cum <= target) chosen = i;
    cum += w[i];
  }
  return chosen >= 0 ? chosen : argmax(row);
}

/** One decode step for B rows: finished rows output padId; a sampled eosId finishes its row. */
export function sample({ logits, B, V, done, eosId, padId, params, step }: {
  logits: ArrayLike<number>; // [B, V]
  B: number;
  V: number;
  done: ArrayLike<number>; // [B] nonzero = finished
  eosId: number;
  padId: number;
  params: SamplingParams;
  step: number;
}): { out: Float64Array; done: Float64Array } {
  const out = new Float64Array(B);
  const doneOut = Float64Array.from(done);
  for (let b = 0; b < B; b++) {
    if (done[b] !== 0) {
      out[b] = padId;
      continue;
    }
    const row = Array.prototype.slice.call(logits, b * V, (b + 1) * V) as number[];
    out[b] = drawRow(row, params, uniform01(params.seed, step, b));
    if (out[b] === eosId) doneOut[b] = 1;
  }
  return { out, done: doneOut };
}
