// Causal GQA attention, thread-per-row kernels for CPU drivers (the host picks them where
// gpu.kernels is 'cpu', e.g. SwiftShader, where every barrier is a context switch between fibres and
// shared memory is just more memory). Shapes, Params and bindings: shaders/attention_common.wgsl,
// which the host prepends. bwd_delta comes from shaders/attention.wgsl on both profiles.
//
// Threads and grid: one thread owns a whole row, the rows of the workgroup kernels (forward and dq: a
// query row (b, t, h); dk and dv: a key row (b, j, g) and its flattened (query head, query row i >= j)
// pairs), and walks its keys or pairs one at a time: no shared memory, no barriers. The forward folds
// each key into an online softmax as it goes. Grid (host): grid1d(rows, WG) workgroups of WG threads,
// row = flat workgroup index * WG + local index.
//
// Two variants of each kernel:
// - <entry>_row4 (D a multiple of 4, D <= 32; DC = D / 4 is an override): a row vector lives in a V8,
//   eight named vec4 chunks of which the first DC are used. SwiftShader keeps a private array that is
//   indexed by a loop variable in memory, so named chunks are 2.5-3x faster there.
// - <entry>_row (any D <= MAXD): row vectors in private arrays, one dim at a time.
// Sums over D run in a different order in the two (vec4 dot products against a running sum), so
// they agree to rounding, not to the bit.

// ---- row4: vectors of D = 4 DC <= 32 in named chunks ----------------------------------------------

override DC: u32 = 1u; // D / 4, 1..8

struct V8 { c0: vec4f, c1: vec4f, c2: vec4f, c3: vec4f, c4: vec4f, c5: vec4f, c6: vec4f, c7: vec4f }

fn q4(i: u32) -> vec4f { return vec4f(q[i], q[i + 1u], q[i + 2u], q[i + 3u]); }
fn k4(i: u32) -> vec4f { return vec4f(k[i], k[i + 1u], k[i + 2u], k[i + 3u]); }
fn v4(i: u32) -> vec4f { return vec4f(v[i], v[i + 1u], v[i + 2u], v[i + 3u]); }
fn g4(i: u32) -> vec4f { return vec4f(dout[i], dout[i + 1u], dout[i + 2u], dout[i + 3u]); }

// Row vectors starting at element i of q, k, v or dout; chunks past DC stay zero.
fn loadQ(i: u32) -> V8 {
  var r: V8;
  if (DC > 0u) { r.c0 = q4(i); } if (DC > 1u) { r.c1 = q4(i + 4u); } if (DC > 2u) { r.c2 = q4(i + 8u); } if (DC > 3u) { r.c3 = q4(i + 12u); }
  if (DC > 4u) { r.c4 = q4(i + 16u); } if (DC > 5u) { r.c5 = q4(i + 20u); } if (DC > 6u) { r.c6 = q4(i + 24u); } if (DC > 7u) { r.c7 = q4(i + 28u); }
  return r;
}
fn loadK(i: u32) -> V8 {
  var r: V8;
  if (DC > 0u) { r.c0 = k4(i); } if (DC > 1u) { r.c1 = k4(i + 4u); } if (DC > 2u) { r.c2 = k4(i + 8u); } if (DC > 3u) { r.c3 = k4(i + 12u); }
  if (DC > 4u) { r.c4 = k4(i + 16u); } if (DC > 5u) { r.c5 = k4(i + 20u); } if (DC > 6u) { r.c6 = k4(i + 24u); } if (DC > 7u) { r.c7 = k4(i + 28u); }
  return r;
}
fn loadV(i: u32) -> V8 {
  var r: V8;
  if (DC > 0u) { r.c0 = v4(i); } if (DC > 1u) { r.c1 = v4(i + 4u); } if (DC > 2u) { r.c2 = v4(i + 8u); } if (DC > 3u) { r.c3 = v4(i + 12u); }
  if (DC > 4u) { r.c4 = v4(i + 16u); } if (DC > 5u) { r.c5 = v4(i + 20u); } if (DC > 6u) { r.c6 = v4(i + 24u); } if (DC > 7u) { r.c7 = v4(i + 28u); }
  return r;
}
fn loadDout(i: u32) -> V8 {
  var r: V8;
  if (DC > 0u) { r.c0 = g4(i); } if (DC > 1u) { r.c1 = g4(i + 4u); } if (DC > 2u) { r.c2 = g4(i + 8u); } if (DC > 3u) { r.c3 = g4(i + 12u); }
  if (DC > 4u) { r.c4 = g4(i + 16u); } if (DC > 5u) { r.c5 = g4(i + 20u); } if (DC > 6u) { r.c6 = g4(i + 24u); } if (DC > 7u) { r.c7 = g4(i + 28u); }
  return r;
}

fn dot8(a: V8, b: V8) -> f32 {
  var s = 0.0;
  if (DC > 0u) { s += dot(a.c0, b.c0); } if (DC > 1u) { s += dot(a.c1, b.c1); } if (DC > 2u) { s += dot(a.c2, b.c2); } if (DC > 3u) { s += dot(a.c3, b.c3); }
  if (DC > 4u) { s += dot(a.c4, b.c4); } if (DC > 5u) { s += dot(a.c5, b.c5); } if (DC > 6u) { s += dot(a.c6, b.c6); } if (DC > 7u) { s += dot(a.c7, b.c7); }
  return s;
}

// a * alpha + x * s, chunk by chunk.
fn mad8(a: V8, alpha: f32, x: V8, s: f32) -> V8 {
  var r: V8;
  if (DC > 0u) { r.c0 = a.c0 * alpha + x.c0 * s; } if (DC > 1u) { r.c1 = a.c1 * alpha + x.c1 * s; }
  if (DC > 2u) { r.c2 = a.c2 * alpha + x.c2 * s; } if (DC > 3u) { r.c3 = a.c3 * alpha + x.c3 * s; }
  if (DC > 4u) { r.c4 = a.c4 * alpha + x.c4 * s; } if (DC > 5u) { r.c5 = a.c5 * alpha + x.c5 * s; }
  if (DC > 6u) { r.c6 = a.c6 * alpha + x.c6 * s; } if (DC > 7u) { r.c7 = a.c7 * alpha + x.c7 * s; }
  return r;
}

// The D values of x (scaled by s) as consecutive floats: chunk c holds elements 4c .. 4c + 3.
fn flat8(x: V8, s: f32) -> array<f32, 32> {
  let a = x.c0 * s; let b = x.c1 * s; let c = x.c2 * s; let d = x.c3 * s;
  let e = x.c4 * s; let f = x.c5 * s; let g = x.c6 * s; let h = x.c7 * s;
  return array<f32, 32>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w, c.x, c.y, c.z, c.w, d.x, d.y, d.z, d.w,
                        e.x, e.y, e.z, e.w, f.x, f.y, f.z, f.w, g.x, g.y, g.z, g.w, h.x, h.y, h.z, h.w);
}

@compute @workgroup_size(64)
fn forward_row4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= p.B * p.Tq * p.H) { return; }
  let row = rowOf(r, p.Tq, p.H);
  let qBase = r * p.D;
  let pos = p.qOffset + row.t;
  let s0 = start[row.b];
  let qv = loadQ(qBase);
  var acc: V8;
  let kEnd = min(pos + 1u, p.Tk); // keys [s0, kEnd); none for a padding query
  let stride = p.Hkv * p.D;
  let kvBase = row.b * p.Tk * stride + (row.h / groupSize()) * p.D;
  var m = NEG;
  var l = 0.0;
  for (var j = s0; j < kEnd; j++) {
    let kb = kvBase + j * stride;
    let s = dot8(qv, loadK(kb)) * p.scale;
    let mNew = max(m, s);
    let alpha = exp(m - mNew);
    let pj = exp(s - mNew);
    l = l * alpha + pj;
    acc = mad8(acc, alpha, loadV(kb), pj);
    m = mNew;
  }
  let o = flat8(acc, select(0.0, 1.0 / l, l > 0.0));
  for (var d = 0u; d < p.D; d++) { out[qBase + d] = o[d]; }
  lse[(row.b * p.H + row.h) * p.Tq + row.t] = select(0.0, m + log(l), l > 0.0);
}

@compute @workgroup_size(64)
fn bwd_dq_row4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let T = p.Tq;
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= p.B * T * p.H) { return; }
  let row = rowOf(r, T, p.H);
  let qBase = r * p.D;
  let s0 = start[row.b];
  let qv = loadQ(qBase);
  let gv = loadDout(qBase);
  var acc: V8;
  let rIdx = (row.b * p.H + row.h) * T + row.t;
  let lseI = lse_in[rIdx];
  let deltaI = delta_in[rIdx];
  let stride = p.Hkv * p.D;
  let kvBase = row.b * T * stride + (row.h / groupSize()) * p.D;
  let kEnd = select(s0, row.t + 1u, row.t >= s0); // padding queries keep zero gradients
  for (var j = s0; j < kEnd; j++) {
    let kb = kvBase + j * stride;
    let kv = loadK(kb);
    let ds = exp(dot8(qv, kv) * p.scale - lseI) * (dot8(gv, loadV(kb)) - deltaI);
    acc = mad8(acc, 1.0, kv, ds);
  }
  let o = flat8(acc, p.scale);
  for (var d = 0u; d < p.D; d++) { dq[qBase + d] = o[d]; }
}

@compute @workgroup_size(64)
fn bwd_dk_row4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= p.B * p.Tq * p.Hkv) { return; }
  let kr = keyRowOf(r);
  let kv = loadK(kr.kBase);
  let vv = loadV(kr.kBase);
  var acc: V8;
  let pairs = select(0u, kr.pairs, kr.j >= start[kr.b]); // masked keys keep zero gradients
  for (var n = 0u; n < pairs; n++) {
    let pi = pairOf(kr, n);
    let qx = loadQ(pi.x);
    let ds = exp(dot8(qx, kv) * p.scale - lse_in[pi.y]) * (dot8(loadDout(pi.x), vv) - delta_in[pi.y]);
    acc = mad8(acc, 1.0, qx, ds);
  }
  let o = flat8(acc, p.scale);
  for (var d = 0u; d < p.D; d++) { dk[kr.kBase + d] = o[d]; }
}

@compute @workgroup_size(64)
fn bwd_dv_row4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= p.B * p.Tq * p.Hkv) { return; }
  let kr = keyRowOf(r);
  let kv = loadK(kr.kBase);
  var acc: V8;
  let pairs = select(0u, kr.pairs, kr.j >= start[kr.b]);
  for (var n = 0u; n < pairs; n++) {
    let pi = pairOf(kr, n);
    let pij = exp(dot8(loadQ(pi.x), kv) * p.scale - lse_in[pi.y]);
    acc = mad8(acc, 1.0, loadDout(pi.x), pij);
  }
  let o = flat8(acc, 1.0);
  for (var d = 0u; d < p.D; d++) { dv[kr.kBase + d] = o[d]; }
}

// dk and dv of a key row together: each (head, query) pair's score, probability and dS computed once.
// Binds 9 storage buffers, so the host uses it only where maxStorageBuffersPerShaderStage allows; the
// sums are those of bwd_dk_row4 and bwd_dv_row4, in the same order (the same bits).
@compute @workgroup_size(64)
fn bwd_dkv_row4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * nwg.x) * WG + lid;
  if (r >= p.B * p.Tq * p.Hkv) { return; }
  let kr = keyRowOf(r);
  let kv = loadK(kr.kBase);
  let vv = loadV(kr.kBase);
  var accK: V8;
  var accV: V8;
  let pairs = select(0u, kr.pairs, kr.j >= start[kr.b]); // masked keys keep zero gradients
  for (var n = 0u; n < pairs; n++) {
    let pi = pairOf(kr, n);
    let qx = loadQ(pi.x);
    let gx = loadDout(pi.x);
    let pij = exp(dot8(qx, kv) * p.scale - lse_in[pi.y]);
    accK = mad8(accK, 1.0, qx, pij * (dot8(gx, vv) - delta_in[pi.y]));
    accV = mad8(accV, 1.0, gx, pij);
  }
  let ok = flat8(accK, p.scale);
  let ov = flat8(accV, 1.0);
  for (var d = 0u; d < p.D; d++) {
    dk[kr.kBase + d] = ok[d];
    dv[kr.kBase + d] = ov[d];
  }
}

// ---- row: any D <= MAXD, vectors in private arrays --------------------------------------------------

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
