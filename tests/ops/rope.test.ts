import { describe, expect, it } from 'vitest';
import { createBuffer } from '../../src/gpu/buffers';
import type { Gpu } from '../../src/gpu/device';
import { run } from '../../src/gpu/kernel';
import { rope } from '../../src/ops/rope';
import * as ref from '../../src/reference/rope';
import { randInt, rng, randn } from '../../src/util/random';
import { f32View, readF32, testGpu, u32View } from '../helpers/gpu';
import { assertClose, dot, finiteDiff, FWD, GRAD } from '../helpers/numeric';

const THETA = 10000;

function randomPositions(rows: number, r: () => number, lo: number, hi: number): Uint32Array {
  return Uint32Array.from({ length: rows }, () => randInt(r, lo, hi));
}

/** Runs the GPU rope in place on a copy of x and reads it back. */
async function gpuRope(gpu: Gpu, x: ArrayLike<number>, positions: ArrayLike<number>, rows: number, heads: number, D: number, inverse = false) {
  const xv = f32View(gpu, x);
  await run(gpu, rope(gpu, { x: xv, positions: u32View(gpu, positions), rows, heads, D, theta: THETA, inverse }));
  return readF32(gpu, xv);
}

describe('rope reference', () => {
  it('rotates pairs (i, i + D/2) by pos * theta^(-2i/D), HF rotate-half', () => {
    // D = 4, theta = 1e4, pos = 1: inv_freq = [1, 0.01]; pairs are (x0, x2) and (x1, x3).
    const out = ref.rope({ x: [1, 2, 3, 4], positions: [1], rows: 1, heads: 1, D: 4, theta: THETA });
    const [c0, s0, c1, s1] = [Math.cos(1), Math.sin(1), Math.cos(0.01), Math.sin(0.01)];
    assertClose(out, [1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 3 * c0 + 1 * s0, 4 * c1 + 2 * s1], FWD, 'rope');
  });

  it('backward (inverse rope of the gradient) matches finite differences', () => {
    const r = rng(5);
    const [rows, heads, D] = [2, 2, 6];
    const x = randn(rows * heads * D, r);
    const g = randn(rows * heads * D, r);
    const positions = [3, 17];
    const dx = ref.rope({ x: g, positions, rows, heads, D, theta: THETA, inverse: true });
    const num = finiteDiff((xs) => dot(ref.rope({ x: xs, positions, rows, heads, D, theta: THETA }), g), x);
    assertClose(dx, num, GRAD, 'dx');
  });
});

describe('rope forward', () => {
  for (const [rows, heads, D] of [
    [1, 1, 2],
    [7, 3, 6],
    [7, 2, 64],
  ]) {
    it(`matches the reference for rows=${rows} heads=${heads} D=${D}`, async () => {
      const gpu = await testGpu();
      const r = rng(rows * 100 + heads * 10 + D);
      const x = randn(rows * heads * D, r);
      const positions = randomPositions(rows, r, 0, 200);
      const got = await gpuRope(gpu, x, positions, rows, heads, D);
      assertClose(got, ref.rope({ x, positions, rows, heads, D, theta: THETA }), FWD, 'rope');
    });
  }

  for (const [lo, hi] of [
    [3900, 4100],
    [32000, 32767],
  ]) {
    it(`stays within FWD of the reference at positions ${lo}..${hi}`, async () => {
      const gpu = await testGpu();
      const r = rng(lo);
      const [rows, heads, D] = [7, 2, 64];
      const x = randn(rows * heads * D, r);
      const positions = randomPositions(rows, r, lo, hi);
      const got = await gpuRope(gpu, x, positions, rows, heads, D);
      assertClose(got, ref.rope({ x, positions, rows, heads, D, theta: THETA }), FWD, 'rope');
    });
  }

  it('inverse undoes the forward', async () => {
    const gpu = await testGpu();
    const r = rng(77);
    const [rows, heads, D] = [7, 3, 64];
    const x = randn(rows * heads * D, r);
    const positions = randomPositions(rows, r, 0, 4096);
    const xv = f32View(gpu, x);
    const pv = u32View(gpu, positions);
    await run(gpu, [
      ...rope(gpu, { x: xv, positions: pv, rows, heads, D, theta: THETA }),
      ...rope(gpu, { x: xv, positions: pv, rows, heads, D, theta: THETA, inverse: true }),
    ]);
    const back = await readF32(gpu, xv);
    assertClose(back, x, FWD, 'rope^-1(rope(x))');
    // And the forward really moved x (positions are not all 0), so the round trip is not vacuous.
    expect(Math.max(...(await gpuRope(gpu, x, positions, rows, heads, D)).map((v, i) => Math.abs(v - x[i])))).toBeGreaterThan(0.1);
  });
});

describe('rope of two tensors in one dispatch (also: k beside q)', () => {
  for (const inverse of [false, true]) {
    it(`gives each tensor the bits of its own dispatch${inverse ? ', inverse' : ''}`, async () => {
      const gpu = await testGpu();
      const r = rng(inverse ? 5 : 4);
      const [rows, H, Hkv, D] = [9, 4, 2, 12];
      const q = randn(rows * H * D, r);
      const k = randn(rows * Hkv * D, r);
      const pv = u32View(gpu, randomPositions(rows, r, 0, 2000));
      const [q1, k1, q2, k2] = [f32View(gpu, q), f32View(gpu, k), f32View(gpu, q), f32View(gpu, k)];
      const both = rope(gpu, { x: q1, positions: pv, rows, heads: H, D, theta: THETA, inverse, also: { x: k1, heads: Hkv } });
      expect(both).toHaveLength(1);
      await run(gpu, [
        ...both,
        ...rope(gpu, { x: q2, positions: pv, rows, heads: H, D, theta: THETA, inverse }),
        ...rope(gpu, { x: k2, positions: pv, rows, heads: Hkv, D, theta: THETA, inverse }),
      ]);
      expect(await readF32(gpu, q1)).toEqual(await readF32(gpu, q2));
      expect(await readF32(gpu, k1)).toEqual(await readF32(gpu, k2));
      expect(await readF32(gpu, k1)).not.toEqual(Float32Array.from(k)); // it did rotate k
    });
  }
});

describe('rope backward', () => {
  for (const [rows, heads, D] of [
    [1, 1, 2],
    [7, 2, 6],
    [7, 2, 64],
  ]) {
    it(`matches the reference for rows=${rows} heads=${heads} D=${D}`, async () => {
      const gpu = await testGpu();
      const r = rng(rows + heads + D);
      const g = randn(rows * heads * D, r);
      const positions = randomPositions(rows, r, 0, 4096);
      const got = await gpuRope(gpu, g, positions, rows, heads, D, true);
      assertClose(got, ref.rope({ x: g, positions, rows, heads, D, theta: THETA, inverse: true }), GRAD, 'dx');
    });
  }
});

describe('rope shape checks', () => {
  it('throws on odd D, too large D, bad theta and views too small', async () => {
    const gpu = await testGpu();
    const x = createBuffer(gpu, 2 * 3 * 6 * 4);
    const positions = u32View(gpu, [0, 1]);
    const args = { x, positions, rows: 2, heads: 3, D: 6, theta: THETA };
    expect(() => rope(gpu, { ...args, D: 5 })).toThrow(/D must be even/);
    expect(() => rope(gpu, { ...args, heads: 1, D: 514 })).toThrow(/exceeds/);
    expect(() => rope(gpu, { ...args, theta: 0 })).toThrow(/theta/);
    expect(() => rope(gpu, { ...args, heads: 4 })).toThrow(/x \[rows,heads\*D\] holds 36 elements but the shape needs 48/);
    expect(() => rope(gpu, { ...args, rows: 3, heads: 2 })).toThrow(/positions/);
    expect(() => rope(gpu, { ...args, positions: x })).toThrow(/overlaps/);
  });
});
