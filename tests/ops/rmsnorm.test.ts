import { describe, expect, it } from 'vitest';
import { createBuffer, subView } from '../../src/gpu/buffers';
import { run } from '../../src/gpu/kernel';
import { add } from '../../src/ops/add';
import { rmsnorm, rmsnormBackward } from '../../src/ops/rmsnorm';
import * as ref from '../../src/reference/rmsnorm';
import { rng, randn } from '../../src/util/random';
import { f32View, gpuWith, KERNEL_PROFILES, readF32, testGpu } from '../helpers/gpu';
import { assertClose, dot, finiteDiff, FWD, GRAD } from '../helpers/numeric';

const EPS = 1e-5;

/** Weights around 1 (as after init) but not all equal, so a swapped w index shows. */
function weights(C: number, r: () => number): Float32Array {
  return randn(C, r, 0.3).map((v) => 1 + v);
}

describe('rmsnorm reference', () => {
  it('normalizes a known row', () => {
    // x = [3, 4]: mean(x^2) = 12.5, so y = x / sqrt(12.5) * w.
    const { y, rstd } = ref.rmsnorm({ x: [3, 4], w: [1, 2], rows: 1, C: 2, eps: 0 });
    assertClose(rstd, [1 / Math.sqrt(12.5)], FWD, 'rstd');
    assertClose(y, [3 / Math.sqrt(12.5), 8 / Math.sqrt(12.5)], FWD, 'y');
  });

  it('backward matches finite differences of the forward', () => {
    const r = rng(11);
    const rows = 3;
    const C = 5;
    const x = randn(rows * C, r);
    const w = weights(C, r);
    const g = randn(rows * C, r);
    const eps = 1e-3; // a visible eps makes sure it is carried through the backward
    const { dx, dw } = ref.rmsnormBackward({ dy: g, x, w, rows, C, eps });
    const numDx = finiteDiff((xs) => dot(ref.rmsnorm({ x: xs, w, rows, C, eps }).y, g), x);
    const numDw = finiteDiff((ws) => dot(ref.rmsnorm({ x, w: ws, rows, C, eps }).y, g), w);
    assertClose(dx, numDx, GRAD, 'dx');
    assertClose(dw, numDw, GRAD, 'dw');
  });
});

for (const kernels of KERNEL_PROFILES) {
  describe(`rmsnorm forward, ${kernels} kernels`, () => {
    for (const [rows, C] of [
      [1, 5],
      [7, 37],
      [7, 130],
      [3, 1000],
    ]) {
      it(`matches the reference for rows=${rows} C=${C}`, async () => {
        const gpu = await gpuWith(kernels);
        const r = rng(rows * 1000 + C);
        const x = randn(rows * C, r, 2);
        const w = weights(C, r);
        const y = createBuffer(gpu, rows * C * 4);
        const rstd = createBuffer(gpu, rows * 4);
        await run(gpu, rmsnorm(gpu, { x: f32View(gpu, x), w: f32View(gpu, w), y, rstd, rows, C, eps: EPS }));
        const want = ref.rmsnorm({ x, w, rows, C, eps: EPS });
        assertClose(await readF32(gpu, y), want.y, FWD, 'y');
        assertClose(await readF32(gpu, rstd), want.rstd, FWD, 'rstd');
      });
    }
  });
}

for (const kernels of KERNEL_PROFILES) {
  describe(`rmsnorm with the residual add fused in front, ${kernels} kernels`, () => {
    for (const [rows, C] of [
      [1, 5],
      [7, 130],
      [3, 1000],
    ]) {
      it(`writes a + b and normalizes it with the bits of add() then rmsnorm(), rows=${rows} C=${C}`, async () => {
        const gpu = await gpuWith(kernels);
        const r = rng(rows * 77 + C);
        const [a, b] = [f32View(gpu, randn(rows * C, r, 2)), f32View(gpu, randn(rows * C, r, 1))];
        const w = f32View(gpu, weights(C, r));
        const out = () => ({ x: createBuffer(gpu, rows * C * 4), y: createBuffer(gpu, rows * C * 4), rstd: createBuffer(gpu, rows * 4) });
        const [fused, apart] = [out(), out()];
        const ds = rmsnorm(gpu, { ...fused, w, rows, C, eps: EPS, residual: { a, b } });
        expect(ds).toHaveLength(1);
        await run(gpu, ds);
        await run(gpu, [...add(gpu, { a, b, out: apart.x, n: rows * C }), ...rmsnorm(gpu, { ...apart, w, rows, C, eps: EPS })]);
        for (const k of ['x', 'y', 'rstd'] as const) expect(await readF32(gpu, fused[k]), k).toEqual(await readF32(gpu, apart[k]));
      });
    }
  });
}

for (const kernels of KERNEL_PROFILES) {
  describe(`rmsnorm backward, ${kernels} kernels`, () => {
    for (const [rows, C, accumulate] of [
      [1, 5, false],
      [7, 37, false],
      [7, 130, true],
      [5, 300, true],
    ] as const) {
      it(`matches the reference for rows=${rows} C=${C} accumulate=${accumulate}`, async () => {
        const gpu = await gpuWith(kernels);
        const r = rng(rows * 7 + C);
        const x = randn(rows * C, r);
        const w = weights(C, r);
        const dy = randn(rows * C, r);
        const dx0 = randn(rows * C, r); // what the residual stream already holds
        const y = createBuffer(gpu, rows * C * 4);
        const rstd = createBuffer(gpu, rows * 4);
        const dx = f32View(gpu, dx0);
        const dw = f32View(gpu, randn(C, r)); // garbage: dw must be overwritten, never accumulated
        const xv = f32View(gpu, x);
        const wv = f32View(gpu, w);
        await run(gpu, [
          ...rmsnorm(gpu, { x: xv, w: wv, y, rstd, rows, C, eps: EPS }),
          ...rmsnormBackward(gpu, { dy: f32View(gpu, dy), x: xv, w: wv, rstd, dx, dw, rows, C, accumulate }),
        ]);
        const want = ref.rmsnormBackward({ dy, x, w, rows, C, eps: EPS });
        const wantDx = accumulate ? want.dx.map((v, i) => v + dx0[i]) : want.dx;
        assertClose(await readF32(gpu, dx), wantDx, GRAD, 'dx');
        assertClose(await readF32(gpu, dw), want.dw, GRAD, 'dw');
      });
    }
  });
}

describe('rmsnorm shape checks', () => {
  it('throws on views too small, bad dims and aliasing', async () => {
    const gpu = await testGpu();
    const rows = 2;
    const C = 5;
    const x = createBuffer(gpu, rows * C * 4);
    const w = createBuffer(gpu, C * 4);
    const y = createBuffer(gpu, rows * C * 4);
    const rstd = createBuffer(gpu, rows * 4);
    const small = createBuffer(gpu, (rows * C - 1) * 4);
    expect(() => rmsnorm(gpu, { x: small, w, y, rstd, rows, C, eps: EPS })).toThrow(/x \[rows,C\] holds 9 elements/);
    expect(() => rmsnorm(gpu, { x, w: subView(w, 0, 16), y, rstd, rows, C, eps: EPS })).toThrow(/w \[C\]/);
    expect(() => rmsnorm(gpu, { x, w, y, rstd: subView(rstd, 0, 4), rows, C, eps: EPS })).toThrow(/rstd/);
    expect(() => rmsnorm(gpu, { x, w, y, rstd, rows: 0, C, eps: EPS })).toThrow(/rows must be a positive integer/);
    expect(() => rmsnorm(gpu, { x, w, y, rstd, rows, C, eps: -1 })).toThrow(/eps/);
    expect(() => rmsnorm(gpu, { x, w, y: x, rstd, rows, C, eps: EPS })).toThrow(/y overlaps x/);
    const dx = createBuffer(gpu, rows * C * 4);
    const dw = createBuffer(gpu, C * 4);
    expect(() => rmsnormBackward(gpu, { dy: small, x, w, rstd, dx, dw, rows, C })).toThrow(/dy \[rows,C\]/);
    expect(() => rmsnormBackward(gpu, { dy: y, x, w, rstd, dx, dw: subView(dw, 0, 8), rows, C })).toThrow(/dw \[C\]/);
    expect(() => rmsnormBackward(gpu, { dy: y, x, w, rstd, dx: y, dw, rows, C })).toThrow(/dx overlaps dy/);
  });
});
