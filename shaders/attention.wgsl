// Causal multi-head attention with grouped KV heads (GQA), forward and backward.
//
// Shapes: q, out, dout, dq [B, Tq, H, D]; k, v, dk, dv [B, Tk, Hkv, D]; lse, delta [B, H, Tq] (f32);
// start [B] (u32, first real position of each left-padded sequence). Query head h reads kv head
// g = h / (H / Hkv). Query row t sits at absolute position pos = qOffset + t and attends keys j with
// start[b] <= j <= pos. Rows with pos < start[b] are padding: zero output, lse 0, zero gradients.
// The backward entry points assume training (Tq = Tk = T, qOffset = 0).
//
// Threads and grid (the host dispatches grid1d(rows, 1), one workgroup of WG = 64 threads per row;
// the flat row index is wid.x + wid.y * nwg.x):
// - forward:  a row is (b, t, h). Keys are taken in chunks of WG: thread i scores key j0 + i (a full
//   dot product over D, q from shared memory), then the threads switch roles and thread i owns output
//   dims i and i + WG, folding the chunk into an online softmax (running max m, sum l, accumulator).
//   Two barriers per chunk of 64 keys; works the same for decoding (Tq = 1, Tk large).
// - bwd_delta: one thread per (b, t, h) row (grid1d(rows, WG)): delta = sum_d dout * out.
// - bwd_dq:   a row is (b, i, h); as forward, with P_ij = exp(s_ij - lse_i) known, so no max is needed:
//   dq_i = scale * sum_j P_ij (dP_ij - delta_i) k_j, dP_ij = dout_i . v_j.
// - bwd_dk, bwd_dv: a row is (b, j, g), one key row of kv head g. The (query head of group g, query row
//   i >= j) pairs are flattened into one index and taken in chunks of WG, thread per pair, then threads
//   over D accumulate dk_j = scale * sum P_ij (dP_ij - delta_i) q_i and dv_j = sum P_ij dout_i.
//   dk and dv are separate kernels so no entry point binds more than 8 storage buffers.
// Every sum runs in a fixed order in one workgroup: the results are deterministic (no atomics).
//
// Row variants (forward_row, bwd_dq_row, bwd_dk_row, bwd_dv_row; the host picks them on CPU drivers
// such as SwiftShader, where a barrier costs a context switch): one thread owns a whole row, the same
// rows as above, with its vectors in private arrays, and walks its keys (or its (head, query) pairs)
// one at a time: no shared memory, no barriers. The forward folds each key into the online softmax
// as it goes. Grid (host): grid1d(rows, WG), row = flat workgroup index * WG + local index.

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

var<workgroup> rowA: array<f32, MAXD>; // q_i (forward, dq) or k_j (dk, dv)
var<workgroup> rowB: array<f32, MAXD>; // dout_i (dq) or v_j (dk)
var<workgroup> sc: array<f32, WG>; // per-chunk scores
var<workgroup> pr: array<f32, WG>; // per-chunk coefficients (probabilities or dS)
var<workgroup> base: array<u32, WG>; // per-chunk row offsets (dk, dv)

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

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.B * p.Tq * p.H) { return; }
  let row = rowOf(r, p.Tq, p.H);
  let qBase = r * p.D;
  let lseIdx = (row.b * p.H + row.h) * p.Tq + row.t;
  let pos = p.qOffset + row.t;
  let s0 = start[row.b];
  let d0 = lid;
  let d1 = lid + WG;
  if (pos < s0) { // padding query
    if (d0 < p.D) { out[qBase + d0] = 0.0; }
    if (d1 < p.D) { out[qBase + d1] = 0.0; }
    if (lid == 0u) { lse[lseIdx] = 0.0; }
    return;
  }
  for (var d = lid; d < p.D; d += WG) { rowA[d] = q[qBase + d]; }
  workgroupBarrier();

  let kEnd = min(pos + 1u, p.Tk); // keys [s0, kEnd)
  let stride = p.Hkv * p.D;
  let kvBase = row.b * p.Tk * stride + (row.h / groupSize()) * p.D;
  var m = NEG;
  var l = 0.0;
  var acc0 = 0.0;
  var acc1 = 0.0;
  for (var j0 = s0; j0 < kEnd; j0 += WG) {
    // Phase 1: thread lid scores key j0 + lid.
    let j = j0 + lid;
    var s = NEG;
    if (j < kEnd) {
      let kb = kvBase + j * stride;
      var acc = 0.0;
      for (var d = 0u; d < p.D; d++) { acc += rowA[d] * k[kb + d]; }
      s = acc * p.scale;
    }
    sc[lid] = s;
    workgroupBarrier();
    // Phase 2: every thread finds the same chunk max; thread lid turns its score into a probability.
    var mc = NEG;
    for (var i = 0u; i < WG; i++) { mc = max(mc, sc[i]); }
    let mNew = max(m, mc);
    pr[lid] = select(0.0, exp(s - mNew), j < kEnd);
    workgroupBarrier();
    // Phase 3: thread lid folds the chunk into output dims d0, d1 (rescaling the old state).
    let n = min(WG, kEnd - j0);
    var ls = 0.0;
    var a0 = 0.0;
    var a1 = 0.0;
    for (var i = 0u; i < n; i++) {
      let pi = pr[i];
      let vb = kvBase + (j0 + i) * stride;
      ls += pi;
      if (d0 < p.D) { a0 += pi * v[vb + d0]; }
      if (d1 < p.D) { a1 += pi * v[vb + d1]; }
    }
    let alpha = exp(m - mNew);
    l = l * alpha + ls;
    acc0 = acc0 * alpha + a0;
    acc1 = acc1 * alpha + a1;
    m = mNew;
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  if (d0 < p.D) { out[qBase + d0] = acc0 * inv; }
  if (d1 < p.D) { out[qBase + d1] = acc1 * inv; }
  if (lid == 0u) { lse[lseIdx] = select(0.0, m + log(l), l > 0.0); }
}

@compute @workgroup_size(64)
fn bwd_delta(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= p.B * p.Tq * p.H) { return; }
  let row = rowOf(r, p.Tq, p.H);
  var acc = 0.0;
  for (var d = 0u; d < p.D; d++) { acc += dout[r * p.D + d] * out_in[r * p.D + d]; }
  delta[(row.b * p.H + row.h) * p.Tq + row.t] = acc;
}

@compute @workgroup_size(64)
fn bwd_dq(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let T = p.Tq;
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.B * T * p.H) { return; }
  let row = rowOf(r, T, p.H);
  let qBase = r * p.D;
  let s0 = start[row.b];
  let d0 = lid;
  let d1 = lid + WG;
  var acc0 = 0.0;
  var acc1 = 0.0;
  if (row.t >= s0) { // padding queries keep zero gradients
    for (var d = lid; d < p.D; d += WG) {
      rowA[d] = q[qBase + d];
      rowB[d] = dout[qBase + d];
    }
    workgroupBarrier();
    let rIdx = (row.b * p.H + row.h) * T + row.t;
    let lseI = lse_in[rIdx];
    let deltaI = delta_in[rIdx];
    let kEnd = row.t + 1u;
    let stride = p.Hkv * p.D;
    let kvBase = row.b * T * stride + (row.h / groupSize()) * p.D;
    for (var j0 = s0; j0 < kEnd; j0 += WG) {
      // Thread lid: dS for key j0 + lid.
      let j = j0 + lid;
      var ds = 0.0;
      if (j < kEnd) {
        let kb = kvBase + j * stride;
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < p.D; d++) {
          s += rowA[d] * k[kb + d];
          dp += rowB[d] * v[kb + d];
        }
        ds = exp(s * p.scale - lseI) * (dp - deltaI);
      }
      pr[lid] = ds;
      workgroupBarrier();
      // Threads over D: dq += dS_j k_j.
      let n = min(WG, kEnd - j0);
      for (var i = 0u; i < n; i++) {
        let kb = kvBase + (j0 + i) * stride;
        if (d0 < p.D) { acc0 += pr[i] * k[kb + d0]; }
        if (d1 < p.D) { acc1 += pr[i] * k[kb + d1]; }
      }
      workgroupBarrier();
    }
  }
  if (d0 < p.D) { dq[qBase + d0] = acc0 * p.scale; }
  if (d1 < p.D) { dq[qBase + d1] = acc1 * p.scale; }
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

@compute @workgroup_size(64)
fn bwd_dk(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.B * p.Tq * p.Hkv) { return; }
  let kr = keyRowOf(r);
  let d0 = lid;
  let d1 = lid + WG;
  var acc0 = 0.0;
  var acc1 = 0.0;
  if (kr.j >= start[kr.b]) { // masked keys keep zero gradients; every query i >= j is real
    for (var d = lid; d < p.D; d += WG) {
      rowA[d] = k[kr.kBase + d];
      rowB[d] = v[kr.kBase + d];
    }
    workgroupBarrier();
    for (var n0 = 0u; n0 < kr.pairs; n0 += WG) {
      // Thread lid: dS of pair n0 + lid.
      let n = n0 + lid;
      var ds = 0.0;
      var qb = 0u;
      if (n < kr.pairs) {
        let pi = pairOf(kr, n);
        qb = pi.x;
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < p.D; d++) {
          s += q[qb + d] * rowA[d];
          dp += dout[qb + d] * rowB[d];
        }
        ds = exp(s * p.scale - lse_in[pi.y]) * (dp - delta_in[pi.y]);
      }
      pr[lid] = ds;
      base[lid] = qb;
      workgroupBarrier();
      // Threads over D: dk += dS q_i.
      let cnt = min(WG, kr.pairs - n0);
      for (var i = 0u; i < cnt; i++) {
        if (d0 < p.D) { acc0 += pr[i] * q[base[i] + d0]; }
        if (d1 < p.D) { acc1 += pr[i] * q[base[i] + d1]; }
      }
      workgroupBarrier();
    }
  }
  if (d0 < p.D) { dk[kr.kBase + d0] = acc0 * p.scale; }
  if (d1 < p.D) { dk[kr.kBase + d1] = acc1 * p.scale; }
}

@compute @workgroup_size(64)
fn bwd_dv(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.B * p.Tq * p.Hkv) { return; }
  let kr = keyRowOf(r);
  let d0 = lid;
  let d1 = lid + WG;
  var acc0 = 0.0;
  var acc1 = 0.0;
  if (kr.j >= start[kr.b]) {
    for (var d = lid; d < p.D; d += WG) { rowA[d] = k[kr.kBase + d]; }
    workgroupBarrier();
    for (var n0 = 0u; n0 < kr.pairs; n0 += WG) {
      // Thread lid: P of pair n0 + lid.
      let n = n0 + lid;
      var pij = 0.0;
      var qb = 0u;
      if (n < kr.pairs) {
        let pi = pairOf(kr, n);
        qb = pi.x;
        var s = 0.0;
        for (var d = 0u; d < p.D; d++) { s += q[qb + d] * rowA[d]; }
        pij = exp(s * p.scale - lse_in[pi.y]);
      }
      pr[lid] = pij;
      base[lid] = qb;
      workgroupBarrier();
      // Threads over D: dv += P dout_i.
      let cnt = min(WG, kr.pairs - n0);
      for (var i = 0u; i < cnt; i++) {
        if (d0 < p.D) { acc0 += pr[i] * dout[base[i] + d0]; }
        if (d1 < p.D) { acc1 += pr[i] * dout[base[i] + d1]; }
      }
      workgroupBarrier();
    }
  }
  if (d0 < p.D) { dv[kr.kBase + d0] = acc0; }
  if (d1 < p.D) { dv[kr.kBase + d1] = acc1; }
}

// ---- row variants: one thread per row ------------------------------------------------------------

@compute @workgroup_size(64)
fn forward_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= p.B * p.Tq * p.H) { return; }
  let row = rowOf(r, p.Tq, p.H);
  let qBase = r * p.D;
  let lseIdx = (row.b * p.H + row.h) * p.Tq + row.t;
  let pos = p.qOffset + row.t;
  let s0 = start[row.b];
  var qv: array<f32, MAXD>;
  var acc: array<f32, MAXD>;
  for (var d = 0u; d < p.D; d++) { qv[d] = q[qBase + d]; }
  let kEnd = min(pos + 1u, p.Tk); // keys [s0, kEnd); none for a padding query
  let stride = p.Hkv * p.D;
  let kvBase = row.b * p.Tk * stride + (row.h / groupSize()) * p.D;
  var m = NEG;
  var l = 0.0;
  for (var j = s0; j < kEnd; j++) {
    let kb = kvBase + j * stride;
    var dot = 0.0;
    for (var d = 0u; d < p.D; d++) { dot += qv[d] * k[kb + d]; }
    let s = dot * p.scale;
    let mNew = max(m, s);
    let alpha = exp(m - mNew);
    let pj = exp(s - mNew);
    l = l * alpha + pj;
    for (var d = 0u; d < p.D; d++) { acc[d] = acc[d] * alpha + pj * v[kb + d]; }
    m = mNew;
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var d = 0u; d < p.D; d++) { out[qBase + d] = acc[d] * inv; }
  lse[lseIdx] = select(0.0, m + log(l), l > 0.0);
}

@compute @workgroup_size(64)
fn bwd_dq_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let T = p.Tq;
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= p.B * T * p.H) { return; }
  let row = rowOf(r, T, p.H);
  let qBase = r * p.D;
  let s0 = start[row.b];
  var qv: array<f32, MAXD>;
  var gv: array<f32, MAXD>; // dout_i
  var acc: array<f32, MAXD>;
  for (var d = 0u; d < p.D; d++) { qv[d] = q[qBase + d]; gv[d] = dout[qBase + d]; }
  let rIdx = (row.b * p.H + row.h) * T + row.t;
  let lseI = lse_in[rIdx];
  let deltaI = delta_in[rIdx];
  let stride = p.Hkv * p.D;
  let kvBase = row.b * T * stride + (row.h / groupSize()) * p.D;
  let kEnd = select(s0, row.t + 1u, row.t >= s0); // padding queries keep zero gradients
  for (var j = s0; j < kEnd; j++) {
    let kb = kvBase + j * stride;
    var s = 0.0;
    var dp = 0.0;
    for (var d = 0u; d < p.D; d++) { s += qv[d] * k[kb + d]; dp += gv[d] * v[kb + d]; }
    let ds = exp(s * p.scale - lseI) * (dp - deltaI);
    for (var d = 0u; d < p.D; d++) { acc[d] += ds * k[kb + d]; }
  }
  for (var d = 0u; d < p.D; d++) { dq[qBase + d] = acc[d] * p.scale; }
}

@compute @workgroup_size(64)
fn bwd_dk_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= p.B * p.Tq * p.Hkv) { return; }
  let kr = keyRowOf(r);
  var kv: array<f32, MAXD>;
  var vv: array<f32, MAXD>;
  var acc: array<f32, MAXD>;
  for (var d = 0u; d < p.D; d++) { kv[d] = k[kr.kBase + d]; vv[d] = v[kr.kBase + d]; }
  let pairs = select(0u, kr.pairs, kr.j >= start[kr.b]); // masked keys keep zero gradients
  for (var n = 0u; n < pairs; n++) {
    let pi = pairOf(kr, n);
    var s = 0.0;
    var dp = 0.0;
    for (var d = 0u; d < p.D; d++) { s += q[pi.x + d] * kv[d]; dp += dout[pi.x + d] * vv[d]; }
    let ds = exp(s * p.scale - lse_in[pi.y]) * (dp - delta_in[pi.y]);
    for (var d = 0u; d < p.D; d++) { acc[d] += ds * q[pi.x + d]; }
  }
  for (var d = 0u; d < p.D; d++) { dk[kr.kBase + d] = acc[d] * p.scale; }
}

@compute @workgroup_size(64)
fn bwd_dv_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= p.B * p.Tq * p.Hkv) { return; }
  let kr = keyRowOf(r);
  var kv: array<f32, MAXD>;
  var acc: array<f32, MAXD>;
  for (var d = 0u; d < p.D; d++) { kv[d] = k[kr.kBase + d]; }
  let pairs = select(0u, kr.pairs, kr.j >= start[kr.b]);
  for (var n = 0u; n < pairs; n++) {
    let pi = pairOf(kr, n);
    var s = 0.0;
    for (var d = 0u; d < p.D; d++) { s += q[pi.x + d] * kv[d]; }
    let pij = exp(s * p.scale - lse_in[pi.y]);
    for (var d = 0u; d < p.D; d++) { acc[d] += pij * dout[pi.x + d]; }
  }
  for (var d = 0u; d < p.D; d++) { dv[kr.kBase + d] = acc[d]; }
}
