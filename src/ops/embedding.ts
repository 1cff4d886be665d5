// Host side of shaders/embedding.wgsl: token embedding lookup and its deterministic backward.
//
// forward  embedding({ tokens, table, out, rows: BT, C, V })   out [BT, C] = table[tokens]
// backward, once per step:
//   const idx = buildTokenIndex(tokens, V);                    // on the CPU, from the tokens it uploads anyway
//   uploadTokenIndex(gpu, idx, { unique, offsets, positions }, BT);
//   embeddingBackward({ dout, unique, offsets, positions, dtable, rows: BT, C, V, accumulate })
// Index buffers (u32), sized once for the largest BT: unique [BT], offsets [BT + 1], positions [BT].
// The caller clears dtable once per step: rows of tokens absent from the batch are not written.
// A vocabulary split into row chunks (src/model/vocab.ts) takes one call per chunk with `first` and
// `tableRows`: the table holds vocabulary rows [first, first + tableRows), and each call writes only
// the output rows (forward) or table rows (backward) of its chunk's tokens.
// A frozen f16 table (src/model/params.ts, dtype 'f16'): embedding({ ..., tableF16: true }) reads IEEE halves
// packed two per 32-bit word (src/util/half.ts, packF16) and writes f32 rows.
import code from '../../shaders/embedding.wgsl?raw';
import { upload, type View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, grid1d, makeDispatch } from '../gpu/kernel';
import { checkDims, checkLen, checkNoAlias } from './shapes';

const shader = { name: 'embedding', code };

/** Which vocabulary rows a table holds: [first, first + tableRows). Default: all of them. */
export interface VocabChunkArgs {
  first?: number;
  tableRows?: number;
}

export interface EmbeddingArgs extends VocabChunkArgs {
  tokens: View; // [rows] u32, each < V
  table: View; // [tableRows, C]
  out: View; // [rows, C]; only the rows whose token is in [first, first + tableRows) are written
  rows: number;
  C: number;
  V: number;
  /** The table holds packed halves (two per u32, element e in the low half of word e/2 when e is even), not f32. */
  tableF16?: boolean;
}

export interface EmbeddingBackwardArgs extends VocabChunkArgs {
  dout: View; // [rows, C]
  unique: View; // [rows] u32, from uploadTokenIndex
  offsets: View; // [rows + 1] u32
  positions: View; // [rows] u32
  dtable: View; // [tableRows, C]
  rows: number;
  C: number;
  V: number;
  /** true: dtable rows += (the tied LM head wrote there first); false: dtable rows = . */
  accumulate?: boolean;
}

/**
 * The batch's rows grouped by token (CSR): unique[u] is the u-th distinct token (ascending), and
 * positions[offsets[u] .. offsets[u + 1]) are the rows holding it, ascending.
 */
export interface TokenIndex {
  unique: Uint32Array; // [U]
  offsets: Uint32Array; // [U + 1]
  positions: Uint32Array; // [rows]
}

/** Groups the rows of a batch by token id. Throws on an id outside [0, V). */
export function buildTokenIndex(tokens: ArrayLike<number>, V: number): TokenIndex {
  checkDims('buildTokenIndex', { V });
  const rows = tokens.length;
  for (let r = 0; r < rows; r++) {
    const t = tokens[r];
    if (!Number.isInteger(t) || t < 0 || t >= V) {
      throw new Error(`buildTokenIndex: token id ${t} at row ${r} is outside the vocabulary [0, ${V})`);
    }
  }
  // Sort rows by (token, row): equal tokens become one run, each run in ascending row order.
  const positions = Uint32Array.from({ length: rows }, (_, i) => i).sort((a, b) => tokens[a] - tokens[b] || a - b);
  const unique: number[] = [];
  const offsets: number[] = [];
  for (let k = 0; k < rows; k++) {
    const t = tokens[positions[k]];
    if (k === 0 || t !== unique[unique.length - 1]) {
      unique.push(t);
      offsets.push(k);
    }
  }
  offsets.push(rows);
  return { unique: Uint32Array.from(unique), offsets: Uint32Array.from(offsets), positions };
}

/**
 * Writes an index into buffers sized for `rows` (unique [rows], offsets [rows + 1], positions [rows]).
 * Slots past the batch's U distinct tokens get offsets equal to the end, i.e. empty ranges.
 */
export function uploadTokenIndex(gpu: Gpu, idx: TokenIndex, bufs: { unique: View; offsets: View; positions: View }, rows: number): void {
  checkDims('uploadTokenIndex', { rows });
  const U = idx.unique.length;
  if (idx.offsets.length !== U + 1) throw new Error(`uploadTokenIndex: offsets has ${idx.offsets.length} entries, expected U + 1 = ${U + 1}`);
  if (idx.positions.length > rows) throw new Error(`uploadTokenIndex: the index covers ${idx.positions.length} rows but the buffers hold ${rows}`);
  checkLen('uploadTokenIndex', { 'unique [rows]': bufs.unique, 'positions [rows]': bufs.positions }, rows);
  checkLen('uploadTokenIndex', { 'offsets [rows+1]': bufs.offsets }, rows + 1);
  const unique = new Uint32Array(rows);
  unique.set(idx.unique);
  const offsets = new Uint32Array(rows + 1).fill(idx.offsets[U]);
  offsets.set(idx.offsets);
  const positions = new Uint32Array(rows);
  positions.set(idx.positions);
  upload(gpu, bufs.unique, unique);
  upload(gpu, bufs.offsets, offsets);
  upload(gpu, bufs.positions, positions);
}

/** [first, tableRows] of a chunk, checked to lie inside the vocabulary. */
function chunkOf(op: string, V: number, { first = 0, tableRows = V - first }: VocabChunkArgs): [number, number] {
  if (!Number.isInteger(first) || first < 0 || !Number.isInteger(tableRows) || tableRows < 1 || first + tableRows > V) {
    throw new Error(`${op}: the table's vocabulary rows [${first}, ${first + tableRows}) must be a non-empty range inside [0, ${V})`);
  }
  return [first, tableRows];
}

export function embedding(gpu: Gpu, args: EmbeddingArgs): Dispatch[] {
  const { tokens, table, out, rows, C, V } = args;
  checkDims('embedding', { rows, C, V });
  const [first, tableRows] = chunkOf('embedding', V, args);
  checkLen('embedding', { 'tokens [rows] (u32)': tokens }, rows);
  const f16 = args.tableF16 ?? false;
  const tableName = `${tableRows === V ? 'table [V,C]' : 'table [tableRows,C]'}${f16 ? ' (f16)' : ''}`;
  checkLen('embedding', { [tableName]: table }, tableRows * C, f16 ? 2 : 4);
  checkLen('embedding', { 'out [rows,C]': out }, rows * C);
  checkNoAlias('embedding', 'out', out, { tokens, table });
  return [
    makeDispatch(gpu, {
      label: `embedding.forward${tableRows === V ? '' : ` rows ${first}..${first + tableRows - 1}`}${f16 ? ' f16' : ''}`,
      shader,
      entry: 'forward',
      ...(f16 ? { constants: { TABLE_F16: 1 } } : {}),
      uniforms: [rows, C, V, first, tableRows],
      buffers: { 1: tokens, 2: table, 3: out },
      workgroups: grid1d(gpu, rows * C, 256),
    }),
  ];
}

export function embeddingBackward(gpu: Gpu, args: EmbeddingBackwardArgs): Dispatch[] {
  const { dout, unique, offsets, positions, dtable, rows, C, V } = args;
  const accumulate = args.accumulate ?? false;
  checkDims('embeddingBackward', { rows, C, V });
  const [first, tableRows] = chunkOf('embeddingBackward', V, args);
  checkLen('embeddingBackward', { 'dout [rows,C]': dout }, rows * C);
  checkLen('embeddingBackward', { 'unique [rows] (u32)': unique, 'positions [rows] (u32)': positions }, rows);
  checkLen('embeddingBackward', { 'offsets [rows+1] (u32)': offsets }, rows + 1);
  checkLen('embeddingBackward', { [tableRows === V ? 'dtable [V,C]' : 'dtable [tableRows,C]']: dtable }, tableRows * C);
  checkNoAlias('embeddingBackward', 'dtable', dtable, { dout, unique, offsets, positions });
  return [
    makeDispatch(gpu, {
      label: tableRows === V ? 'embedding.backward' : `embedding.backward rows ${first}..${first + tableRows - 1}`,
      shader,
      entry: 'backward',
      constants: { ACCUMULATE: accumulate ? 1 : 0 },
      uniforms: [rows, C, V, first, tableRows],
      buffers: { 4: dout, 5: unique, 6: offsets, 7: positions, 8: dtable },
      workgroups: grid1d(gpu, rows, 1),
    }),
  ];
}
