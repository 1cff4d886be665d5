// Causal multi-head attention with grouped KV heads (GQA), forward and backward.
//
// Shapes and the shared declarations: shaders/attention_common.wgsl, which the host prepends.
// These are the workgroup kernels, picked on GPUs; CPU drivers get shaders/attention_row.wgsl.
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

var<workgroup> rowA: array<f32, MAXD>; // q_i (forward, dq) or k_j (dk, dv)
var<workgroup> rowB: array<f32, MAXD>; // dout_i (dq) or v_j (dk)
var<workgroup> sc: array<f32, WG>; // per-chunk scores
var<workgroup> pr: array<f32, WG>; // per-chunk coefficients (probabilities or dS)
var<workgroup> base: array<u32, WG>; // per-chunk row offsets (dk, dv)

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
