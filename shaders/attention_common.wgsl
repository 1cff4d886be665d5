// Declarations shared by shaders/attention.wgsl (workgroup kernels, for GPUs) and
// shaders/attention_row.wgsl (thread-per-row kernels, for CPU drivers): the host prepends this file to
// each (src/ops/attention.ts). Causal multi-head attention with grouped KV heads (GQA).
//
// Shapes: q, out, dout, dq [B, Tq, H, D]; k, v, dk, dv [B, Tk, Hkv, D]; lse, delta [B, H, Tq] (f32);
// start [B] (u32, first real position of each left-padded sequence). Query head h reads kv head
// g = h / (H / Hkv). Query row t sits at absolute position pos = qOffset + t and attends keys j with
// start[b] <= j <= pos. Rows with pos < start[b] are padding: zero output, lse 0, zero gradients.
// The backward entry points assume training (Tq = Tk = T, qOffset = 0).

struct Params {
  B: u32,
  Tq: u32,
  Tk: u32,
  H: u32,
  Hkv: u32,
  D: u32,
  qOffset: u32,
  scale: f32,
}

const WG: u32 = 64u;
const MAXD: u32 = 128u; // each thread owns output dims lid and lid + WG
const NEG: f32 = -3.0e38; // "minus infinity" that keeps exp(NEG - m) = 0 without NaNs

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> start: array<u32>;
// forward outputs
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
// backward inputs (read-only twins of the forward outputs) and outputs
@group(0) @binding(7) var<storage, read> out_in: array<f32>;
@group(0) @binding(8) var<storage, read> dout: array<f32>;
@group(0) @binding(9) var<storage, read_write> delta: array<f32>;
@group(0) @binding(10) var<storage, read> lse_in: array<f32>;
@group(0) @binding(11) var<storage, read> delta_in: array<f32>;
@group(0) @binding(12) var<storage, read_write> dq: array<f32>;
@group(0) @binding(13) var<storage, read_write> dk: array<f32>;
@group(0) @binding(14) var<storage, read_write> dv: array<f32>;

// Row (b, t, h) of a [B, T, H] grid with h fastest: the layout of q and out rows.
struct Row {
  b: u32,
  t: u32,
  h: u32,
}

fn rowOf(r: u32, T: u32, H: u32) -> Row {
  return Row(r / (T * H), (r / H) % T, r % H);
}

fn groupSize() -> u32 {
  return p.H / p.Hkv;
}

// Key row (b, j, g) of dk/dv and the size of its flattened (query head, query row i >= j) index space.
struct KeyRow {
  b: u32,
  j: u32,
  g: u32,
  kBase: u32, // offset of k_j / v_j / dk_j / dv_j
  rows: u32, // T - j query rows per head
  pairs: u32, // groupSize() * rows
}

fn keyRowOf(r: u32) -> KeyRow {
  let kr = rowOf(r, p.Tq, p.Hkv);
  let rows = p.Tq - kr.t;
  return KeyRow(kr.b, kr.t, kr.h, r * p.D, rows, groupSize() * rows);
}

// Pair n of a key row: query head g * G + n / rows, query row j + n % rows. Returns (q row offset, lse index).
fn pairOf(kr: KeyRow, n: u32) -> vec2u {
  let h = kr.g * groupSize() + n / kr.rows;
  let i = kr.j + n % kr.rows;
  return vec2u(((kr.b * p.Tq + i) * p.H + h) * p.D, (kr.b * p.H + h) * p.Tq + i);
}
