import { describe, expect, it } from 'vitest';
import { createBuffer, createWith, subView } from '../../src/gpu/buffers';
import type { Gpu } from '../../src/gpu/device';
import { run } from '../../src/gpu/kernel';
import { buildTokenIndex, embedding, embeddingBackward, uploadTokenIndex } from '../../src/ops/embedding';
import * as ref from '../../src/reference/embedding';
import { packF16, roundToF16 } from '../../src/util/half';
import { randInt, rng, randn } from '../../src/util/random';
import { f32View, readF32, testGpu, u32View } from '../helpers/gpu';
import { assertClose, dot, finiteDiff, FWD, GRAD } from '../helpers/numeric';

const V = 37;

/** Index buffers sized for `maxRows`, filled from `tokens` with uploadTokenIndex. */
function indexViews(gpu: Gpu, tokens: ArrayLike<number>, maxRows: number) {
  const bufs = {
    unique: createBuffer(gpu, maxRows * 4),
    offsets: createBuffer(gpu, (maxRows + 1) * 4),
    positions: createBuffer(gpu, maxRows * 4),
  };
  uploadTokenIndex(gpu, buildTokenIndex(tokens, V), bufs, maxRows);
  return bufs;
}

describe('buildTokenIndex', () => {
  it('groups repeated ids into ascending runs', () => {
    const idx = buildTokenIndex([3, 3, 3, 1, 3], V);
    expect(Array.from(idx.unique)).toEqual([1, 3]);
    expect(Array.from(idx.offsets)).toEqual([0, 1, 5]);
    expect(Array.from(idx.positions)).toEqual([3, 0, 1, 2, 4]);
  });

  it('throws on ids outside the vocabulary', () => {
    expect(() => buildTokenIndex([0, 37], V)).toThrow(/token id 37 at row 1 is outside the vocabulary \[0, 37\)/);
    expect(() => buildTokenIndex([-1], V)).toThrow(/token id -1/);
    expect(() => buildTokenIndex([1.5], V)).toThrow(/token id 1.5/);
  });
});

describe('embedding reference', () => {
  it('backward matches finite differences of the forward', () => {
    const r = rng(9);
    const [rows, C, v] = [5, 3, 6];
    const tokens = [3, 3, 0, 5, 3];
    const table = randn(v * C, r);
    const g = randn(rows * C, r);
    const dtable = ref.embeddingBackward({ dout: g, tokens, rows, C, V: v });
    const num = finiteDiff((t) => dot(ref.embedding({ tokens, table: t, rows, C, V: v }), g), table);
    assertClose(dtable, num, GRAD, 'dtable');
  });
});

describe('embedding forward', () => {
  for (const [rows, C] of [
    [1, 5],
    [7, 37],
    [7, 130],
  ]) {
    it(`matches the reference for rows=${rows} C=${C}`, async () => {
      const gpu = await testGpu();
      const r = rng(rows * 100 + C);
      const tokens = Uint32Array.from({ length: rows }, () => randInt(r, 0, V - 1));
      tokens[0] = V - 1; // the last table row
      const table = randn(V * C, r);
      const out = createBuffer(gpu, rows * C * 4);
      await run(gpu, embedding(gpu, { tokens: u32View(gpu, tokens), table: f32View(gpu, table), out, rows, C, V }));
      assertClose(await readF32(gpu, out), ref.embedding({ tokens, table, rows, C, V }), FWD, 'out');
    });
  }

  it('clamps an id >= V to the last row instead of reading out of bounds', async () => {
    const gpu = await testGpu();
    const C = 5;
    const table = randn(V * C, rng(1));
    const out = createBuffer(gpu, 2 * C * 4);
    await run(gpu, embedding(gpu, { tokens: u32View(gpu, [2, 1000]), table: f32View(gpu, table), out, rows: 2, C, V }));
    assertClose(await readF32(gpu, out), [...table.slice(2 * C, 3 * C), ...table.slice((V - 1) * C)], FWD, 'out');
  });
});

describe('embedding backward', () => {
  const cases: { tokens: number[]; C: number; accumulate: boolean; maxRows?: number }[] = [
    { tokens: [3, 3, 3, 1, 3], C: 37, accumulate: false },
    { tokens: [3, 3, 3, 1, 3], C: 130, accumulate: true },
    { tokens: [36], C: 5, accumulate: false },
    { tokens: [0, 5, 0, 36, 5, 5, 2], C: 37, accumulate: true },
    // Buffers sized for 9 rows, batch of 5: the padded slots must be empty ranges.
    { tokens: [4, 2, 4, 4, 9], C: 5, accumulate: false, maxRows: 9 },
  ];
  for (const { tokens, C, accumulate, maxRows } of cases) {
    it(`matches the reference for tokens [${tokens}] C=${C} accumulate=${accumulate}${maxRows ? ` maxRows=${maxRows}` : ''}`, async () => {
      const gpu = await testGpu();
      const r = rng(tokens.length * 1000 + C);
      const rows = maxRows ?? tokens.length;
      // Rows past the batch (when maxRows > batch) hold garbage no index entry points to.
      const dout = randn(rows * C, r);
      const before = randn(V * C, r); // what dtable held: the tied head's gradient, or garbage
      const dtable = f32View(gpu, before);
      const idx = indexViews(gpu, tokens, rows);
      await run(gpu, embeddingBackward(gpu, { dout: f32View(gpu, dout), ...idx, dtable, rows, C, V, accumulate }));
      const grad = ref.embeddingBackward({ dout, tokens, rows: tokens.length, C, V });
      const inBatch = new Set(tokens);
      // Rows of tokens in the batch get (before +) grad; every other row is untouched.
      const want = before.map((b, i) => {
        const tok = Math.floor(i / C);
        if (!inBatch.has(tok)) return b;
        return accumulate ? b + grad[i] : grad[i];
      });
      assertClose(await readF32(gpu, dtable), want, GRAD, 'dtable');
    });
  }
});

describe('embedding over vocabulary chunks (first, tableRows)', () => {
  // V = 37 as three uneven chunks, each its own buffer.
  const CHUNKS = [[0, 13], [13, 13], [26, 11]];

  it('one gather per chunk gives the whole-table gather; a chunk writes only its own tokens\' rows', async () => {
    const gpu = await testGpu();
    const C = 7;
    const r = rng(77);
    const tokens = [0, 12, 13, 36, 25, 26, 1000, 5]; // 1000 is clamped to V - 1, the last chunk's
    const rows = tokens.length;
    const table = randn(V * C, r);
    const before = randn(rows * C, r);
    const out = f32View(gpu, before);
    const views = CHUNKS.map(([first, n]) => ({ first, n, view: f32View(gpu, table.subarray(first * C, (first + n) * C)) }));
    const tok = u32View(gpu, tokens);
    const clamped = tokens.map((t) => Math.min(t, V - 1));
    // The middle chunk alone: rows of tokens 13 and 25 are written, the rest keep what they held.
    await run(gpu, embedding(gpu, { tokens: tok, table: views[1].view, out, rows, C, V, first: 13, tableRows: 13 }));
    const whole = ref.embedding({ tokens: clamped, table, rows, C, V });
    const mid = before.map((b, i) => (clamped[Math.floor(i / C)] >= 13 && clamped[Math.floor(i / C)] < 26 ? whole[i] : b));
    assertClose(await readF32(gpu, out), mid, FWD, 'middle chunk only');
    await run(gpu, views.flatMap((v) => embedding(gpu, { tokens: tok, table: v.view, out, rows, C, V, first: v.first, tableRows: v.n })));
    assertClose(await readF32(gpu, out), whole, FWD, 'all chunks');
  });

  for (const accumulate of [false, true]) {
    it(`the backward per chunk gives the whole table's gradient rows, accumulate=${accumulate}`, async () => {
      const gpu = await testGpu();
      const C = 9;
      const tokens = [3, 13, 13, 36, 0, 25, 26, 3, 12];
      const rows = tokens.length;
      const r = rng(88);
      const dout = randn(rows * C, r);
      const before = randn(V * C, r);
      const idx = indexViews(gpu, tokens, rows);
      const dtables = CHUNKS.map(([first, n]) => ({ first, n, view: f32View(gpu, before.subarray(first * C, (first + n) * C)) }));
      await run(gpu, dtables.flatMap((d) => embeddingBackward(gpu, { dout: f32View(gpu, dout), ...idx, dtable: d.view, rows, C, V, accumulate, first: d.first, tableRows: d.n })));
      const grad = ref.embeddingBackward({ dout, tokens, rows, C, V });
      const inBatch = new Set(tokens);
      const want = before.map((b, i) => (!inBatch.has(Math.floor(i / C)) ? b : accumulate ? b + grad[i] : grad[i]));
      for (const d of dtables) assertClose(await readF32(gpu, d.view), want.subarray(d.first * C, (d.first + d.n) * C), GRAD, `dtable rows ${d.first}..${d.first + d.n - 1}`);
    });
  }

  it('rejects a chunk outside the vocabulary', async () => {
    const gpu = await testGpu();
    const [rows, C] = [2, 5];
    const args = { tokens: u32View(gpu, [1, 2]), table: createBuffer(gpu, 13 * C * 4), out: createBuffer(gpu, rows * C * 4), rows, C, V };
    expect(() => embedding(gpu, { ...args, first: 30, tableRows: 13 })).toThrow(/vocabulary rows \[30, 43\) must be a non-empty range inside \[0, 37\)/);
    expect(() => embedding(gpu, { ...args, first: 0, tableRows: 14 })).toThrow(/table \[tableRows,C\] holds 65 elements but the shape needs 70/);
  });
});

describe('embedding from an f16 table (packed halves, the frozen f16 base)', () => {
  for (const [rows, C] of [[1, 5], [7, 37], [9, 130]]) {
    it(`gathers the f16-rounded rows exactly, rows=${rows} C=${C}`, async () => {
      const gpu = await testGpu();
      const r = rng(rows * 100 + C + 5);
      const tokens = Uint32Array.from({ length: rows }, () => randInt(r, 0, V - 1));
      tokens[0] = V - 1;
      const table = randn(V * C, r, 4);
      table[(V - 1) * C] = 3 * 2 ** -24; // a subnormal half
      table[(V - 1) * C + 1] = -65504;
      const out = createBuffer(gpu, rows * C * 4);
      await run(gpu, embedding(gpu, { tokens: u32View(gpu, tokens), table: createWith(gpu, packF16(table)), tableF16: true, out, rows, C, V }));
      const want = ref.embedding({ tokens, table: roundToF16(table), rows, C, V });
      expect(Array.from(await readF32(gpu, out))).toEqual(Array.from(want));
    });
  }

  it('one gather per f16 chunk (odd C: rows straddle words) gives the whole f16 table\'s gather', async () => {
    const gpu = await testGpu();
    const C = 7;
    const r = rng(78);
    const tokens = [0, 12, 13, 36, 25, 26, 5, 13];
    const rows = tokens.length;
    const table = randn(V * C, r);
    const out = f32View(gpu, randn(rows * C, r));
    const chunks = [[0, 13], [13, 13], [26, 11]].map(([first, n]) => ({ first, n, view: createWith(gpu, packF16(table.subarray(first * C, (first + n) * C))) }));
    const tok = u32View(gpu, tokens);
    await run(gpu, chunks.flatMap((k) => embedding(gpu, { tokens: tok, table: k.view, tableF16: true, out, rows, C, V, first: k.first, tableRows: k.n })));
    expect(Array.from(await readF32(gpu, out))).toEqual(Array.from(ref.embedding({ tokens, table: roundToF16(table), rows, C, V })));
  });

  it('counts an f16 table in halves', async () => {
    const gpu = await testGpu();
    const [rows, C] = [2, 5];
    const args = { tokens: u32View(gpu, [1, 2]), out: createBuffer(gpu, rows * C * 4), rows, C, V, tableF16: true };
    expect(() => embedding(gpu, { ...args, table: createBuffer(gpu, Math.ceil((V * C) / 2) * 4) })).not.toThrow();
    expect(() => embedding(gpu, { ...args, table: createBuffer(gpu, 90 * 4) })).toThrow(/table \[V,C\] \(f16\) holds 180 elements but the shape needs 185/);
  });
});

describe('embedding shape checks', () => {
  it('throws on views too small, oversized indexes and aliasing', async () => {
    const gpu = await testGpu();
    const [rows, C] = [4, 5];
    const tokens = u32View(gpu, [1, 2, 3, 4]);
    const table = createBuffer(gpu, V * C * 4);
    const out = createBuffer(gpu, rows * C * 4);
    expect(() => embedding(gpu, { tokens: subView(tokens, 0, 12), table, out, rows, C, V })).toThrow(/tokens \[rows\] \(u32\) holds 3/);
    expect(() => embedding(gpu, { tokens, table, out, rows, C, V: V + 1 })).toThrow(/table \[V,C\]/);
    expect(() => embedding(gpu, { tokens, table, out: subView(out, 0, 16), rows, C, V })).toThrow(/out \[rows,C\]/);
    expect(() => embedding(gpu, { tokens, table, out: table, rows, C, V })).toThrow(/out overlaps table/);

    const idx = indexViews(gpu, [1, 2, 3, 4], rows);
    const args = { dout: out, ...idx, dtable: table, rows, C, V };
    expect(() => embeddingBackward(gpu, { ...args, offsets: subView(idx.offsets, 0, 16) })).toThrow(/offsets \[rows\+1\] \(u32\) holds 4 elements but the shape needs 5/);
    expect(() => embeddingBackward(gpu, { ...args, positions: subView(idx.positions, 0, 8) })).toThrow(/positions \[rows\]/);
    expect(() => embeddingBackward(gpu, { ...args, dtable: subView(table, 0, 16) })).toThrow(/dtable \[V,C\]/);
    expect(() => embeddingBackward(gpu, { ...args, dout: subView(table, 0, rows * C * 4) })).toThrow(/dtable overlaps dout/);
    expect(() => uploadTokenIndex(gpu, buildTokenIndex([1, 2, 3, 4, 5], V), idx, rows)).toThrow(/covers 5 rows but the buffers hold 4/);
    expect(() => uploadTokenIndex(gpu, buildTokenIndex([1], V), idx, 5)).toThrow(/unique \[rows\] holds 4 elements but the shape needs 5/);
  });
});
