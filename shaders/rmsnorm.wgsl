// RMSNorm (Llama): y[r, c] = x[r, c] * rstd[r] * w[c], rstd[r] = 1 / sqrt(mean_c(x[r, c]^2) + eps).
// x, y [BT, C]; w [C]; rstd [BT] (saved for the backward). No bias, no mean subtraction.
//
// forward: one workgroup of 256 threads per row. Thread t sums x^2 over columns t, t+256, ... of its
// row, the 256 partial sums are combined by a fixed tree in shared memory (deterministic), then every
// thread writes its columns of y and thread 0 writes rstd. Grid (host): grid1d(BT, 1) workgroups, the
// row being the flat workgroup index wid.x + wid.y * nwg.x; indices past the last row (grid1d
// rounding) exit at once, uniformly for the whole workgroup.
//
// backward_dx: with g = w * dy, dx[r, c] (+)= rstd * (g[c] - x[r, c] * rstd^2 * mean_c(g * x[r, :])).
// Same layout as forward: one workgroup per row, tree reduction of sum_c(g * x), grid1d(BT, 1).
// ACCUMULATE (override) adds into dx (the residual stream) instead of overwriting it.
//
// forward_row, backward_dx_row: the same, one thread per row (the host picks them on CPU drivers,
// where each barrier costs a context switch). Grid (host): grid1d(BT, 64); row = flat group * 64 + lid.
//
// add_forward, add_forward_row: the residual add fused in front of forward. x = a + b (elementwise, as
// shaders/add.wgsl computes it) is written to `sum`, the residual stream's next value, and normalized as
// above: one dispatch instead of two, with the same bits. Same threads and grids as forward/forward_row.
//
// backward_dw: dw[c] = sum_r dy[r, c] * x[r, c] * rstd[r] (always overwritten). A workgroup of 64x4
// threads owns 64 columns: thread (tx, ty) sums rows ty, ty+4, ... of column 64*g + tx in order, then
// the 4 partial sums are added in a fixed order in shared memory, so the result is deterministic.
// Grid (host): grid1d(ceil(C / 64), 1) workgroups, flat index as above.

override ACCUMULATE: bool = false;

struct Params {
  rows: u32,
  C: u32,
  eps: f32,
}

// Threads per row, set by the host (a power of two, 32..256): short rows waste fewer threads.
override WG: u32 = 256u;
const DW_COLS = 64u;
const DW_SLICES = 4u;

@group(0) @binding(0) var<uniform> p: Params;

// forward bindings
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd_out: array<f32>;

// backward bindings (x at 1 and w at 2 are shared with the forward)
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read> rstd: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> dw: array<f32>;

// fused residual add bindings (add_forward*): x = res_a + res_b, written to sum
@group(0) @binding(9) var<storage, read> res_a: array<f32>;
@group(0) @binding(10) var<storage, read> res_b: array<f32>;
@group(0) @binding(11) var<storage, read_write> sum: array<f32>;

var<workgroup> red: array<f32, WG>;

// Sums red[0..WG) into red[0] by a fixed tree. Every thread of the workgroup must call it.
fn reduce_sum(lid: u32) -> f32 {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] += red[lid + s];
    }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.C;
  var ss = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let v = x[base + c];
    ss += v * v;
  }
  red[lid] = ss;
  workgroupBarrier();
  let r = inverseSqrt(reduce_sum(lid) / f32(p.C) + p.eps);
  for (var c = lid; c < p.C; c += WG) {
    y[base + c] = x[base + c] * r * w[c];
  }
  if (lid == 0u) {
    rstd_out[row] = r;
  }
}

@compute @workgroup_size(WG)
fn backward_dx(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.C;
  var s = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    s += w[c] * dy[base + c] * x[base + c];
  }
  red[lid] = s;
  workgroupBarrier();
  let r = rstd[row];
  // The rstd^3 / C term of d(rstd)/dx, folded into one coefficient for the whole row.
  let k = r * r * reduce_sum(lid) / f32(p.C);
  for (var c = lid; c < p.C; c += WG) {
    let i = base + c;
    let g = r * (w[c] * dy[i] - x[i] * k);
    if (ACCUMULATE) {
      dx[i] += g;
    } else {
      dx[i] = g;
    }
  }
}

var<workgroup> part: array<f32, DW_COLS * DW_SLICES>;

@compute @workgroup_size(DW_COLS, DW_SLICES)
fn backward_dw(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) tid: vec3u) {
  let group = wid.x + wid.y * nwg.x;
  let c = group * DW_COLS + tid.x;
  var s = 0.0;
  if (c < p.C) {
    for (var r = tid.y; r < p.rows; r += DW_SLICES) {
      let i = r * p.C + c;
      s += dy[i] * x[i] * rstd[r];
    }
  }
  part[tid.y * DW_COLS + tid.x] = s;
  workgroupBarrier();
  if (tid.y == 0u && c < p.C) {
    var total = 0.0;
    for (var k = 0u; k < DW_SLICES; k++) {
      total += part[k * DW_COLS + tid.x];
    }
    dw[c] = total;
  }
}

@compute @workgroup_size(64)
fn forward_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (row >= p.rows) { return; }
  let base = row * p.C;
  var ss = 0.0;
  for (var c = 0u; c < p.C; c++) {
    let v = x[base + c];
    ss += v * v;
  }
  let r = inverseSqrt(ss / f32(p.C) + p.eps);
  for (var c = 0u; c < p.C; c++) { y[base + c] = x[base + c] * r * w[c]; }
  rstd_out[row] = r;
}

@compute @workgroup_size(64)
fn backward_dx_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (row >= p.rows) { return; }
  let base = row * p.C;
  var s = 0.0;
  for (var c = 0u; c < p.C; c++) { s += w[c] * dy[base + c] * x[base + c]; }
  let r = rstd[row];
  let k = r * r * s / f32(p.C);
  for (var c = 0u; c < p.C; c++) {
    let i = base + c;
    let g = r * (w[c] * dy[i] - x[i] * k);
    if (ACCUMULATE) { dx[i] += g; } else { dx[i] = g; }
  }
}

@compute @workgroup_size(WG)
fn add_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.C;
  var ss = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let v = res_a[base + c] + res_b[base + c];
    sum[base + c] = v;
    ss += v * v;
  }
  red[lid] = ss;
  workgroupBarrier();
  let r = inverseSqrt(reduce_sum(lid) / f32(p.C) + p.eps);
  for (var c = lid; c < p.C; c += WG) {
    y[base + c] = (res_a[base + c] + res_b[base + c]) * r * w[c];
  }
  if (lid == 0u) {
    rstd_out[row] = r;
  }
}

@compute @workgroup_size(64)
fn add_forward_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (row >= p.rows) { return; }
  let base = row * p.C;
  var ss = 0.0;
  for (var c = 0u; c < p.C; c++) {
    let v = res_a[base + c] + res_b[base + c];
    sum[base + c] = v;
    ss += v * v;
  }
  let r = inverseSqrt(ss / f32(p.C) + p.eps);
  for (var c = 0u; c < p.C; c++) { y[base + c] = (res_a[base + c] + res_b[base + c]) * r * w[c]; }
  rstd_out[row] = r;
}
