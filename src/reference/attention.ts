// CPU twin of src/ops/attention.ts, in float64. Tests only.
//
// Layouts: q, out, dout, dq [B, Tq, H, D]; k, v, dk, dv [B, Tk, Hkv, D]; lse [B, H, Tq].
// Query head h uses kv head h / (H / Hkv). Query t (position qOffset + t) attends keys
// start[b] <= j <= qOffset + t; rows before start[b] are padding (zero output, lse 0, zero gradients).

interface Shape {
  B: number;
  H: number;
  Hkv: number;
  D: number;
}

const qIdx = (s: Shape, T: number, b: number, t: number, h: number) => ((b * T + t) * s.H + h) * s.D;
const kIdx = (s: Shape, T: number, b: number, j: number, h: number) => ((b * T + j) * s.Hkv + Math.floor(h / (s.H / s.Hkv))) * s.D;

function dotAt(x: ArrayLike<number>, i: number, y: ArrayLike<number>, j: number, D: number): number {
  let s = 0;
  for (let d = 0; d < D; d++) s += x[i + d] * y[j + d];
  return s;
}

/** Softmax probabilities of one query row over its keys [lo, hi], and their log-sum-exp. */
function probs(
  s: Shape,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  Tq: number,
  Tk: number,
  b: number,
  t: number,
  h: number,
  lo: number,
  hi: number,
  scale: number,
): { p: Float64Array; lse: number } {
  const sc = new Float64Array(hi - lo + 1);
  for (let j = lo; j <= hi; j++) sc[j - lo] = scale * dotAt(q, qIdx(s, Tq, b, t, h), k, kIdx(s, Tk, b, j, h), s.D);
  const m = Math.max(...sc);
  let l = 0;
  for (let j = 0; j < sc.length; j++) l += Math.exp(sc[j] - m);
  const p = sc.map((x) => Math.exp(x - m) / l);
  return { p, lse: m + Math.log(l) };
}

export function attention(args: {
  q: ArrayLike<number>;
  k: ArrayLike<number>;
  v: ArrayLike<number>;
  start: ArrayLike<number>;
  B: number;
  Tq: number;
  Tk: number;
  H: number;
  Hkv: number;
  D: number;
  qOffset?: number;
  scale?: number;
}): { out: Float64Array; lse: Float64Array } {
  const { q, k, v, start, B, Tq, Tk, H, D } = args;
  const qOffset = args.qOffset ?? 0;
  const scale = args.scale ?? 1 / Math.sqrt(D);
  const out = new Float64Array(B * Tq * H * D);
  const lse = new Float64Array(B * H * Tq);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < Tq; t++) {
      const pos = qOffset + t;
      if (pos < start[b]) continue; // padding query: zeros
      const hi = Math.min(pos, Tk - 1);
      for (let h = 0; h < H; h++) {
        const r = probs(args, q, k, Tq, Tk, b, t, h, start[b], hi, scale);
        lse[(b * H + h) * Tq + t] = r.lse;
        const o = qIdx(args, Tq, b, t, h);
        for (let j = start[b]; j <= hi; j++) {
          const vj = kIdx(args, Tk, b, j, h);
          for (let d = 0; d < D; d++) out[o + d] += r.p[j - start[b]] * v[vj + d];
        }
      }
    }
  }
  return { out, lse };
}

/** Gradients of attention (training: Tq = Tk = T, qOffset 0) given dout, by the textbook chain rule. */
export function attentionBackward(args: {
  q: ArrayLike<number>;
  k: ArrayLike<number>;
  v: ArrayLike<number>;
  dout: ArrayLike<number>;
  start: ArrayLike<number>;
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
  scale?: number;
}): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { q, k, v, dout, start, B, T, H, Hkv, D } = args;
  const scale = args.scale ?? 1 / Math.sqrt(D);
  const dq = new Float64Array(B * T * H * D);
  const dk = new Float64Array(B * T * Hkv * D);
  const dv = new Float64Array(B * T * Hkv * D);
  for (let b = 0; b < B; b++) {
    const s0 = start[b];
    for (let i = s0; i < T; i++) {
      for (let h = 0; h < H; h++) {
        const { p } = probs(args, q, k, T, T, b, i, h, s0, i, scale);
        const qi = qIdx(args, T, b, i, h);
        // dP_ij = dout_i . v_j; dS_ij = P_ij (dP_ij - sum_l P_il dP_il).
        const dp = p.map((_, n) => dotAt(dout, qi, v, kIdx(args, T, b, s0 + n, h), D));
        let rowsum = 0;
        for (let n = 0; n < p.length; n++) rowsum += p[n] * dp[n];
        for (let n = 0; n < p.length; n++) {
          const kj = kIdx(args, T, b, s0 + n, h);
          const ds = p[n] * (dp[n] - rowsum);
          for (let d = 0; d < D; d++) {
            dq[qi + d] += scale * ds * k[kj + d];
            dk[kj + d] += scale * ds * q[qi + d];
            dv[kj + d] += p[n] * dout[qi + d];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
