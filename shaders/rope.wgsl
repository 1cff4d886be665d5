// Rotary position embedding (HF Llama "rotate-half" convention), in place on x [BT, H*D]
// (q with H heads, or k with Hkv heads), positions [BT] u32.
// For head dim index i < D/2, angle = pos * inv_freq[i], inv_freq[i] = theta^(-2i/D):
//   out[i]       = x[i] * cos - x[i + D/2] * sin
//   out[i + D/2] = x[i + D/2] * cos + x[i] * sin
// INVERSE (override) rotates by -angle instead: that is both the inverse and the transpose of the
// rotation, so the backward is this same kernel with INVERSE applied in place to the gradient.
//
// Precision, as HF computes it: inv_freq is the f32 table HF builds (computed on the host, passed in
// the uniforms, so every GPU uses the same bits) and the angle is the f32 product f32(pos) * inv_freq,
// rounded once. Angles reach ~3e4 rad at long positions, where the builtin sin/cos are not accurate
// (WGSL bounds their error only on [-pi, pi], and only to 2^-11), so cos_sin below reduces the angle
// exactly (Cody-Waite) and evaluates polynomials; it adds ~1e-7 of error, far below the f32 angle's
// own rounding, so the result is what HF computes from the same f32 angle.
//
// Threads: one thread per rotated pair (row, head, i), flat index ((row * H + head) * D/2 + i), i
// fastest. Grid (host): grid1d(BT * H * D/2, 256) workgroups of 256 threads, the flat workgroup index
// being wid.x + wid.y * nwg.x.
// main2 rotates two tensors of the same rows in one dispatch (q with H heads and k with Hkv heads, in
// the forward and in the backward): flat indices below n are x's pairs as above, the next n2 are x2's
// with heads2 heads. Grid (host): grid1d(n + n2, 256).

override INVERSE: bool = false;

const MAX_HALF = 256u; // D <= 512 (checked on the host)

struct Params {
  n: u32, // pairs: BT * H * D/2
  heads: u32,
  half: u32, // D/2
  n2: u32, // main2: x2's pairs, BT * heads2 * D/2
  heads2: u32, // main2: x2's heads
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
  // inv_freq[i] is inv_freq4[i / 4][i % 4] (uniform arrays need a 16-byte stride).
  inv_freq4: array<vec4f, MAX_HALF / 4u>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read_write> x2: array<f32>;

// pi/2 = A + B + C: A has 8 significant bits, B has 9, C is the f32 remainder, so k * A and k * B
// are exact for k < 2^15 and the reduced angle is good to ~1e-7 rad up to angles of ~5e4 rad.
const TWO_OVER_PI = 0.6366197723675814;
const HALF_PI_A = 1.5703125; // 201 / 2^7
const HALF_PI_B = 0.00048351287841796875; // 507 / 2^20
const HALF_PI_C = 3.13916478589249e-7;

// (cos a, sin a) for a >= 0, accurate to a few f32 ulps. The builtins only promise 2^-11 absolute
// error (SwiftShader really is ~2e-4 off), too coarse for the FWD tolerance, so: reduce to
// r in [-pi/4, pi/4] and quadrant k mod 4 (Cody-Waite), then Taylor polynomials (truncation < 2e-9).
fn cos_sin(a: f32) -> vec2f {
  let k = round(a * TWO_OVER_PI);
  let r = ((a - k * HALF_PI_A) - k * HALF_PI_B) - k * HALF_PI_C;
  let r2 = r * r;
  let s = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0)))));
  let c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0)))));
  // a = r + q * pi/2: rotate (cos r, sin r) by q quarter turns.
  switch (u32(k) & 3u) {
    case 0u: { return vec2f(c, s); }
    case 1u: { return vec2f(-s, c); }
    case 2u: { return vec2f(-c, -s); }
    default: { return vec2f(s, -c); }
  }
}

// (cos, sin) of pair i of a row at `row`, rotating backward when INVERSE.
fn rotation(row: u32, i: u32) -> vec2f {
  let cs = cos_sin(f32(positions[row]) * p.inv_freq4[i / 4u][i % 4u]);
  return vec2f(cs.x, select(cs.y, -cs.y, INVERSE));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (t >= p.n) { return; }
  let i = t % p.half;
  let rowHead = t / p.half; // row * H + head
  let row = rowHead / p.heads;
  let r = rotation(row, i);
  let c = r.x;
  let s = r.y;
  let lo = rowHead * 2u * p.half + i;
  let hi = lo + p.half;
  let x1 = x[lo];
  let x2 = x[hi];
  x[lo] = x1 * c - x2 * s;
  x[hi] = x2 * c + x1 * s;
}

@compute @workgroup_size(256)
fn main2(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (t >= p.n + p.n2) { return; }
  let second = t >= p.n;
  let u = select(t, t - p.n, second);
  let heads = select(p.heads, p.heads2, second);
  let i = u % p.half;
  let rowHead = u / p.half;
  let r = rotation(rowHead / heads, i);
  let lo = rowHead * 2u * p.half + i;
  let hi = lo + p.half;
  if (second) {
    let x1 = x2[lo];
    let y1 = x2[hi];
    x2[lo] = x1 * r.x - y1 * r.y;
    x2[hi] = y1 * r.x + x1 * r.y;
  } else {
    let x1 = x[lo];
    let y1 = x[hi];
    x[lo] = x1 * r.x - y1 * r.y;
    x[hi] = y1 * r.x + x1 * r.y;
  }
}
