// KV-cache write: copies the key (or value) rows of the current step into the cache.
//
//   src   [B, Tq, W]  rows just computed (W = Hkv * D)
//   cache [B, S, W]   S = cache capacity; rows pos0 .. pos0+Tq-1 of each sequence are written
//
// main: one thread per element of src (i = (b*Tq + t)*W + c). Grid (host): grid1d(B*Tq*W, 256)
// workgroups of 256 threads; flat workgroup index wid.x + wid.y * nwg.x. pos0 changes every decode
// step: the host rewrites the uniforms, nothing else.
//
// pair: the keys and the values of a layer in one dispatch (src -> cache as above, and src2 -> cache2 of
// the same shape): each thread copies its element of both. Same threads and grid as main.

struct Params {
  B: u32,
  Tq: u32,
  S: u32,
  W: u32,
  pos0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> cache: array<f32>;

@group(0) @binding(3) var<storage, read> src2: array<f32>;
@group(0) @binding(4) var<storage, read_write> cache2: array<f32>;

// Where element i of src goes in the cache, or -1 past the rows or the cache.
fn dest(i: u32) -> i32 {
  if (i >= p.B * p.Tq * p.W) { return -1; }
  let c = i % p.W;
  let row = i / p.W;
  let t = row % p.Tq;
  let b = row / p.Tq;
  let pos = p.pos0 + t;
  if (pos >= p.S) { return -1; }
  return i32((b * p.S + pos) * p.W + c);
}

@compute @workgroup_size(256)
fn pair(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  let d = dest(i);
  if (d < 0) { return; }
  cache[d] = src[i];
  cache2[d] = src2[i];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= p.B * p.Tq * p.W) { return; }
  let c = i % p.W;
  let row = i / p.W;
  let t = row % p.Tq;
  let b = row / p.Tq;
  let pos = p.pos0 + t;
  if (pos >= p.S) { return; }
  cache[(b * p.S + pos) * p.W + c] = src[i];
}
