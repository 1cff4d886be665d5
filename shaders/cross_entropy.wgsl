// Fused softmax cross-entropy with a per-token loss weight, and its deterministic weighted sum.
//
// main: one workgroup of WG threads per row r of logits [BT, V] (BT = rows; WG a power of two from 32
//   to 256, about V/4, set by the host: a 32-token vocabulary should not idle 224 threads through eight
//   barriers). Thread lid walks the columns lid, lid + WG, ... keeping an online (max, sum of exp) pair,
//   so the row is read once for its statistics however wide V is; the WG pairs are then merged by a
//   tree in shared memory.
//   Subtracting the row max keeps exp() from overflowing for large logits.
//   losses[r] = lse - logits[r, target[r]] is written for every row (by thread 0).
//   grad = 1: the same threads then overwrite logits IN PLACE with
//   dlogits[r, j] = weights[r] * (softmax[r, j] - (j == target[r])).
//   A target >= V is a caller bug: nothing out of bounds is read, the row's loss is NaN (so it shows
//   in the mean loss) and its gradient has no one-hot term.
//   Grid (host): grid1d(BT, 1) workgroups; row = wid.x + wid.y * nwg.x, surplus groups exit.
//
// main_row: the same results with one thread per row (the host picks it on CPU drivers, where each
//   barrier costs a context switch): the thread makes the online pass over its row, writes the loss
//   and, with grad = 1, the row's dlogits. Grid (host): grid1d(BT, 64); row = flat group * 64 + lid.
//
// Row blocks: logits may be one block of rows [row0, row0 + rows) of a larger batch (src/model/vocab.ts
//   splits logits [BT, V] into blocks that each fit one binding); logits rows are then local to the block
//   while targets, weights and losses are indexed by the batch row row0 + row. One call per block.
//
// weighted_sum: a single workgroup of 256 threads computes out[0] = sum_r weights[r] * losses[r].
//   Thread lid sums rows lid, lid + 256, ... in order, then a fixed tree adds the 256 partials, so
//   the result is bit-identical from run to run. Grid (host): 1 workgroup.

struct Params {
  rows: u32, // rows of this block of logits
  V: u32,
  grad: u32, // 1: also write dlogits into logits
  row0: u32, // batch row of the block's first row (targets, weights, losses)
}

struct SumParams {
  rows: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>; // [BT, V], dlogits in grad mode
@group(0) @binding(2) var<storage, read> targets: array<u32>; // [BT], read at row0 + row
@group(0) @binding(3) var<storage, read> weights: array<f32>; // [BT]
@group(0) @binding(4) var<storage, read_write> losses: array<f32>; // [BT]

@group(0) @binding(0) var<uniform> sp: SumParams; // weighted_sum reads weights and losses above
@group(0) @binding(5) var<storage, read_write> sum_out: array<f32>; // [1]

override WG: u32 = 256u; // threads per workgroup (main: per row; weighted_sum keeps 256)
const LOWEST: f32 = -0x1.fffffep+127f; // the lowest finite f32: stands in for -inf (WGSL constants must be finite)

var<workgroup> s_max: array<f32, WG>;
var<workgroup> s_sum: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; } // uniform per workgroup, so the barriers below stay in uniform control flow
  let V = p.V;
  let base = row * V;
  let g = p.row0 + row;
  let t = targets[g];
  let valid = t < V;

  // Read the target logit before any thread can overwrite the row with its gradient.
  var target_logit = 0.0;
  if (lid == 0u && valid) { target_logit = logits[base + t]; }

  // Online softmax statistics over this thread's columns.
  var m = LOWEST;
  var s = 0.0;
  for (var j = lid; j < V; j += WG) {
    let x = logits[base + j];
    let m_new = max(m, x);
    s = s * exp(m - m_new) + exp(x - m_new);
    m = m_new;
  }
  s_max[lid] = m;
  s_sum[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let m1 = s_max[lid];
      let m2 = s_max[lid + stride];
      let mm = max(m1, m2);
      s_sum[lid] = s_sum[lid] * exp(m1 - mm) + s_sum[lid + stride] * exp(m2 - mm);
      s_max[lid] = mm;
    }
    workgroupBarrier();
  }
  let lse = s_max[0] + log(s_sum[0]);

  if (lid == 0u) {
    if (valid) {
      losses[g] = lse - target_logit;
    } else {
      losses[g] = bitcast<f32>(0x7fc00000u | t); // a quiet NaN, built at runtime (constants must be finite)
    }
  }
  if (p.grad == 0u) { return; }
  let w = weights[g];
  for (var j = lid; j < V; j += WG) {
    let i = base + j;
    let onehot = select(0.0, 1.0, j == t);
    logits[i] = w * (exp(logits[i] - lse) - onehot);
  }
}

@compute @workgroup_size(WG)
fn weighted_sum(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var r = lid; r < sp.rows; r += WG) {
    acc += weights[r] * losses[r];
  }
  s_sum[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { s_sum[lid] += s_sum[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) { sum_out[0] = s_sum[0]; }
}

@compute @workgroup_size(64)
fn main_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (row >= p.rows) { return; }
  let V = p.V;
  let base = row * V;
  let g = p.row0 + row;
  let t = targets[g];
  var m = LOWEST;
  var s = 0.0;
  for (var j = 0u; j < V; j++) {
    let x = logits[base + j];
    let m_new = max(m, x);
    s = s * exp(m - m_new) + exp(x - m_new);
    m = m_new;
  }
  let lse = m + log(s);
  if (t < V) {
    losses[g] = lse - logits[base + t];
  } else {
    losses[g] = bitcast<f32>(0x7fc00000u | t);
  }
  if (p.grad == 0u) { return; }
  let w = weights[g];
  for (var j = 0u; j < V; j++) {
    let i = base + j;
    logits[i] = w * (exp(logits[i] - lse) - select(0.0, 1.0, j == t));
  }
}
