// Token sampling for batched generation: one token id per row of logits [B, V], chosen on the GPU so
// that only the ids are ever read back. Forward only (sampling has no gradient).
//
// Threads: one workgroup of WG threads per row b (WG = 256 for V >= 2048, else 64; the host picks it
// with the override G below). Grid (host): grid1d(B, 1) workgroups; row = wid.x + wid.y * nwg.x,
// surplus groups exit. Every step is a pass over the row (thread lid strides over columns lid,
// lid + WG, ..., or owns one contiguous segment for the prefix sum) followed by a fixed-order reduction
// in shared memory (integer atomics for counts), so a draw is bit-identical from run to run.
//
//   done[b] != 0: the row has finished; it outputs pad_id and is not sampled.
//   greedy (temperature 0 or top_k 1): the exact argmax, the lowest id on ties.
//   otherwise, with weights w = exp((logit - max) / T) (the max gets exactly 1):
//   1. top-k: the k-th largest logit, found exactly by searching the order-preserving u32 keys of the
//      logits for the largest key t with count(key >= t) >= k, 3 bits at a time (11 steps, each
//      counting at 7 candidate thresholds). Tokens tied with the k-th largest are all kept. (T > 0, so
//      ordering the logits orders logit / T.)
//   2. top-p: the same search on the kept mass: the largest key t with mass(key >= t) >= top_p *
//      mass(kept by top-k); tokens tied at the threshold are all kept. top_p = 1 skips this step.
//   3. inverse CDF in index order: goal = u * keptMass; the chosen token is the first kept index whose
//      cumulative weight exceeds goal (equivalently the last kept token with positive weight whose
//      exclusive prefix is <= goal). Each thread owns a contiguous segment of the row: segment sums,
//      their exclusive prefix, then each thread walks its segment; the largest candidate wins.
//   Output: out[b] = token; a sampled eos_id sets done[b] = 1; main_history also writes
//   history[b * max_new + step] (pad_id for finished rows).
//
// Randomness: u = (h >> 8) / 2^24 in [0, 1) (24 bits, exact in f32) with
//   h = pcg(pcg(pcg(seed) + step) + row), pcg the PCG-RXS-M-XS 32-bit hash (Jarzynski & Olano, "Hash
//   Functions for GPU Rendering", 2020). Counter-based: the same (seed, step, row) gives the same u,
//   and src/reference/sampling.ts computes the identical integers.
// NaN logits get the lowest key and zero weight (never sampled; greedy picks one only if the whole row
// is NaN). Sampling assumes finite logits; the output is always an id < V.
// Cost per row: 3 passes over V (argmax, segment sums, segment walk), plus 11 for top-k (1 barrier
// each) and 12 for top-p (3 barriers each).
//
// greedy_row, greedy_history_row (CPU drivers, greedy mode only; the host picks them where a barrier is
// a context switch): one thread per row walks its V logits for the same argmax (keys as below, the
// lowest id on ties), no shared memory, no barriers; done, eos and history as above. Grid (host):
// grid1d(B, 64) workgroups of 64 threads; row = flat workgroup index * 64 + local index.

struct Params {
  B: u32,
  V: u32,
  max_new: u32, // history row length (0 when there is no history)
  step: u32, // decode step: RNG stream and history column
  eos_id: u32,
  pad_id: u32,
  temperature: f32,
  top_k: u32, // 0 = off
  top_p: f32, // 1 = off
  seed: u32,
  stride: u32, // row length of logits (>= V): the model's vocabulary, which may be padded past the tokenizer's V
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>; // [B, stride]; only columns [0, V) are candidates
@group(0) @binding(2) var<storage, read_write> out: array<u32>; // [B]
@group(0) @binding(3) var<storage, read_write> done: array<u32>; // [B]
@group(0) @binding(4) var<storage, read_write> history: array<u32>; // [B, max_new] (main_history only)

// The mode, fixed per pipeline so that each one holds only the code (and shared memory) it runs; the
// host sets them from the params.
override GREEDY: bool = false; // temperature 0 or top_k 1
override TOP_K: bool = false; // 1 < top_k < V
override TOP_P: bool = false; // top_p < 1

// Threads per row: WG = G * G, G = 16 (256 threads) for wide rows and 8 (64) for narrow ones (host's
// choice). Reductions are two-level: G threads reduce G groups of G values, then one thread the G results.
override G: u32 = 16u;
override WG: u32 = G * G;
const NONE: u32 = 0xffffffffu;
// The threshold searches decide BITS bits of a 32-bit key per step, testing NC = 2^BITS - 1 candidate
// thresholds at once: STEPS steps, the first one deciding the top W0 bits.
const BITS: u32 = 3u;
const NC: u32 = 7u;
const STEPS: u32 = 11u;
const W0: u32 = 2u;

// Shared memory is kept small: besides being scarce, it is zeroed at every workgroup start.
var<workgroup> s_w: array<u32, WG>; // one word per thread: a key, an index or the bits of an f32
var<workgroup> s_g: array<u32, G>; // group results
var<workgroup> s_r: u32; // the workgroup's result
var<workgroup> s_done: u32;
var<workgroup> s_cnt: array<atomic<u32>, 21>; // top-k: 3 rotating sets of NC counters
var<workgroup> s_mass: array<f32, NC * WG>; // top-p: per-thread partial masses, NC per thread
var<workgroup> s_mq: array<f32, NC * G>; // top-p: group sums
var<workgroup> s_mt: array<f32, NC>; // top-p: NC totals

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn uniform01(row: u32) -> f32 {
  let h = pcg(pcg(pcg(p.seed) + p.step) + row);
  return f32(h >> 8u) * (1.0 / 16777216.0);
}

// Order-preserving u32 key of a float (integer ops only, so fast-math cannot fold the NaN test away):
// NaN -> 0 (below -inf, whose key is 0x007fffff); -0 and +0 share one key, so they tie.
fn key_of(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0u; }
  if (b == 0x80000000u) { return 0x80000000u; }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// The unnormalised probability of a token given the threshold key `thr` (>= 1, so NaN is never kept).
// The max itself gets exactly 1 (also when it is +inf).
fn weight(l: f32, k: u32, thr: u32, kmax: u32, lmax: f32) -> f32 {
  if (k < thr) { return 0.0; }
  if (k == kmax) { return 1.0; }
  return exp((l - lmax) / p.temperature);
}

// The max (or min) of one u32 per thread: G threads reduce groups of G, thread 0 the G results.
// Each shared word is written before a barrier that follows every read of its previous value.
fn reduce_u32(lid: u32, v: u32, is_min: bool) -> u32 {
  s_w[lid] = v;
  workgroupBarrier();
  if (lid < G) {
    var r = s_w[lid * G];
    for (var m = lid * G + 1u; m < lid * G + G; m++) { r = select(max(r, s_w[m]), min(r, s_w[m]), is_min); }
    s_g[lid] = r;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var r = s_g[0];
    for (var g = 1u; g < G; g++) { r = select(max(r, s_g[g]), min(r, s_g[g]), is_min); }
    s_r = r;
  }
  workgroupBarrier();
  return s_r;
}

// (key, index) of the row's largest logit, the lowest index on ties.
fn argmax(base: u32, lid: u32) -> vec2u {
  var bk = 0u;
  var bi = NONE;
  for (var j = lid; j < p.V; j += WG) {
    let k = key_of(logits[base + j]);
    if (bi == NONE || k > bk) { bk = k; bi = j; } // ascending j: strict > keeps the lowest index
  }
  let kmax = reduce_u32(lid, bk, false);
  return vec2u(kmax, reduce_u32(lid, select(NONE, bi, bk == kmax), true));
}

// The candidate thresholds of search step `it`, t | j << lo for j = 1..7, as two vec4s (the 8th lane
// repeats the 7th). The step decides the bits from lo up; its first step only bits 31..30 (j = 1..3).
fn step_lo(it: u32) -> u32 { return BITS * (STEPS - 1u - it); }
fn step_nj(it: u32) -> u32 { return select(NC, (1u << W0) - 1u, it == 0u); }
fn cands(t: u32, lo: u32, half: u32) -> vec4u {
  let j = select(vec4u(1u, 2u, 3u, 4u), vec4u(5u, 6u, 7u, 7u), half == 1u);
  return vec4u(t) | (j << vec4u(lo));
}

// top-k: the largest key t with count(non-NaN keys >= t) >= k, i.e. the k-th largest key. Counts are
// integers, so workgroup atomics add them deterministically: one barrier per step. Step `it` adds into
// counter set it % 3 and thread 0 clears set (it + 2) % 3, which nobody touches until after the next
// barrier (sets 0 and 1 start zeroed).
fn kth_largest(base: u32, lid: u32, k: u32) -> u32 {
  var t = 0u;
  for (var it = 0u; it < STEPS; it++) {
    let lo = step_lo(it);
    let nj = step_nj(it);
    let c0 = cands(t, lo, 0u);
    let c1 = cands(t, lo, 1u);
    var n0 = vec4u(0u);
    var n1 = vec4u(0u);
    for (var j = lid; j < p.V; j += WG) {
      let key = key_of(logits[base + j]);
      if (key == 0u) { continue; } // NaN
      n0 += select(vec4u(0u), vec4u(1u), vec4u(key) >= c0);
      n1 += select(vec4u(0u), vec4u(1u), vec4u(key) >= c1);
    }
    let cur = (it % 3u) * NC;
    for (var c = 0u; c < nj; c++) {
      let n = select(n1[c & 3u], n0[c & 3u], c < 4u); // lane c of (n0, n1)
      if (n > 0u) { atomicAdd(&s_cnt[cur + c], n); }
    }
    workgroupBarrier();
    var best = 0u;
    for (var c = 0u; c < nj; c++) {
      if (atomicLoad(&s_cnt[cur + c]) >= k) { best = c + 1u; }
    }
    if (lid == 0u) {
      for (var c = 0u; c < NC; c++) { atomicStore(&s_cnt[((it + 2u) % 3u) * NC + c], 0u); }
    }
    t |= best << lo;
  }
  return t;
}

// Totals of the partial masses in s_mass (candidate c in s_mass[c * WG ..], c < n) into s_mt[c]: G
// threads per candidate add groups of G, then one thread per candidate adds the G group sums. The order
// is fixed, so equal inputs give equal totals, and (terms being >= 0) a total only grows when a term
// does: the top-p search relies on both.
fn mass_totals(lid: u32, n: u32) {
  workgroupBarrier();
  if (lid < n * G) {
    let at = (lid / G) * WG + (lid % G) * G;
    var s = 0.0;
    for (var i = 0u; i < G; i++) { s += s_mass[at + i]; }
    s_mq[lid] = s;
  }
  workgroupBarrier();
  if (lid < n) {
    var s = 0.0;
    for (var g = 0u; g < G; g++) { s += s_mq[lid * G + g]; }
    s_mt[lid] = s;
  }
  workgroupBarrier();
}

// mass(t) = the summed weights (threshold thr) of the tokens with key >= t.
fn mass_at(base: u32, lid: u32, t: u32, thr: u32, kmax: u32, lmax: f32) -> f32 {
  var acc = 0.0;
  for (var j = lid; j < p.V; j += WG) {
    let l = logits[base + j];
    let k = key_of(l);
    if (k >= t) { acc += weight(l, k, thr, kmax, lmax); }
  }
  s_mass[lid] = acc;
  mass_totals(lid, 1u);
  return s_mt[0];
}

// top-p: the largest key t with mass(t) >= need. mass does not increase with t, so the candidates that
// pass in a step are 1..some J, and J is taken. Tokens below thr weigh +0, so mass(t <= thr) is exactly
// mass_at(thr) and the result is >= thr whenever need <= mass_at(thr).
fn mass_search(base: u32, lid: u32, thr: u32, kmax: u32, lmax: f32, need: f32) -> u32 {
  var t = 0u;
  for (var it = 0u; it < STEPS; it++) {
    let lo = step_lo(it);
    let nj = step_nj(it);
    let c0 = cands(t, lo, 0u);
    let c1 = cands(t, lo, 1u);
    var m0 = vec4f(0.0);
    var m1 = vec4f(0.0);
    for (var j = lid; j < p.V; j += WG) {
      let l = logits[base + j];
      let k = key_of(l);
      let w = weight(l, k, thr, kmax, lmax);
      m0 += select(vec4f(0.0), vec4f(w), vec4u(k) >= c0);
      m1 += select(vec4f(0.0), vec4f(w), vec4u(k) >= c1);
    }
    for (var c = 0u; c < NC; c++) { s_mass[c * WG + lid] = select(m1[c & 3u], m0[c & 3u], c < 4u); }
    mass_totals(lid, nj);
    var best = 0u;
    for (var c = 0u; c < nj; c++) {
      if (s_mt[c] >= need) { best = c + 1u; }
    }
    t |= best << lo;
  }
  return t;
}

// The token for `row` (the same in every thread) and whether it was sampled (0: finished row, pad).
fn pick(row: u32, lid: u32) -> vec2u {
  if (lid == 0u) { s_done = done[row]; }
  if (workgroupUniformLoad(&s_done) != 0u) { return vec2u(p.pad_id, 0u); }

  let base = row * p.stride;
  let best = argmax(base, lid);
  if (GREEDY) { return vec2u(best.y, 1u); }
  let kmax = best.x;
  let lmax = logits[base + best.y];

  var thr = 1u; // the lowest kept key (key 0 is NaN)
  if (TOP_K) { thr = max(thr, kth_largest(base, lid, p.top_k)); }
  if (TOP_P) {
    let need = p.top_p * mass_at(base, lid, thr, thr, kmax, lmax);
    thr = max(thr, mass_search(base, lid, thr, kmax, lmax, need));
  }

  // Inverse CDF. Thread lid owns the contiguous segment [lo, hi) of the row. Its exclusive prefix: the
  // sums of the groups of G segments before its own (scanned by thread 0) plus the segments before it
  // in its group (scanned by thread lid / G). s_w and s_g hold f32 bits here.
  let seg = (p.V + WG - 1u) / WG;
  let lo = min(lid * seg, p.V);
  let hi = min(lo + seg, p.V);
  var own = 0.0;
  for (var j = lo; j < hi; j++) {
    let l = logits[base + j];
    own += weight(l, key_of(l), thr, kmax, lmax);
  }
  s_w[lid] = bitcast<u32>(own);
  workgroupBarrier();
  if (lid < G) {
    var s = 0.0;
    for (var m = lid * G; m < lid * G + G; m++) {
      let x = bitcast<f32>(s_w[m]);
      s_w[m] = bitcast<u32>(s);
      s += x;
    }
    s_g[lid] = bitcast<u32>(s);
  }
  workgroupBarrier();
  if (lid == 0u) {
    var s = 0.0;
    for (var g = 0u; g < G; g++) {
      let x = bitcast<f32>(s_g[g]);
      s_g[g] = bitcast<u32>(s);
      s += x;
    }
    s_r = bitcast<u32>(s);
  }
  workgroupBarrier();
  let goal = uniform01(row) * bitcast<f32>(s_r);
  var run = bitcast<f32>(s_g[lid / G]) + bitcast<f32>(s_w[lid]);
  var cand = 0u; // 1 + index of this segment's last positive token whose prefix is <= goal
  for (var j = lo; j < hi; j++) {
    let l = logits[base + j];
    let w = weight(l, key_of(l), thr, kmax, lmax);
    if (w > 0.0 && run <= goal) { cand = j + 1u; }
    run += w;
  }
  // The largest candidate wins; none at all (an all-NaN row) falls back to the argmax.
  let chosen = reduce_u32(lid, cand, false);
  return vec2u(select(best.y, chosen - 1u, chosen > 0u), 1u);
}

fn finish(row: u32, r: vec2u) {
  out[row] = r.x;
  if (r.y == 1u && r.x == p.eos_id) { done[row] = 1u; }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.B) { return; } // uniform per workgroup, so the barriers in pick stay in uniform control flow
  let r = pick(row, lid);
  if (lid == 0u) { finish(row, r); }
}

@compute @workgroup_size(WG)
fn main_history(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.B) { return; }
  let r = pick(row, lid);
  if (lid == 0u) {
    finish(row, r);
    if (p.step < p.max_new) { history[row * p.max_new + p.step] = r.x; }
  }
}

// ---- greedy, one thread per row (CPU drivers) ----------------------------------------------------

fn greedy_pick(row: u32) -> vec2u {
  if (done[row] != 0u) { return vec2u(p.pad_id, 0u); }
  let base = row * p.stride;
  var bk = key_of(logits[base]);
  var bi = 0u;
  for (var j = 1u; j < p.V; j++) {
    let k = key_of(logits[base + j]);
    if (k > bk) { bk = k; bi = j; } // ascending j: strict > keeps the lowest index
  }
  return vec2u(bi, 1u);
}

@compute @workgroup_size(64)
fn greedy_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (row >= p.B) { return; }
  finish(row, greedy_pick(row));
}

@compute @workgroup_size(64)
fn greedy_history_row(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (row >= p.B) { return; }
  let r = greedy_pick(row);
  finish(row, r);
  if (p.step < p.max_new) { history[row * p.max_new + p.step] = r.x; }
}
