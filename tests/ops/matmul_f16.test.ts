// matmul with operand B stored as packed halves (bF16: the frozen f16 base weights), in both kernel profiles,
// against the float64 reference run on the f16-rounded B: every transpose, odd shapes (halves straddling
// words), accumulate / bias / alpha, windows starting in the high half of a word, exact widening of
// subnormal and extreme halves, the same bits in both profiles, and the shape errors.
import { describe, expect, it } from 'vitest';
import { createBuffer, createWith } from '../../src/gpu/buffers';
import type { Gpu, KernelProfile } from '../../src/gpu/device';
import { run } from '../../src/gpu/kernel';
import { matmul } from '../../src/ops/matmul';
import * as ref from '../../src/reference/matmul';
import { packF16, roundToF16 } from '../../src/util/half';
import { randn, rng } from '../../src/util/random';
import { f32View, gpuWith, KERNEL_PROFILES, readF32, testGpu } from '../helpers/gpu';
import { assertClose, FWD } from '../helpers/numeric';

const FLAGS = [
  { transA: false, transB: false }, // dx = dy·W, the backward through a frozen linear
  { transA: false, transB: true }, // y = x·W^T, every linear forward and the LM head
  { transA: true, transB: false },
  { transA: true, transB: true },
];
const tag = (f: { transA: boolean; transB: boolean }) => `transA=${f.transA} transB=${f.transB}`;

const f16View = (gpu: Gpu, x: Float32Array) => createWith(gpu, packF16(x));

interface Case {
  M: number; N: number; K: number;
  transA: boolean; transB: boolean;
  accumulate?: boolean; withBias?: boolean; alpha?: number;
}

/** Runs matmul with an f16 B on seeded inputs and checks it against the reference on the rounded B; returns C. */
async function checkF16(c: Case, seed: number, kernels: KernelProfile): Promise<Float32Array> {
  const { M, N, K, transA, transB, accumulate = false, withBias = false, alpha } = c;
  const gpu = await gpuWith(kernels);
  const r = rng(seed);
  const a = randn(M * K, r);
  const b = randn(K * N, r, 3); // values that f16 rounds (and some it rounds a lot)
  const c0 = randn(M * N, r);
  const bias = withBias ? randn(N, r) : undefined;
  const cv = f32View(gpu, c0);
  await run(gpu, matmul(gpu, { a: f32View(gpu, a), b: f16View(gpu, b), bF16: true, c: cv, M, N, K, transA, transB, accumulate, bias: bias && f32View(gpu, bias), alpha }));
  const got = await readF32(gpu, cv);
  const want = ref.matmul({ a, b: roundToF16(b), M, N, K, transA, transB, c0, accumulate, bias, alpha });
  assertClose(got, want, FWD, `f16-B matmul ${M}x${N}x${K} ${tag(c)} (${kernels} kernels)`);
  return got;
}

describe('matmul with an f16 B (packed halves)', () => {
  const shapes: [number, number, number][] = [
    [1, 37, 5], // one row (generation), odd N and K: halves straddle words in both layouts
    [5, 37, 1], // K = 1
    [4, 1, 9], // N = 1
    [65, 33, 17], // one past a tile
    [7, 130, 3],
    [70, 45, 129], // several K steps, odd everything
  ];
  for (const kernels of KERNEL_PROFILES) {
    for (const f of FLAGS) {
      const k = `${tag(f)}, ${kernels} kernels`;
      for (const [M, N, K] of shapes) it(`${M}x${N}x${K} ${k}`, () => checkF16({ M, N, K, ...f }, M * 1000 + N * 10 + K, kernels));
      it(`accumulates 65x33x17 ${k}`, () => checkF16({ M: 65, N: 33, K: 17, ...f, accumulate: true }, 11, kernels));
      it(`adds the bias after alpha 7x130x3 ${k}`, () => checkF16({ M: 7, N: 130, K: 3, ...f, withBias: true, alpha: 0.375 }, 12, kernels));
      it(`scales by alpha 65x33x7 ${k}`, () => checkF16({ M: 65, N: 33, K: 7, ...f, accumulate: true, alpha: -2.5 }, 17, kernels));
    }
  }

  it('the two kernel profiles give the same bits with an f16 B', async () => {
    const out: number[][] = [];
    for (const kernels of KERNEL_PROFILES) {
      for (const transB of [true, false]) out.push(Array.from(await checkF16({ M: 33, N: 71, K: 45, transA: false, transB }, 20, kernels)));
    }
    expect(out[2]).toEqual(out[0]);
    expect(out[3]).toEqual(out[1]);
  });

  for (const kernels of KERNEL_PROFILES) {
    it(`widens subnormal, extreme and signed halves exactly (C = I·B), ${kernels} kernels`, async () => {
      const gpu = await gpuWith(kernels);
      const vals = [2 ** -24, -(2 ** -24), 1023 * 2 ** -24, 2 ** -14, 65504, -65504, 0.1, -0.3333, 1, -0, 7.5, 2 ** -20, 3 * 2 ** -24];
      const [K, N] = [vals.length, 3];
      const b = Float32Array.from({ length: K * N }, (_, i) => vals[(i * 5) % vals.length] * (i % 2 ? -1 : 1));
      const eye = Float32Array.from({ length: K * K }, (_, i) => (i % (K + 1) === 0 ? 1 : 0));
      for (const transB of [false, true]) {
        const c = createBuffer(gpu, K * N * 4);
        await run(gpu, matmul(gpu, { a: f32View(gpu, eye), b: f16View(gpu, b), bF16: true, c, M: K, N, K, transB }));
        const want = ref.matmul({ a: eye, b: roundToF16(b), M: K, N, K, transB });
        expect(Array.from(await readF32(gpu, c)), `transB=${transB}`).toEqual(Array.from(want));
      }
    });
  }
});

describe('matmul with an f16 B window (the LM head over vocabulary chunks of an f16 table)', () => {
  for (const kernels of KERNEL_PROFILES) {
    for (const f of FLAGS) {
      it(`70x37x13 ${tag(f)}, B at an odd element offset and row stride, ${kernels} kernels`, async () => {
        const gpu = await gpuWith(kernels);
        const [M, N, K] = [70, 37, 13];
        const r = rng(61);
        const [rows, cols] = f.transB ? [N, K] : [K, N];
        const [off, ld] = [7, cols + 3]; // element 0 of the window sits in the high half of word 3
        const buf = randn(off + (rows - 1) * ld + cols + 1, r, 2);
        const dense = new Float32Array(rows * cols);
        for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) dense[i * cols + j] = buf[off + i * ld + j];
        const a = randn(M * K, r);
        const [cOff, ldc] = [5, N + 4];
        const c0 = randn(cOff + (M - 1) * ldc + N, r);
        const c = f32View(gpu, c0);
        await run(gpu, matmul(gpu, { a: f32View(gpu, a), b: f16View(gpu, buf), bF16: true, bOffset: off, ldb: ld, c, cOffset: cOff, ldc, M, N, K, ...f }));
        const got = await readF32(gpu, c);
        const window = Float32Array.from({ length: M * N }, (_, i) => got[cOff + Math.floor(i / N) * ldc + (i % N)]);
        assertClose(window, ref.matmul({ a, b: roundToF16(dense), M, N, K, ...f }), FWD, 'C window');
        const inWindow = (i: number) => i >= cOff && (i - cOff) % ldc < N && Math.floor((i - cOff) / ldc) < M;
        const outside = Array.from(got.keys()).filter((i) => !inWindow(i));
        expect(outside.map((i) => got[i])).toEqual(outside.map((i) => c0[i]));
      });
    }
  }
});

describe('f16-B shape errors (thrown before any GPU work)', () => {
  it('counts an f16 B in halves: a view of n bytes holds n/2 elements', async () => {
    const gpu = await testGpu();
    const [a, c, b, small] = [createBuffer(gpu, 30 * 4), createBuffer(gpu, 24 * 4), createBuffer(gpu, 10 * 4), createBuffer(gpu, 9 * 4)];
    // 40 bytes are too small for a 4x5 f32 B but hold 20 halves; 36 bytes hold 18.
    expect(() => matmul(gpu, { a, b, c, M: 6, N: 4, K: 5, transB: true })).toThrow(/b \[N,K\] holds 10 elements but the shape needs 20/);
    expect(() => matmul(gpu, { a, b, c, M: 6, N: 4, K: 5, transB: true, bF16: true })).not.toThrow();
    const count = gpu.stats.buffersCreated;
    expect(() => matmul(gpu, { a, b: small, c, M: 6, N: 4, K: 5, transB: true, bF16: true })).toThrow(/matmul: b \[N,K\] \(f16\) holds 18 elements but the shape needs 20/);
    expect(() => matmul(gpu, { a, b: small, c, M: 6, N: 4, K: 5, bF16: true, bOffset: 3 })).toThrow(/b \[K,N\] \(f16\) \(offset 3, row stride 4\) holds 18 elements but the shape needs 23/);
    expect(gpu.stats.buffersCreated).toBe(count);
  });
});
