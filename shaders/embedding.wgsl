// Token embedding: out[r, :] = table[tokens[r], :], tokens [BT] u32, table [V, C], out [BT, C].
//
// forward: one thread per output element (r, c), flat index r * C + c. Grid (host): grid1d(BT * C, 256)
// workgroups of 256 threads, the flat workgroup index being wid.x + wid.y * nwg.x.
//
// backward: dtable[tok, :] (+)= sum of dout[r, :] over the rows r holding token tok. WGSL has no float
// atomics, so rather than scattering rows the host builds a CSR index of the batch (src/ops/embedding.ts,
// buildTokenIndex): unique[u] is the u-th distinct token, and positions[offsets[u] .. offsets[u+1]) are
// its rows in ascending order. Workgroup u owns dtable row unique[u]: thread t sums columns t, t+256, ...
// over those rows in that order, so the result is deterministic and no two workgroups write one row.
// Unused index slots are empty ranges and do nothing; dtable rows of tokens absent from the batch are
// untouched. ACCUMULATE (override) adds into dtable (the tied LM head's gradient is already there).
// Grid (host): grid1d(BT, 1) workgroups (one per possible distinct token), flat index as above.
//
// Vocabulary chunks: a table (or dtable) may hold only the vocabulary rows [first, first + table_rows)
// of a larger embedding that does not fit one binding (src/model/params.ts). Then the forward writes
// only the output rows whose token falls in the chunk and the backward only that chunk's rows, so one
// dispatch per chunk covers the vocabulary, each output row written by exactly one of them. A whole
// table is the chunk first = 0, table_rows = V.
//
// Half-precision table (TABLE_F16, the frozen f16 base under LoRA): the forward's table holds IEEE binary16
// values packed two per 32-bit word, element e in the low half of word e / 2 when e is even, the high half
// when odd (src/util/half.ts, packF16); tableAt widens one with the core builtin unpack2x16float, so any
// adapter runs it. The table is declared array<u32> either way (f32 tables are read as bitcast words).
// The backward's dtable is always f32 (a frozen table has no gradient).
//
// Token ids >= V are clamped to V - 1 and row indices to BT - 1, so no thread reads or writes out of
// bounds even for a bad index (the host rejects such ids before they get here).

override ACCUMULATE: bool = false;
// true: the forward's table holds packed halves (see above); false: f32.
override TABLE_F16: bool = false;

struct Params {
  rows: u32, // BT
  C: u32,
  V: u32,
  first: u32, // the first vocabulary row the table holds
  table_rows: u32, // vocabulary rows the table holds
}

@group(0) @binding(0) var<uniform> p: Params;
// forward
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>; // f32 bits, or two halves per word (TABLE_F16)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// backward
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> unique: array<u32>;
@group(0) @binding(6) var<storage, read> offsets: array<u32>;
@group(0) @binding(7) var<storage, read> positions: array<u32>;
@group(0) @binding(8) var<storage, read_write> dtable: array<f32>;

const WG = 256u;

// Element i of the table (i counts elements, not words), as f32.
fn tableAt(i: u32) -> f32 {
  if (TABLE_F16) { return unpack2x16float(table[i >> 1u])[i & 1u]; }
  return bitcast<f32>(table[i]);
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.rows * p.C) { return; }
  let r = i / p.C;
  let c = i % p.C;
  let tok = min(tokens[r], p.V - 1u);
  if (tok < p.first || tok - p.first >= p.table_rows) { return; } // another chunk's row
  out[i] = tableAt((tok - p.first) * p.C + c);
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let u = wid.x + wid.y * nwg.x;
  if (u >= p.rows) { return; }
  let start = min(offsets[u], p.rows);
  let end = min(offsets[u + 1u], p.rows);
  if (start >= end) { return; }
  let tok = min(unique[u], p.V - 1u);
  if (tok < p.first || tok - p.first >= p.table_rows) { return; } // another chunk's row
  for (var c = lid; c < p.C; c += WG) {
    var s = 0.0;
    for (var k = start; k < end; k++) {
      let r = min(positions[k], p.rows - 1u);
      s += dout[r * p.C + c];
    }
    let o = (tok - p.first) * p.C + c;
    if (ACCUMULATE) {
      dtable[o] += s;
    } else {
      dtable[o] = s;
    }
  }
}
