// AdamW over flat buffers (all parameters in one buffer, their gradients and moments in the same
// layout), with clipping by the global gradient norm.
//
// norm_partials: out partials[g] = sum of g^2 over chunk g of CHUNK (4096) gradient floats.
//   One workgroup of 256 threads per chunk; thread lid reads elements base + lid + k*256 (k < 16,
//   coalesced), then a tree in shared memory adds the 256 sums. Grid (host): grid1d(groups, 1) with
//   groups = ceil(n / CHUNK); group = wid.x + wid.y * nwg.x, surplus groups exit.
// norm_partials_row (CPU drivers, where a barrier is a context switch): the same partials, thread
//   `group` summing its whole chunk alone, four running sums over consecutive elements added at the
//   end (a different order from the tree: the norms agree to rounding). Grid (host): grid1d(groups, 64)
//   workgroups of 64 threads, group = (wid.x + wid.y * nwg.x) * 64 + lid.
// norm_total: out[0] = sum of the groups partials, one workgroup of 256 threads (strided loop, then
//   the same tree). Grid (host): 1 workgroup. Both stages use fixed orders, so the norm is deterministic.
// update: one thread per element i < n, grid1d(n, 256) workgroups of 256 threads.
//   s = maxGradNorm > 0 ? min(1, maxGradNorm / (sqrt(normSq) + 1e-6)) : 1;  g = s * grads[i]
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  mhat = m / bc1;  vhat = v / bc2
//   p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p), the decay term only for i < decayEnd.
//   The bias corrections bc1 = 1 - b1^t, bc2 = 1 - b2^t come from the host (computed in float64).

const WG: u32 = 256u;
override CHUNK: u32; // gradient floats per norm_partials workgroup, set by the host (src/ops/adamw.ts)

// --- gradient norm ---

struct NormParams {
  n: u32, // floats in grads
  groups: u32, // ceil(n / CHUNK): the partials
}

@group(0) @binding(0) var<uniform> np: NormParams;
@group(0) @binding(1) var<storage, read> norm_grads: array<f32>; // [n]
@group(0) @binding(2) var<storage, read_write> partials: array<f32>; // [groups]
@group(0) @binding(3) var<storage, read_write> norm_out: array<f32>; // [1]

var<workgroup> s_sum: array<f32, WG>;

// Adds s_sum[0..WG) into s_sum[0] in a fixed tree order. Call from uniform control flow.
fn tree_sum(lid: u32) {
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { s_sum[lid] += s_sum[lid + stride]; }
    workgroupBarrier();
  }
}

@compute @workgroup_size(256)
fn norm_partials(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let group = wid.x + wid.y * nwg.x;
  if (group >= np.groups) { return; } // uniform per workgroup
  let end = min((group + 1u) * CHUNK, np.n);
  var acc = 0.0;
  for (var i = group * CHUNK + lid; i < end; i += WG) {
    let g = norm_grads[i];
    acc += g * g;
  }
  s_sum[lid] = acc;
  tree_sum(lid);
  if (lid == 0u) { partials[group] = s_sum[0]; }
}

@compute @workgroup_size(64)
fn norm_partials_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let group = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (group >= np.groups) { return; }
  let end = min((group + 1u) * CHUNK, np.n);
  var i = group * CHUNK;
  var acc = vec4f(0.0);
  for (; i + 4u <= end; i += 4u) {
    let g = vec4f(norm_grads[i], norm_grads[i + 1u], norm_grads[i + 2u], norm_grads[i + 3u]);
    acc = fma(g, g, acc);
  }
  var s = (acc.x + acc.y) + (acc.z + acc.w);
  for (; i < end; i++) { s = fma(norm_grads[i], norm_grads[i], s); }
  partials[group] = s;
}

@compute @workgroup_size(256)
fn norm_total(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < np.groups; i += WG) { acc += partials[i]; }
  s_sum[lid] = acc;
  tree_sum(lid);
  if (lid == 0u) { norm_out[0] = s_sum[0]; }
}

// --- the update ---

struct Hyper {
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  bc1: f32, // 1 - beta1^step
  bc2: f32, // 1 - beta2^step
  max_grad_norm: f32, // <= 0: no clipping
  n: u32,
  decay_end: u32, // elements [0, decay_end) get weight decay
}

@group(0) @binding(0) var<uniform> h: Hyper;
@group(0) @binding(4) var<storage, read_write> params: array<f32>; // [n]
@group(0) @binding(5) var<storage, read> grads: array<f32>; // [n]
@group(0) @binding(6) var<storage, read_write> m1: array<f32>; // [n] first moment
@group(0) @binding(7) var<storage, read_write> m2: array<f32>; // [n] second moment
@group(0) @binding(8) var<storage, read> norm_sq: array<f32>; // [1] from norm_total

@compute @workgroup_size(256)
fn update(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= h.n) { return; }
  var scale = 1.0;
  if (h.max_grad_norm > 0.0) { scale = min(1.0, h.max_grad_norm / (sqrt(norm_sq[0]) + 1e-6)); }
  let g = scale * grads[i];
  let m = h.beta1 * m1[i] + (1.0 - h.beta1) * g;
  let v = h.beta2 * m2[i] + (1.0 - h.beta2) * g * g;
  m1[i] = m;
  m2[i] = v;
  let p = params[i];
  var step = (m / h.bc1) / (sqrt(v / h.bc2) + h.eps);
  if (i < h.decay_end) { step += h.weight_decay * p; }
  params[i] = p - h.lr * step;
}
