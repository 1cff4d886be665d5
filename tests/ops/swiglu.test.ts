import { describe, expect, it } from 'vitest';
import { createBuffer, subView } from '../../src/gpu/buffers';
import { run } from '../../src/gpu/kernel';
import { swiglu, swigluBackward, swigluPacked } from '../../src/ops/swiglu';
import * as ref from '../../src/reference/swiglu';
import { rng, randn } from '../../src/util/random';
import { f32View, readF32, testGpu } from '../helpers/gpu';
import { assertClose, dot, finiteDiff, FWD, GRAD } from '../helpers/numeric';

/** Gates spread over the whole sigmoid (scale 3), plus saturated values at both ends. */
function gates(n: number, r: () => number): Float32Array {
  const g = randn(n, r, 3);
  const extremes = [-100, -30, 30, 100];
  for (let i = 0; i < Math.min(n - 1, extremes.length); i++) g[i + 1] = extremes[i];
  return g;
}

describe('swiglu reference', () => {
  it('computes silu(gate) * up on known values', () => {
    const out = ref.swiglu({ gate: [0, 1, -2], up: [5, 2, 3], n: 3 });
    assertClose(out, [0, 2 / (1 + Math.exp(-1)), (3 * -2) / (1 + Math.exp(2))], FWD, 'swiglu');
  });

  it('backward matches finite differences of the forward', () => {
    const r = rng(3);
    const n = 9;
    const gate = randn(n, r, 2);
    const up = randn(n, r);
    const dout = randn(n, r);
    const { dgate, dup } = ref.swigluBackward({ gate, up, dout, n });
    assertClose(dgate, finiteDiff((g) => dot(ref.swiglu({ gate: g, up, n }), dout), gate), GRAD, 'dgate');
    assertClose(dup, finiteDiff((u) => dot(ref.swiglu({ gate, up: u, n }), dout), up), GRAD, 'dup');
  });
});

describe('swiglu on the GPU', () => {
  for (const [rows, F] of [[1, 1], [3, 7], [5, 130], [2, 1000]]) {
    it(`packed forward (gate | up per row of one buffer) matches the reference for ${rows}x${F}`, async () => {
      const gpu = await testGpu();
      const r = rng(rows * 31 + F);
      const gate = gates(rows * F, r);
      const up = randn(rows * F, r);
      const gu = new Float32Array(rows * 2 * F);
      for (let i = 0; i < rows; i++) {
        gu.set(gate.subarray(i * F, (i + 1) * F), i * 2 * F);
        gu.set(up.subarray(i * F, (i + 1) * F), i * 2 * F + F);
      }
      const out = f32View(gpu, new Float32Array(rows * F));
      await run(gpu, swigluPacked(gpu, { gu: f32View(gpu, gu), out, rows, F }));
      assertClose(await readF32(gpu, out), ref.swiglu({ gate, up, n: rows * F }), FWD, 'out');
    });
  }

  for (const n of [1, 7, 37, 130, 70_000]) {
    it(`forward and backward match the reference for n=${n}`, async () => {
      const gpu = await testGpu();
      const r = rng(n);
      const gate = gates(n, r);
      const up = randn(n, r);
      const dout = randn(n, r);
      const gv = f32View(gpu, gate);
      const uv = f32View(gpu, up);
      const out = createBuffer(gpu, n * 4);
      const dgate = f32View(gpu, randn(n, r)); // garbage: must be overwritten
      const dup = f32View(gpu, randn(n, r));
      await run(gpu, [
        ...swiglu(gpu, { gate: gv, up: uv, out, n }),
        ...swigluBackward(gpu, { gate: gv, up: uv, dout: f32View(gpu, dout), dgate, dup, n }),
      ]);
      assertClose(await readF32(gpu, out), ref.swiglu({ gate, up, n }), FWD, 'out');
      const want = ref.swigluBackward({ gate, up, dout, n });
      assertClose(await readF32(gpu, dgate), want.dgate, GRAD, 'dgate');
      assertClose(await readF32(gpu, dup), want.dup, GRAD, 'dup');
    });
  }
});

describe('swiglu shape checks', () => {
  it('throws on views too small, bad n and aliasing', async () => {
    const gpu = await testGpu();
    const n = 7;
    const gate = createBuffer(gpu, n * 4);
    const up = createBuffer(gpu, n * 4);
    const out = createBuffer(gpu, n * 4);
    expect(() => swiglu(gpu, { gate, up: subView(up, 0, 24), out, n })).toThrow(/swiglu: up holds 6 elements but the shape needs 7/);
    expect(() => swiglu(gpu, { gate, up, out, n: 0 })).toThrow(/positive integer/);
    expect(() => swiglu(gpu, { gate, up, out: gate, n })).toThrow(/out overlaps gate/);
    const d = createBuffer(gpu, n * 4);
    expect(() => swigluBackward(gpu, { gate, up, dout: out, dgate: d, dup: subView(up, 0, 4), n })).toThrow(/dup holds 1/);
    expect(() => swigluBackward(gpu, { gate, up, dout: out, dgate: d, dup: d, n })).toThrow(/dgate overlaps dup/);
  });
});
