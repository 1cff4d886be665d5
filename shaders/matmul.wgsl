// Matrix multiply for every linear layer, forward and backward:
//   C[M,N] (+)= alpha · op(A)[M,K] · op(B)[K,N] (+ bias[N] on every row),
// op(A) = A (A stored [M,K]) or A^T (TRANS_A: A stored [K,M]),
// op(B) = B (B stored [K,N]) or B^T (TRANS_B: B stored [N,K], the PyTorch Linear weight layout).
// The linear layer uses it as y[BT,F] = x[BT,C]·W^T + b (TRANS_B), dx[BT,C] (+)= dy[BT,F]·W[F,C]
// (no transposes) and dW[F,C] (+)= dy^T·x (TRANS_A); the bias gradient is sum_rows below.
// alpha (a uniform, 1 for plain products) scales the product, not C or the bias: LoRA adds
// scale·(x·A^T)·B^T onto a linear's output with one accumulating call.
// Each operand may be a window of a larger row-major matrix (BLAS-style leading dimensions): element
// (i, j) of the stored A is a[a_off + i * lda + j], likewise B with b_off, ldb and C with c_off, ldc
// (plain products: offsets 0, lda = stored row length). The LM head over a vocabulary split into row
// chunks uses them to write and read logits columns [v0, v1) of [rows, V] and to take row blocks.
//
// Tiling (entry points main, main_bias): each workgroup of 16x16 threads owns one 64x64 tile of C.
// The K axis is walked in steps of 16: the workgroup stages a 64x16 slab of op(A) and a 16x64 slab of
// op(B) in shared memory (zero-padded past M, N, K, so any shape is exact), then each thread
// accumulates a 4x4 register block from them: rows tileM + ty + 16*i, columns tileN + tx + 16*j
// (i, j < 4). The strided block makes the 16 threads of a row read 16 consecutive shared words
// and write 16 consecutive floats of C. Global loads are scalar and coalesced for every layout:
// consecutive threads walk whichever axis of A or B is contiguous in memory.
// Grid (host): grid1d(ceil(M/64) * ceil(N/64), 1) workgroups; the flat index wid.x + wid.y * nwg.x
// picks the tile, N-tiles fastest (neighbouring workgroups share their op(A) rows); flat indices
// past the last tile (grid1d rounding) exit at once, uniformly for the whole workgroup.
// Performance notes for later: vec4 global loads when K / M / N are multiples of 4, double-buffered
// slabs, a narrower tile (or a GEMV path) when M or N is tiny, and f16 arithmetic.
//
// B in half precision (B_F16, the frozen f16 base weights under LoRA): B's buffer holds IEEE binary16
// values packed two per 32-bit word, element e in the low half of word e / 2 when e is even and in the
// high half when odd (src/util/half.ts, packF16). b_off and ldb stay in elements. Every entry point
// reads B only through bAt, which widens a half with the core builtin unpack2x16float (no shader-f16
// needed, so every adapter runs it); the products accumulate in f32 exactly as with f32 weights. B is
// declared array<u32> either way (f32 weights are read as bitcast words), so both storages bind at the
// same binding with the same layout.
//
// Direct (entry points direct, direct_bias; the host picks them on CPU drivers such as SwiftShader,
// where every workgroup barrier is a context switch and shared memory is just more memory): each
// workgroup of WG x WG threads (WG = 4) owns an (8 WG)x(8 WG) tile, thread (tx, ty) the contiguous 8x8
// block at rows tileM + 8 ty + i, columns tileN + 8 tx + j, read straight from global memory one k at a
// time: no shared memory, no barriers. Rows and columns past M, N are clamped for loading and skipped
// for storing. Both paths add k in the same order with fma, so they give the same bits. Grid (host):
// grid1d(ceil(M/(8 WG)) * ceil(N/(8 WG)), 1), flat index as above.
//
// sum_rows: out[n] (+)= sum_m x[m, n], x [M, N] (the bias gradient, sum over the BT rows of dy).
// Each workgroup of 32x8 threads owns 32 columns: thread (tx, ty) sums rows ty, ty+8, ... of column
// tileN + tx in order, then the 8 partial sums are combined by a fixed tree in shared memory, so the
// result is deterministic. Grid (host): grid1d(ceil(N/32), 1) workgroups, flat index as above.

// ---- matmul -----------------------------------------------------------------------------------

override TRANS_A: bool = false;
override TRANS_B: bool = false;
// true: B holds packed halves (see the header); false: f32.
override B_F16: bool = false;
// true: C += op(A)·op(B); false: C = op(A)·op(B). Only `main` reads it (bias implies overwrite).
override ACCUMULATE: bool = false;

// Threads per workgroup side, set by the host: 16 (64x64 tiles) for large products, 8 (32x32 tiles)
// for small ones, where a 64x64 tile would leave most threads idle.
override WG: u32 = 16u;
const TM = 4u; // register block rows per thread
const TN = 4u; // register block columns per thread
override BM: u32 = WG * TM; // tile rows (M)
override BN: u32 = WG * TN; // tile columns (N)
const BK = 16u; // K step
// Shared slabs stored k-major ([k][m] and [k][n]); one word of padding per k row keeps the
// k-contiguous loads (A untransposed, B transposed) from hitting one shared bank 16 times.
override AS_STRIDE: u32 = BM + 1u;
override BS_STRIDE: u32 = BN + 1u;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  tilesN: u32, // ceil(N / BN)
  tiles: u32, // ceil(M / BM) * tilesN
  alpha: f32, // scales op(A)·op(B)
  lda: u32, // row strides (floats) of A, B and C as stored
  ldb: u32,
  ldc: u32,
  a_off: u32, // offsets (floats) of element (0, 0) of A, B and C
  b_off: u32,
  c_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<u32>; // f32 bits, or two halves per word (B_F16)
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

var<workgroup> As: array<f32, BK * AS_STRIDE>;
var<workgroup> Bs: array<f32, BK * BS_STRIDE>;
var<private> acc: array<f32, 16>; // TM * TN, acc[i * TN + j]

// op(A)[m, k], or 0 outside [M, K].
fn loadA(m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  if (TRANS_A) { return a[p.a_off + k * p.lda + m]; }
  return a[p.a_off + m * p.lda + k];
}

// Element i of the stored B (i counts elements, not words), as f32.
fn bAt(i: u32) -> f32 {
  if (B_F16) { return unpack2x16float(b[i >> 1u])[i & 1u]; }
  return bitcast<f32>(b[i]);
}

// op(B)[k, n], or 0 outside [K, N].
fn loadB(k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  if (TRANS_B) { return bAt(p.b_off + n * p.ldb + k); }
  return bAt(p.b_off + k * p.ldb + n);
}

// Fills acc with the tile's op(A)·op(B). Called by the whole workgroup (it has barriers).
fn mainLoop(row0: u32, col0: u32, tx: u32, ty: u32, lid: u32) {
  for (var i = 0u; i < TM * TN; i++) { acc[i] = 0.0; }
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    // Stage the slabs: BM*BK = BK*BN values, BK*TM per thread. Element e = lid + WG*WG r is
    // split so that consecutive threads follow the axis that is contiguous in global memory.
    for (var r = 0u; r < BK * TM / WG; r++) {
      let e = lid + WG * WG * r;
      var am: u32; var ak: u32;
      if (TRANS_A) { am = e % BM; ak = e / BM; } else { ak = e % BK; am = e / BK; }
      As[ak * AS_STRIDE + am] = loadA(row0 + am, k0 + ak);
      var bk: u32; var bn: u32;
      if (TRANS_B) { bk = e % BK; bn = e / BK; } else { bn = e % BN; bk = e / BN; }
      Bs[bk * BS_STRIDE + bn] = loadB(k0 + bk, col0 + bn);
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < TM; i++) { av[i] = As[k * AS_STRIDE + ty + WG * i]; }
      for (var j = 0u; j < TN; j++) { bv[j] = Bs[k * BS_STRIDE + tx + WG * j]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i * TN + j] = fma(av[i], bv[j], acc[i * TN + j]); }
      }
    }
    workgroupBarrier();
  }
}

// The tile's origin (row, column) in C for a flat workgroup index below p.tiles.
fn tileOrigin(flat: u32) -> vec2u {
  return vec2u((flat / p.tilesN) * BM, (flat % p.tilesN) * BN);
}

// Write the tiled path's finished block: acc[i * TN + j] is C[m0 + WG * i, n0 + WG * j]. Two functions,
// because an entry point that merely reaches code naming `bias` must bind it.
fn writeBlock(m0: u32, n0: u32) {
  for (var i = 0u; i < TM; i++) {
    let m = m0 + WG * i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < TN; j++) {
      let n = n0 + WG * j;
      if (n >= p.N) { break; }
      let v = p.alpha * acc[i * TN + j];
      let o = p.c_off + m * p.ldc + n;
      if (ACCUMULATE) { c[o] += v; } else { c[o] = v; }
    }
  }
}

fn writeBlockBias(m0: u32, n0: u32) {
  for (var i = 0u; i < TM; i++) {
    let m = m0 + WG * i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < TN; j++) {
      let n = n0 + WG * j;
      if (n >= p.N) { break; }
      c[p.c_off + m * p.ldc + n] = p.alpha * acc[i * TN + j] + bias[n];
    }
  }
}

@compute @workgroup_size(WG, WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.tiles) { return; } // uniform: the same for the whole workgroup
  let o = tileOrigin(flat);
  mainLoop(o.x, o.y, lid3.x, lid3.y, lid);
  writeBlock(o.x + lid3.y, o.y + lid3.x);
}

@compute @workgroup_size(WG, WG)
fn main_bias(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.tiles) { return; }
  let o = tileOrigin(flat);
  mainLoop(o.x, o.y, lid3.x, lid3.y, lid);
  writeBlockBias(o.x + lid3.y, o.y + lid3.x);
}

// ---- direct (CPU drivers) -----------------------------------------------------------------------
// Thread (tx, ty) owns the 8x8 block of C at rows m0 = tileM + 8 ty + i, columns n0 = tileN + 8 tx + j
// (tiles of 8 WG x 8 WG). Its 64 sums live in 16 named vec4 variables (row i, columns 0-3 / 4-7), never
// in an array: a private array indexed by a loop variable is kept in memory by SwiftShader, and every
// fma would load and store it (this layout measured about 2x faster than a 4x4 block in an array there).
// Each k reads 8 values of op(A) and 8 of op(B) for 64 fma.

struct Block8 { // rows i of the 8x8 block: l = columns 0-3, h = columns 4-7
  l0: vec4f, h0: vec4f, l1: vec4f, h1: vec4f, l2: vec4f, h2: vec4f, l3: vec4f, h3: vec4f,
  l4: vec4f, h4: vec4f, l5: vec4f, h5: vec4f, l6: vec4f, h6: vec4f, l7: vec4f, h7: vec4f,
}

// One stored row of the block: C[m, n0 + j] (+)= alpha · (l, h)[j] + (bl, bh)[j] for the columns below N
// (bl, bh: the bias of those columns, or zeros).
fn storeRow8(m: u32, n0: u32, l: vec4f, h: vec4f, bl: vec4f, bh: vec4f) {
  if (m >= p.M) { return; }
  let v = array<f32, 8>(l.x, l.y, l.z, l.w, h.x, h.y, h.z, h.w);
  let w = array<f32, 8>(bl.x, bl.y, bl.z, bl.w, bh.x, bh.y, bh.z, bh.w);
  for (var j = 0u; j < 8u; j++) {
    let n = n0 + j;
    if (n >= p.N) { break; }
    let o = p.c_off + m * p.ldc + n;
    let x = p.alpha * v[j] + w[j];
    if (ACCUMULATE) { c[o] += x; } else { c[o] = x; }
  }
}

fn directBlock(m0: u32, n0: u32) -> Block8 {
  // Element (m, k) of op(A) is a[am + k * ak] with am the row's base; (k, n) of op(B) is B[bn + k * bk].
  var ms = p.lda; var ak = 1u; if (TRANS_A) { ms = 1u; ak = p.lda; }
  var ns = 1u; var bk = p.ldb; if (TRANS_B) { ns = p.ldb; bk = 1u; }
  // Rows and columns past M, N are clamped for loading (their results are not stored).
  let lastM = p.M - 1u;
  let lastN = p.N - 1u;
  let a0 = p.a_off + min(m0, lastM) * ms; let a1 = p.a_off + min(m0 + 1u, lastM) * ms;
  let a2 = p.a_off + min(m0 + 2u, lastM) * ms; let a3 = p.a_off + min(m0 + 3u, lastM) * ms;
  let a4 = p.a_off + min(m0 + 4u, lastM) * ms; let a5 = p.a_off + min(m0 + 5u, lastM) * ms;
  let a6 = p.a_off + min(m0 + 6u, lastM) * ms; let a7 = p.a_off + min(m0 + 7u, lastM) * ms;
  let b0 = p.b_off + min(n0, lastN) * ns; let b1 = p.b_off + min(n0 + 1u, lastN) * ns;
  let b2 = p.b_off + min(n0 + 2u, lastN) * ns; let b3 = p.b_off + min(n0 + 3u, lastN) * ns;
  let b4 = p.b_off + min(n0 + 4u, lastN) * ns; let b5 = p.b_off + min(n0 + 5u, lastN) * ns;
  let b6 = p.b_off + min(n0 + 6u, lastN) * ns; let b7 = p.b_off + min(n0 + 7u, lastN) * ns;
  var r: Block8;
  for (var k = 0u; k < p.K; k++) {
    let ka = k * ak;
    let kb = k * bk;
    let xl = vec4f(a[a0 + ka], a[a1 + ka], a[a2 + ka], a[a3 + ka]);
    let xh = vec4f(a[a4 + ka], a[a5 + ka], a[a6 + ka], a[a7 + ka]);
    let yl = vec4f(bAt(b0 + kb), bAt(b1 + kb), bAt(b2 + kb), bAt(b3 + kb));
    let yh = vec4f(bAt(b4 + kb), bAt(b5 + kb), bAt(b6 + kb), bAt(b7 + kb));
    r.l0 = fma(vec4f(xl.x), yl, r.l0); r.h0 = fma(vec4f(xl.x), yh, r.h0);
    r.l1 = fma(vec4f(xl.y), yl, r.l1); r.h1 = fma(vec4f(xl.y), yh, r.h1);
    r.l2 = fma(vec4f(xl.z), yl, r.l2); r.h2 = fma(vec4f(xl.z), yh, r.h2);
    r.l3 = fma(vec4f(xl.w), yl, r.l3); r.h3 = fma(vec4f(xl.w), yh, r.h3);
    r.l4 = fma(vec4f(xh.x), yl, r.l4); r.h4 = fma(vec4f(xh.x), yh, r.h4);
    r.l5 = fma(vec4f(xh.y), yl, r.l5); r.h5 = fma(vec4f(xh.y), yh, r.h5);
    r.l6 = fma(vec4f(xh.z), yl, r.l6); r.h6 = fma(vec4f(xh.z), yh, r.h6);
    r.l7 = fma(vec4f(xh.w), yl, r.l7); r.h7 = fma(vec4f(xh.w), yh, r.h7);
  }
  return r;
}

fn storeBlock8(m0: u32, n0: u32, r: Block8, bl: vec4f, bh: vec4f) {
  storeRow8(m0, n0, r.l0, r.h0, bl, bh); storeRow8(m0 + 1u, n0, r.l1, r.h1, bl, bh);
  storeRow8(m0 + 2u, n0, r.l2, r.h2, bl, bh); storeRow8(m0 + 3u, n0, r.l3, r.h3, bl, bh);
  storeRow8(m0 + 4u, n0, r.l4, r.h4, bl, bh); storeRow8(m0 + 5u, n0, r.l5, r.h5, bl, bh);
  storeRow8(m0 + 6u, n0, r.l6, r.h6, bl, bh); storeRow8(m0 + 7u, n0, r.l7, r.h7, bl, bh);
}

// The block's origin for a flat workgroup index below p.tiles (tiles of 8 WG x 8 WG).
fn directOrigin(flat: u32, lid3: vec3u) -> vec2u {
  return vec2u((flat / p.tilesN) * 8u * WG + 8u * lid3.y, (flat % p.tilesN) * 8u * WG + 8u * lid3.x);
}

@compute @workgroup_size(WG, WG)
fn direct(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.tiles) { return; }
  let o = directOrigin(flat, lid3);
  storeBlock8(o.x, o.y, directBlock(o.x, o.y), vec4f(0.0), vec4f(0.0));
}

@compute @workgroup_size(WG, WG)
fn direct_bias(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.tiles) { return; }
  let o = directOrigin(flat, lid3);
  let last = p.N - 1u; // columns past N: clamped reads, never stored
  let n = o.y;
  let bl = vec4f(bias[min(n, last)], bias[min(n + 1u, last)], bias[min(n + 2u, last)], bias[min(n + 3u, last)]);
  let bh = vec4f(bias[min(n + 4u, last)], bias[min(n + 5u, last)], bias[min(n + 6u, last)], bias[min(n + 7u, last)]);
  storeBlock8(o.x, o.y, directBlock(o.x, o.y), bl, bh);
}

// ---- sum_rows -----------------------------------------------------------------------------------

struct SumParams {
  M: u32,
  N: u32,
  tiles: u32, // ceil(N / 32)
}

override SUM_ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> sp: SumParams;
@group(0) @binding(1) var<storage, read> sx: array<f32>;
@group(0) @binding(2) var<storage, read_write> sout: array<f32>;

var<workgroup> partial: array<f32, 256>; // [ty][tx], 8 x 32

@compute @workgroup_size(32, 8)
fn sum_rows(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid3: vec3u) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= sp.tiles) { return; } // uniform
  let tx = lid3.x;
  let ty = lid3.y;
  let n = flat * 32u + tx;
  var s = 0.0;
  if (n < sp.N) {
    for (var m = ty; m < sp.M; m += 8u) { s += sx[m * sp.N + n]; }
  }
  partial[ty * 32u + tx] = s;
  workgroupBarrier();
  // Fixed tree over the 8 row lanes: 4, 2, 1.
  for (var h = 4u; h > 0u; h >>= 1u) {
    if (ty < h) { partial[ty * 32u + tx] += partial[(ty + h) * 32u + tx]; }
    workgroupBarrier();
  }
  if (ty == 0u && n < sp.N) {
    if (SUM_ACCUMULATE) { sout[n] += partial[tx]; } else { sout[n] = partial[tx]; }
  }
}
