import { describe, expect, it } from 'vitest';
import { createBuffer, type View } from '../../src/gpu/buffers';
import type { Gpu } from '../../src/gpu/device';
import { pipelineCount, run } from '../../src/gpu/kernel';
import { matmul, sumRows } from '../../src/ops/matmul';
import * as ref from '../../src/reference/matmul';
import { rng, randn } from '../../src/util/random';
import { f32View, gpuWith, KERNEL_PROFILES, readF32, testGpu } from '../helpers/gpu';
import type { KernelProfile } from '../../src/gpu/device';
import { assertClose, dot, finiteDiff, FWD, GRAD } from '../helpers/numeric';

const FLAGS = [
  { transA: false, transB: false },
  { transA: false, transB: true },
  { transA: true, transB: false },
  { transA: true, transB: true },
];
const tag = (f: { transA: boolean; transB: boolean }) => `transA=${f.transA} transB=${f.transB}`;

interface Case {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  accumulate?: boolean;
  withBias?: boolean;
  alpha?: number;
  kernels?: KernelProfile;
}

/** Runs the GPU matmul on seeded random inputs and checks it against the reference. */
async function checkMatmul(c: Case, seed: number, g?: Gpu): Promise<void> {
  const { M, N, K, transA = false, transB = false, accumulate = false, withBias = false, alpha, kernels = 'gpu' } = c;
  const gpu = g ?? (await gpuWith(kernels));
  const r = rng(seed);
  const a = randn(M * K, r);
  const b = randn(K * N, r);
  const c0 = randn(M * N, r);
  const bias = withBias ? randn(N, r) : undefined;
  // C starts as c0 either way: without accumulate the kernel must overwrite it.
  const cv = f32View(gpu, c0);
  await run(gpu, matmul(gpu, { a: f32View(gpu, a), b: f32View(gpu, b), c: cv, M, N, K, transA, transB, accumulate, bias: bias && f32View(gpu, bias), alpha }));
  const want = ref.matmul({ a, b, M, N, K, transA, transB, c0, accumulate, bias, alpha });
  assertClose(await readF32(gpu, cv), want, FWD, `matmul ${M}x${N}x${K} (${kernels} kernels)`);
}

/** A Gpu whose per-dimension workgroup limit is tiny, so small problems exercise the 2-D grid. */
function tinyGridGpu(gpu: Gpu, max: number): Gpu {
  const limits = { maxBufferSize: gpu.limits.maxBufferSize, maxComputeWorkgroupsPerDimension: max } as GPUSupportedLimits;
  return { ...gpu, limits };
}

describe('matmul forward', () => {
  const shapes: [number, number, number][] = [
    [1, 37, 5], // M = 1 (one row, as in generation)
    [5, 37, 1], // K = 1
    [4, 1, 9], // N = 1
    [65, 33, 17], // one past the tile in M, nothing a multiple of 4 but 4
    [7, 130, 3],
    [64, 64, 16], // exactly one tile and one K step
  ];
  for (const kernels of KERNEL_PROFILES) {
    for (const f of FLAGS) {
      const k = `${tag(f)}, ${kernels} kernels`;
      for (const [M, N, K] of shapes) {
        it(`${M}x${N}x${K} ${k}`, () => checkMatmul({ M, N, K, ...f, kernels }, M * 1000 + N * 10 + K));
      }
      it(`accumulates (C += op(A)op(B)) 65x33x17 ${k}`, () => checkMatmul({ M: 65, N: 33, K: 17, ...f, accumulate: true, kernels }, 11));
      it(`adds the bias to every row 7x130x3 ${k}`, () => checkMatmul({ M: 7, N: 130, K: 3, ...f, withBias: true, kernels }, 12));
      it(`larger shape 128x96x200 ${k}`, () => checkMatmul({ M: 128, N: 96, K: 200, ...f, kernels }, 13));
      // alpha scales the product only (LoRA: y += scale·u·B^T): not the previous C, not the bias.
      it(`scales by alpha: C += -2.5·op(A)op(B) 65x33x7 ${k}`, () => checkMatmul({ M: 65, N: 33, K: 7, ...f, accumulate: true, alpha: -2.5, kernels }, 17));
      it(`scales by alpha, then adds the bias 7x130x3 ${k}`, () => checkMatmul({ M: 7, N: 130, K: 3, ...f, withBias: true, alpha: 0.375, kernels }, 18));
    }
    it(`covers every tile when the grid wraps into 2-D, ${kernels} kernels`, async () => {
      // 65x300 takes 3 x 10 = 30 tiles of 32x32 on a grid of at most 8 per dimension: 8 x 4 = 32
      // workgroups, 2 idle (flat indices past the last tile exit).
      const gpu = tinyGridGpu(await gpuWith(kernels), 8);
      await checkMatmul({ M: 65, N: 300, K: 6, transB: true }, 15, gpu);
      await checkMatmul({ M: 65, N: 300, K: 6, accumulate: true }, 16, gpu);
    });
  }

  it('the two kernel profiles give the same bits (same fma order over k)', async () => {
    const [M, N, K] = [33, 70, 45];
    const out: number[][] = [];
    for (const kernels of KERNEL_PROFILES) {
      const gpu = await gpuWith(kernels);
      const c = createBuffer(gpu, M * N * 4);
      const ab = { a: f32View(gpu, randn(M * K, rng(20))), b: f32View(gpu, randn(N * K, rng(21))) };
      await run(gpu, matmul(gpu, { ...ab, c, M, N, K, transB: true }));
      out.push(Array.from(await readF32(gpu, c)));
    }
    expect(out[1]).toEqual(out[0]);
  });

  it('alpha = 1 is bit-identical to no alpha, and a non-finite alpha is rejected', async () => {
    const gpu = await testGpu();
    const r = rng(19);
    const [M, N, K] = [9, 21, 13];
    const a = f32View(gpu, randn(M * K, r));
    const b = f32View(gpu, randn(N * K, r));
    const [c1, c2] = [createBuffer(gpu, M * N * 4), createBuffer(gpu, M * N * 4)];
    await run(gpu, [...matmul(gpu, { a, b, c: c1, M, N, K, transB: true }), ...matmul(gpu, { a, b, c: c2, M, N, K, transB: true, alpha: 1 })]);
    expect(Array.from(await readF32(gpu, c2))).toEqual(Array.from(await readF32(gpu, c1)));
    expect(() => matmul(gpu, { a, b, c: c1, M, N, K, transB: true, alpha: NaN })).toThrow(/alpha must be a finite number/);
  });

  // A wide output row (the LM head shape with a smaller vocab: a full 151936 takes ~6 s on SwiftShader).
  it('handles a wide N (1 x 10007 x 3, transB, bias)', () =>
    checkMatmul({ M: 1, N: 10007, K: 3, transB: true, withBias: true }, 14));

  it('compiles each variant once (pipeline cache)', async () => {
    const gpu = await testGpu();
    const v = () => createBuffer(gpu, 64 * 4);
    matmul(gpu, { a: v(), b: v(), c: v(), M: 4, N: 4, K: 4, transA: true, accumulate: true });
    const before = pipelineCount(gpu);
    matmul(gpu, { a: v(), b: v(), c: v(), M: 8, N: 2, K: 3, transA: true, accumulate: true });
    expect(pipelineCount(gpu)).toBe(before);
  });
});

describe('matmul on windows of larger matrices (offsets and row strides)', () => {
  /** A stored rows x cols operand at float `off` of a buffer with row stride `ld`; everything else is random padding. */
  function place(r: () => number, rows: number, cols: number, off: number, ld: number) {
    const buf = randn(off + (rows - 1) * ld + cols + 3, r);
    const dense = new Float32Array(rows * cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) dense[i * cols + j] = buf[off + i * ld + j];
    return { buf, dense, off, ld };
  }

  for (const f of FLAGS) {
    for (const kernels of KERNEL_PROFILES) {
      for (const [accumulate, withBias] of [[false, false], [true, false], [false, true]] as const) {
        it(`70x37x13 ${tag(f)} accumulate=${accumulate}${withBias ? ' bias' : ''}, ${kernels} kernels: the window of C is the reference, the rest untouched`, async () => {
          const gpu = await gpuWith(kernels);
          const [M, N, K] = [70, 37, 13];
          const r = rng(61);
          const A = f.transA ? place(r, K, M, 5, M + 3) : place(r, M, K, 5, K + 3);
          const B = f.transB ? place(r, N, K, 7, K + 2) : place(r, K, N, 7, N + 2);
          const Cw = place(r, M, N, 3, N + 4);
          const bias = withBias ? randn(N, r) : undefined;
          const c = f32View(gpu, Cw.buf);
          await run(gpu, matmul(gpu, {
            a: f32View(gpu, A.buf), aOffset: A.off, lda: A.ld, b: f32View(gpu, B.buf), bOffset: B.off, ldb: B.ld, c, cOffset: Cw.off, ldc: Cw.ld,
            M, N, K, ...f, accumulate, bias: bias && f32View(gpu, bias),
          }));
          const got = await readF32(gpu, c);
          const want = ref.matmul({ a: A.dense, b: B.dense, M, N, K, ...f, c0: Cw.dense, accumulate, bias });
          const window = new Float32Array(M * N);
          const inWindow = new Set<number>();
          for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) { window[i * N + j] = got[Cw.off + i * Cw.ld + j]; inWindow.add(Cw.off + i * Cw.ld + j); }
          assertClose(window, want, FWD, 'C window');
          const outside = Array.from(got.keys()).filter((i) => !inWindow.has(i));
          expect(outside.map((i) => got[i])).toEqual(outside.map((i) => Cw.buf[i]));
        });
      }
    }
  }

  it('rejects a window past its view and a row stride below the row length', async () => {
    const gpu = await testGpu();
    const [a, b, c] = [createBuffer(gpu, 30 * 4), createBuffer(gpu, 20 * 4), createBuffer(gpu, 24 * 4)];
    expect(() => matmul(gpu, { a, b, c, M: 6, N: 4, K: 5, cOffset: 1 })).toThrow(/c \[M,N\] \(offset 1, row stride 4\) holds 24 elements but the shape needs 25/);
    expect(() => matmul(gpu, { a, b, c, M: 6, N: 4, K: 5, lda: 4 })).toThrow(/a \[M,K\] row stride must be an integer >= its 5 columns, got 4/);
    expect(() => matmul(gpu, { a, b, c, M: 6, N: 4, K: 5, bOffset: -1 })).toThrow(/b \[K,N\] offset must be an integer >= 0/);
  });
});

describe('matmul backward (the linear layer gradients)', () => {
  // Finite differences of the float64 reference: with L = <r, C>, dC = r and the gradient
  // formulas d op(A) = dC·op(B)^T, d op(B) = op(A)^T·dC, d bias = sumRows(dC) must match.
  for (const f of FLAGS) {
    it(`reference gradients match finite differences, ${tag(f)}`, () => {
      const [M, N, K] = [3, 4, 5];
      const r = rng(21);
      const a = Float64Array.from(randn(M * K, r));
      const b = Float64Array.from(randn(K * N, r));
      const bias = Float64Array.from(randn(N, r));
      const dc = Float64Array.from(randn(M * N, r));
      const loss = (x: { a?: Float64Array; b?: Float64Array; bias?: Float64Array }) =>
        dot(dc, ref.matmul({ a: x.a ?? a, b: x.b ?? b, bias: x.bias ?? bias, M, N, K, ...f }));
      const { da, db } = ref.matmulBackward({ a, b, dc, M, N, K, ...f });
      assertClose(da, finiteDiff((x) => loss({ a: x }), a), GRAD, 'dA');
      assertClose(db, finiteDiff((x) => loss({ b: x }), b), GRAD, 'dB');
      assertClose(ref.sumRows({ x: dc, M, N }), finiteDiff((x) => loss({ bias: x }), bias), GRAD, 'dbias');
    });
  }

  /**
   * The backward of C = op(A)·op(B) as two forward matmuls, in the stored layouts of A and B:
   *   dA: transA ? [K,M] = op(B)·dC^T : [M,K] = dC·op(B)^T
   *   dB: transB ? [N,K] = dC^T·op(A) : [K,N] = op(A)^T·dC
   */
  function backward(gpu: Gpu, v: { a: View; b: View; dc: View; da: View; db: View }, M: number, N: number, K: number, transA: boolean, transB: boolean, accumulate: boolean) {
    const dA = transA
      ? matmul(gpu, { a: v.b, b: v.dc, c: v.da, M: K, N: M, K: N, transA: transB, transB: true, accumulate })
      : matmul(gpu, { a: v.dc, b: v.b, c: v.da, M, N: K, K: N, transB: !transB, accumulate });
    const dB = transB
      ? matmul(gpu, { a: v.dc, b: v.a, c: v.db, M: N, N: K, K: M, transA: true, transB: transA, accumulate })
      : matmul(gpu, { a: v.a, b: v.dc, c: v.db, M: K, N, K: M, transA: !transA, accumulate });
    return [...dA, ...dB];
  }

  for (const f of FLAGS) {
    for (const [accumulate, kernels] of [[false, 'gpu'], [true, 'gpu'], [false, 'cpu'], [true, 'cpu']] as const) {
      it(`GPU gradients match the reference, 7x37x65 ${tag(f)} accumulate=${accumulate}, ${kernels} kernels`, async () => {
        const gpu = await gpuWith(kernels);
        const [M, N, K] = [7, 37, 65];
        const r = rng(31);
        const a = randn(M * K, r);
        const b = randn(K * N, r);
        const dc = randn(M * N, r);
        const da0 = randn(M * K, r);
        const db0 = randn(K * N, r);
        const views = { a: f32View(gpu, a), b: f32View(gpu, b), dc: f32View(gpu, dc), da: f32View(gpu, da0), db: f32View(gpu, db0) };
        await run(gpu, backward(gpu, views, M, N, K, f.transA, f.transB, accumulate));
        const want = ref.matmulBackward({ a, b, dc, M, N, K, ...f });
        const plus = (x: Float64Array, x0: Float32Array) => (accumulate ? x.map((v, i) => v + x0[i]) : x);
        assertClose(await readF32(gpu, views.da), plus(want.da, da0), GRAD, 'dA');
        assertClose(await readF32(gpu, views.db), plus(want.db, db0), GRAD, 'dB');
      });
    }
  }
});

describe('sumRows', () => {
  async function checkSumRows(M: number, N: number, accumulate: boolean, seed: number, g?: Gpu): Promise<Float32Array> {
    const gpu = g ?? (await testGpu());
    const r = rng(seed);
    const x = randn(M * N, r);
    const out0 = randn(N, r);
    const out = f32View(gpu, out0);
    await run(gpu, sumRows(gpu, { x: f32View(gpu, x), out, M, N, accumulate }));
    const got = await readF32(gpu, out);
    assertClose(got, ref.sumRows({ x, M, N, out0, accumulate }), GRAD, `sumRows ${M}x${N}`);
    return got;
  }

  for (const [M, N] of [[1, 1], [1, 37], [7, 37], [65, 33], [300, 3], [9, 130]]) {
    it(`${M}x${N}`, () => checkSumRows(M, N, false, M * 100 + N));
    it(`${M}x${N} accumulate`, () => checkSumRows(M, N, true, M * 100 + N + 1));
  }

  it('is deterministic (bit-identical across runs)', async () => {
    const first = await checkSumRows(1000, 37, false, 41);
    const second = await checkSumRows(1000, 37, false, 41);
    expect(Array.from(second)).toEqual(Array.from(first));
  });

  it('covers every column when the grid wraps into 2-D', async () => {
    // ceil(300 / 32) = 10 column groups on a grid of at most 4 per dimension: 4 x 3 workgroups, 2 idle.
    await checkSumRows(5, 300, true, 42, tinyGridGpu(await testGpu(), 4));
  });
});

describe('shape errors (thrown before any GPU work)', () => {
  /** `make` builds the views, then returns the op call; the call must throw and allocate nothing. */
  async function expectThrow(make: (gpu: Gpu, v: (n: number) => View) => () => unknown, message: RegExp) {
    const gpu = await testGpu();
    const op = make(gpu, (n) => createBuffer(gpu, n * 4));
    const count = gpu.stats.buffersCreated;
    expect(op).toThrow(message);
    expect(gpu.stats.buffersCreated).toBe(count);
  }

  it('rejects views too small for the shape', async () => {
    await expectThrow((gpu, v) => { const [a, b, c] = [v(6 * 5 - 1), v(5 * 4), v(6 * 4)]; return () => matmul(gpu, { a, b, c, M: 6, N: 4, K: 5 }); }, /matmul: a \[M,K\] holds 29 elements but the shape needs 30/);
    await expectThrow((gpu, v) => { const [a, b, c] = [v(6 * 5), v(5 * 4 - 1), v(6 * 4)]; return () => matmul(gpu, { a, b, c, M: 6, N: 4, K: 5, transB: true }); }, /b \[N,K\]/);
    await expectThrow((gpu, v) => { const [a, b, c] = [v(6 * 5), v(5 * 4), v(6 * 4 - 1)]; return () => matmul(gpu, { a, b, c, M: 6, N: 4, K: 5 }); }, /c \[M,N\]/);
    await expectThrow((gpu, v) => { const [a, b, c, bias] = [v(30), v(20), v(24), v(3)]; return () => matmul(gpu, { a, b, c, bias, M: 6, N: 4, K: 5 }); }, /bias \[N\]/);
    await expectThrow((gpu, v) => { const [x, out] = [v(6 * 4 - 1), v(4)]; return () => sumRows(gpu, { x, out, M: 6, N: 4 }); }, /sumRows: x \[M,N\]/);
    await expectThrow((gpu, v) => { const [x, out] = [v(6 * 4), v(3)]; return () => sumRows(gpu, { x, out, M: 6, N: 4 }); }, /sumRows: out \[N\]/);
  });

  it('rejects a bias together with accumulate', async () => {
    await expectThrow((gpu, v) => { const [a, b, c, bias] = [v(30), v(20), v(24), v(4)]; return () => matmul(gpu, { a, b, c, bias, M: 6, N: 4, K: 5, accumulate: true }); }, /bias is only allowed when accumulate is false/);
  });

  it('rejects bad dimensions and an output that overlaps an input', async () => {
    await expectThrow((gpu, v) => { const [a, b, c] = [v(30), v(20), v(24)]; return () => matmul(gpu, { a, b, c, M: 0, N: 4, K: 5 }); }, /M must be a positive integer/);
    await expectThrow((gpu, v) => { const [a, b, c] = [v(30), v(20), v(24)]; return () => matmul(gpu, { a, b, c, M: 6, N: 4, K: 2.5 }); }, /K must be a positive integer/);
    await expectThrow((gpu, v) => { const [a, b] = [v(30), v(20)]; return () => matmul(gpu, { a, b, c: a, M: 6, N: 4, K: 5 }); }, /c overlaps a/);
    await expectThrow((gpu, v) => { const x = v(24); return () => sumRows(gpu, { x, out: x, M: 6, N: 4 }); }, /out overlaps x/);
  });
});
