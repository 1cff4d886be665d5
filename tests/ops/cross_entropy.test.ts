import { describe, expect, it } from 'vitest';
import { createBuffer } from '../../src/gpu/buffers';
import type { Gpu } from '../../src/gpu/device';
import { run } from '../../src/gpu/kernel';
import { crossEntropy, lossWeights, weightedSum } from '../../src/ops/cross_entropy';
import * as ref from '../../src/reference/cross_entropy';
import { randInt, randn, rng } from '../../src/util/random';
import { f32View, gpuWith, KERNEL_PROFILES, readF32, testGpu, u32View } from '../helpers/gpu';
import { assertClose, finiteDiff, FWD, GRAD } from '../helpers/numeric';

interface Case {
  logits: Float32Array;
  targets: Uint32Array;
  weights: Float32Array;
  rows: number;
  V: number;
}

/** Random logits; targets hit 0 and V-1; the last row (when rows > 1) is masked out (weight 0). */
function makeCase(rows: number, V: number, seed: number, scale = 3): Case {
  const r = rng(seed);
  const logits = randn(rows * V, r, scale);
  const targets = Uint32Array.from({ length: rows }, (_, i) => (i === 0 ? 0 : i === 1 ? V - 1 : randInt(r, 0, V - 1)));
  const mask = Array.from({ length: rows }, (_, i) => (rows > 1 && i === rows - 1 ? 0 : 1));
  return { logits, targets, weights: lossWeights(mask), rows, V };
}

/** Runs the kernel on a case; returns the losses and what the logits buffer holds afterwards. */
async function gpuCrossEntropy(gpu: Gpu, c: Case, grad: boolean) {
  const logits = f32View(gpu, c.logits);
  const losses = createBuffer(gpu, c.rows * 4);
  await run(gpu, crossEntropy(gpu, { logits, targets: u32View(gpu, c.targets), weights: f32View(gpu, c.weights), losses, rows: c.rows, V: c.V, grad }));
  return { losses: await readF32(gpu, losses), logits: await readF32(gpu, logits) };
}

for (const kernels of KERNEL_PROFILES) {
  describe(`crossEntropy, ${kernels} kernels`, () => {
    // V = 1000 and 5000 are wider than a workgroup (256 threads), so each thread walks several columns.
    for (const [rows, V] of [[1, 37], [7, 37], [7, 1000], [3, 5000], [1, 5000]]) {
      it(`forward matches the reference and leaves the logits alone (rows=${rows}, V=${V})`, async () => {
        const gpu = await gpuWith(kernels);
        const c = makeCase(rows, V, rows * 7919 + V);
        const want = ref.crossEntropy(c);
        const got = await gpuCrossEntropy(gpu, c, false);
        assertClose(got.losses, want.losses, FWD, 'losses');
        expect(got.logits).toEqual(c.logits);
      });

      it(`grad mode writes dlogits in place (rows=${rows}, V=${V})`, async () => {
        const gpu = await gpuWith(kernels);
        const c = makeCase(rows, V, rows * 104729 + V);
        const want = ref.crossEntropy(c);
        const got = await gpuCrossEntropy(gpu, c, true);
        assertClose(got.losses, want.losses, FWD, 'losses');
        assertClose(got.logits, want.dlogits, GRAD, 'dlogits');
        if (rows > 1) {
          // The masked row: its loss is still written, its gradient is exactly zero.
          const last = rows - 1;
          expect(got.losses[last]).toBeGreaterThan(0);
          expect(Array.from(got.logits.subarray(last * V)).every((x) => x === 0)).toBe(true);
        }
      });
    }

    it('row blocks (row0): each block of logits reads and writes its batch rows of targets, weights and losses', async () => {
      const gpu = await gpuWith(kernels);
      const [rows, V] = [7, 37];
      const c = makeCase(rows, V, 4242);
      const want = ref.crossEntropy(c);
      const [targets, weights] = [u32View(gpu, c.targets), f32View(gpu, c.weights)];
      const losses = f32View(gpu, new Float32Array(rows).fill(-1));
      const blocks = [[0, 3], [3, 3], [6, 1]].map(([first, n]) => ({ first, n, view: f32View(gpu, c.logits.subarray(first * V, (first + n) * V)) }));
      await run(gpu, blocks.flatMap((b) => crossEntropy(gpu, { logits: b.view, targets, weights, losses, rows: b.n, row0: b.first, V, grad: true })));
      assertClose(await readF32(gpu, losses), want.losses, FWD, 'losses');
      for (const b of blocks) assertClose(await readF32(gpu, b.view), want.dlogits.subarray(b.first * V, (b.first + b.n) * V), GRAD, `dlogits rows ${b.first}..`);
      expect(() => crossEntropy(gpu, { logits: blocks[2].view, targets, weights, losses, rows: 1, row0: 7, V })).toThrow(/targets holds 7 elements but the shape needs 8/);
    });

    it('does not overflow on logits of +-50 (subtracts the row max)', async () => {
      const gpu = await gpuWith(kernels);
      const rows = 4;
      const V = 300;
      const r = rng(5);
      const logits = Float32Array.from({ length: rows * V }, () => (r() < 0.5 ? -50 : 50) + r());
      // Row 0's target holds a +50 logit, row 1's a -50 one (a loss near 100).
      logits[0] = 50.5;
      logits[V + 7] = -50.5;
      const c: Case = { logits, targets: Uint32Array.from([0, 7, V - 1, 123]), weights: lossWeights([1, 1, 1, 1]), rows, V };
      const want = ref.crossEntropy(c);
      const got = await gpuCrossEntropy(gpu, c, true);
      expect(got.losses[1]).toBeGreaterThan(99);
      assertClose(got.losses, want.losses, FWD, 'losses');
      assertClose(got.logits, want.dlogits, GRAD, 'dlogits');
    });

    it('handles rows spread over a 2-D grid (workgroup limit forced down to 3)', async () => {
      const gpu = await gpuWith(kernels);
      const small: Gpu = { ...gpu, limits: { ...gpu.limits, maxComputeWorkgroupsPerDimension: 3 } as GPUSupportedLimits };
      const c = makeCase(7, 37, 99); // 7 rows -> a 3x3 grid with 2 surplus workgroups
      const want = ref.crossEntropy(c);
      const got = await gpuCrossEntropy(small, c, true);
      assertClose(got.losses, want.losses, FWD, 'losses');
      assertClose(got.logits, want.dlogits, GRAD, 'dlogits');
    });

    it('gives a NaN loss, not an out-of-bounds read, for a target >= V', async () => {
      const gpu = await gpuWith(kernels);
      const c = makeCase(2, 37, 3);
      c.targets[1] = 37;
      const got = await gpuCrossEntropy(gpu, c, false);
      expect(Number.isNaN(got.losses[1])).toBe(true);
      assertClose(got.losses.subarray(0, 1), ref.crossEntropy({ ...c, rows: 1 }).losses, FWD, 'valid row');
    });

    it('reference dlogits match finite differences of the reference loss', () => {
      const rows = 3;
      const V = 5;
      const r = rng(11);
      const logits = randn(rows * V, r, 2);
      const targets = [0, 4, 2];
      const weights = [0.5, 0.2, 0.3];
      const { dlogits } = ref.crossEntropy({ logits, targets, weights, rows, V });
      const numeric = finiteDiff((x) => ref.crossEntropy({ logits: x, targets, weights, rows, V }).loss, logits);
      assertClose(dlogits, numeric, GRAD, 'dlogits vs finite differences');
    });

    it('throws on bad shapes before any GPU work', async () => {
      const gpu = await gpuWith(kernels);
      const logits = createBuffer(gpu, 7 * 37 * 4);
      const rowsBuf = createBuffer(gpu, 7 * 4);
      const args = { logits, targets: rowsBuf, weights: rowsBuf, losses: createBuffer(gpu, 7 * 4), rows: 7, V: 37 };
      expect(() => crossEntropy(gpu, { ...args, V: 38 })).toThrow(/logits holds 259 elements but the shape needs 266/);
      expect(() => crossEntropy(gpu, { ...args, rows: 8 })).toThrow(/crossEntropy/);
      expect(() => crossEntropy(gpu, { ...args, rows: 0 })).toThrow(/rows must be a positive integer/);
      expect(() => crossEntropy(gpu, { ...args, V: 2.5 })).toThrow(/V must be a positive integer/);
      expect(() => weightedSum(gpu, { losses: rowsBuf, weights: rowsBuf, out: createBuffer(gpu, 0), rows: 7 })).toThrow(/out holds 0/);
      expect(() => weightedSum(gpu, { losses: rowsBuf, weights: rowsBuf, out: createBuffer(gpu, 4), rows: 9 })).toThrow(/weightedSum/);
    });
  });
}

describe('weightedSum', () => {
  // 1000 rows: each of the 256 threads sums several rows before the tree.
  for (const rows of [1, 7, 1000]) {
    it(`matches the reference loss (rows=${rows})`, async () => {
      const gpu = await testGpu();
      const r = rng(rows);
      const losses = Float32Array.from({ length: rows }, () => 5 * r());
      const weights = lossWeights(Array.from({ length: rows }, () => (r() < 0.7 ? 1 : 0)).map((m, i) => (i === 0 ? 1 : m)));
      const out = createBuffer(gpu, 4);
      await run(gpu, weightedSum(gpu, { losses: f32View(gpu, losses), weights: f32View(gpu, weights), out, rows }));
      let want = 0;
      for (let i = 0; i < rows; i++) want += weights[i] * losses[i];
      assertClose(await readF32(gpu, out), [want], FWD, 'weighted sum');
    });
  }

  it('turns per-row losses into the mean over masked tokens, end to end', async () => {
    const gpu = await testGpu();
    const c = makeCase(7, 37, 21);
    c.weights = lossWeights([0, 0, 1, 1, 1, 0, 1]); // prompt tokens first
    const logits = f32View(gpu, c.logits);
    const weights = f32View(gpu, c.weights);
    const losses = createBuffer(gpu, c.rows * 4);
    const out = createBuffer(gpu, 4);
    await run(gpu, [
      ...crossEntropy(gpu, { logits, targets: u32View(gpu, c.targets), weights, losses, rows: c.rows, V: c.V, grad: true }),
      ...weightedSum(gpu, { losses, weights, out, rows: c.rows }),
    ]);
    const want = ref.crossEntropy(c);
    const mean = (want.losses[2] + want.losses[3] + want.losses[4] + want.losses[6]) / 4;
    assertClose(await readF32(gpu, out), [mean], FWD, 'mean masked loss');
  });
});

describe('lossWeights', () => {
  it('divides a mask by its sum', () => {
    expect(Array.from(lossWeights([0, 1, 1, 0, 1, 1]))).toEqual([0, 0.25, 0.25, 0, 0.25, 0.25]);
    assertClose(lossWeights([0.5, 1.5]), [0.25, 0.75], FWD, 'fractional mask');
  });

  it('gives all-zero weights for an all-zero mask: loss 0, zero gradient, no NaN', async () => {
    const gpu = await testGpu();
    const w = lossWeights([0, 0, 0]);
    expect(Array.from(w)).toEqual([0, 0, 0]);
    const c: Case = { ...makeCase(3, 37, 8), weights: w };
    const got = await gpuCrossEntropy(gpu, c, true);
    expect(got.logits.every((x) => x === 0)).toBe(true);
    const out = createBuffer(gpu, 4);
    await run(gpu, weightedSum(gpu, { losses: f32View(gpu, got.losses), weights: f32View(gpu, w), out, rows: 3 }));
    expect(Array.from(await readF32(gpu, out))).toEqual([0]);
  });

  it('rejects negative or non-finite mask values', () => {
    expect(() => lossWeights([1, -1])).toThrow(/mask\[1\] = -1/);
    expect(() => lossWeights([NaN])).toThrow(/mask\[0\]/);
  });
});
