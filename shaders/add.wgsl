// Residual add: out = a + b, elementwise over n floats.
//
// Threads: one thread per element i. Grid (host): grid1d(n, 256) workgroups of 256 threads,
// the flat workgroup index being wid.x + wid.y * nwg.x.
// Backward needs no kernel of its own: the gradient flows to both inputs unchanged (the model
// accumulates it with matmul/rmsnorm `accumulate` flags or with this same kernel).

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= p.n) { return; }
  out[i] = a[i] + b[i];
}
