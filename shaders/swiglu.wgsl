// SwiGLU gate of the Llama MLP: out = silu(gate) * up, silu(g) = g * sigmoid(g) = g / (1 + exp(-g)).
// gate, up, out [n] with n = BT * F (the two halves of the up-projection, stored separately).
//
// backward: with s = sigmoid(g),
//   dgate = dout * up * s * (1 + g * (1 - s))    (d silu / dg = s + g * s * (1 - s))
//   dup   = dout * g * s
// Very negative g: exp(-g) overflows to +inf, s = 1 / inf = 0 and every term is a finite 0 (g * s is
// g * 0, never inf * 0), so no NaN appears for any finite input.
//
// Threads: one thread per element i, in every entry point. Grid (host): grid1d(n, 256) workgroups of
// 256 threads, the flat workgroup index being wid.x + wid.y * nwg.x.
//
// forward_packed: the same forward with gate and up in one buffer gu [BT, 2F], row r holding its F gate
// values then its F up values (one matmul over the adjacent gate_proj and up_proj weights writes it):
// out[r*F + c] = silu(gu[r*2F + c]) * gu[r*2F + F + c], i = r*F + c. The gate binding holds gu.

struct Params {
  n: u32,
  F: u32, // forward_packed: the row length of out (gu's rows are 2F); unused elsewhere
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
// forward
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// backward
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(6) var<storage, read_write> dup: array<f32>;

fn sigmoid(g: f32) -> f32 {
  return 1.0 / (1.0 + exp(-g));
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= p.n) { return; }
  let g = gate[i];
  out[i] = g * sigmoid(g) * up[i];
}

@compute @workgroup_size(256)
fn forward_packed(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= p.n) { return; }
  let r = i / p.F;
  let c = i % p.F;
  let g = gate[r * 2u * p.F + c];
  out[i] = g * sigmoid(g) * gate[r * 2u * p.F + p.F + c];
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= p.n) { return; }
  let g = gate[i];
  let u = up[i];
  let d = dout[i];
  let s = sigmoid(g);
  let gs = g * s;
  dgate[i] = d * u * (s + gs * (1.0 - s));
  dup[i] = d * gs;
}
