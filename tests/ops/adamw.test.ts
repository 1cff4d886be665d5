import { describe, expect, it } from 'vitest';
import { createBuffer, upload } from '../../src/gpu/buffers';
import type { Gpu } from '../../src/gpu/device';
import { run } from '../../src/gpu/kernel';
import { adamw, type AdamwHyper, gradNormPartials, gradNormSq, setAdamwHyper } from '../../src/ops/adamw';
import * as ref from '../../src/reference/adamw';
import { randn, rng } from '../../src/util/random';
import { f32View, gpuWith, KERNEL_PROFILES, readF32, testGpu } from '../helpers/gpu';
import { assertClose, FWD } from '../helpers/numeric';

const HYPER: AdamwHyper = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.5, step: 1, maxGradNorm: 0 };

/** The same GPU with a smaller per-dimension workgroup limit, so grid1d must fold grids into 2-D. */
function withGridLimit(gpu: Gpu, max: number): Gpu {
  return { ...gpu, limits: { ...gpu.limits, maxComputeWorkgroupsPerDimension: max } as GPUSupportedLimits };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/**
 * Runs `steps` AdamW steps on the GPU and in the reference, from the same random start and the same
 * fresh f32 gradients each step. The dispatches are built once; each step only rewrites the
 * hyper-parameters (lr and step change), as training does.
 */
async function compareSteps(gpu: Gpu, o: { n: number; decayEnd: number; maxGradNorm: number; steps: number; seed: number }) {
  const { n, decayEnd, steps } = o;
  const r = rng(o.seed);
  const params0 = randn(n, r);
  const params = f32View(gpu, params0);
  const grads = createBuffer(gpu, n * 4);
  const m = createBuffer(gpu, n * 4);
  const v = createBuffer(gpu, n * 4);
  const partials = createBuffer(gpu, gradNormPartials(n) * 4);
  const normSq = createBuffer(gpu, 4);
  const hyper = (step: number): AdamwHyper => ({ ...HYPER, maxGradNorm: o.maxGradNorm, step, lr: HYPER.lr * (1 + 0.1 * step) });
  const dispatches = [
    ...gradNormSq(gpu, { grads, partials, out: normSq, n }),
    ...adamw(gpu, { params, grads, m, v, normSq, n, decayEnd, hyper: hyper(1) }),
  ];
  let want: ref.AdamwRef = { params: Float64Array.from(params0), m: new Float64Array(n), v: new Float64Array(n), normSq: 0 };
  for (let step = 1; step <= steps; step++) {
    const g = randn(n, r, 2);
    upload(gpu, grads, g);
    setAdamwHyper(gpu, dispatches, hyper(step));
    await run(gpu, dispatches);
    want = ref.adamw({ ...want, grads: g, n, decayEnd, hyper: hyper(step) });
  }
  assertClose(await readF32(gpu, normSq), [want.normSq], FWD, 'normSq');
  assertClose(await readF32(gpu, params), want.params, FWD, 'params');
  assertClose(await readF32(gpu, m), want.m, FWD, 'm');
  assertClose(await readF32(gpu, v), want.v, FWD, 'v');
  return want;
}

describe('adamw', () => {
  it('matches the reference over 3 steps, no clipping, n odd (1001), decay on the first 600', async () => {
    await compareSteps(await testGpu(), { n: 1001, decayEnd: 600, maxGradNorm: 0, steps: 3, seed: 1 });
  });

  it('matches the reference when clipping triggers', async () => {
    const n = 1001;
    // Gradients ~ N(0, 4): a norm near 2 sqrt(n) = 63, far above 5.
    const clipped = await compareSteps(await testGpu(), { n, decayEnd: 600, maxGradNorm: 5, steps: 3, seed: 2 });
    const unclipped = await compareSteps(await testGpu(), { n, decayEnd: 600, maxGradNorm: 0, steps: 3, seed: 2 });
    // The two runs must differ, or this case would not test clipping at all.
    expect(maxAbsDiff(clipped.m, unclipped.m)).toBeGreaterThan(0.1);
  });

  it('matches the reference when the clip bound is above the norm (no effect)', async () => {
    const loose = await compareSteps(await testGpu(), { n: 1001, decayEnd: 1001, maxGradNorm: 1e4, steps: 2, seed: 3 });
    const unclipped = await compareSteps(await testGpu(), { n: 1001, decayEnd: 1001, maxGradNorm: 0, steps: 2, seed: 3 });
    expect(Math.sqrt(loose.normSq)).toBeLessThan(1e4);
    expect(maxAbsDiff(loose.params, unclipped.params)).toBe(0);
  });

  it('matches the reference with clipping on the other kernel profile too', async () => {
    const gpu = await testGpu();
    await compareSteps(await gpuWith(gpu.kernels === 'cpu' ? 'gpu' : 'cpu'), { n: 70_001, decayEnd: 40_000, maxGradNorm: 50, steps: 2, seed: 9 });
  });

  it('matches the reference for n = 300000 with clipping', async () => {
    await compareSteps(await testGpu(), { n: 300_000, decayEnd: 200_003, maxGradNorm: 100, steps: 2, seed: 4 });
  });

  it('folds large grids into 2-D (workgroup limit forced down to 35)', async () => {
    // 300000 floats: 1172 update groups -> 35 x 34 (18 surplus); 74 norm groups -> 25 x 3 (1 surplus).
    await compareSteps(withGridLimit(await testGpu(), 35), { n: 300_000, decayEnd: 123_457, maxGradNorm: 100, steps: 1, seed: 5 });
  });

  it('decays exactly [0, decayEnd) and nothing after it', async () => {
    const gpu = await testGpu();
    const n = 1001;
    const decayEnd = 517;
    const p0 = randn(n, rng(6));
    const params = f32View(gpu, p0);
    const zeros = () => createBuffer(gpu, n * 4);
    // Zero gradients: the moments stay zero, so the only change is the decoupled decay.
    await run(gpu, adamw(gpu, { params, grads: zeros(), m: zeros(), v: zeros(), normSq: createBuffer(gpu, 4), n, decayEnd, hyper: HYPER }));
    const got = await readF32(gpu, params);
    const want = Array.from(p0, (p, i) => (i < decayEnd ? p * (1 - HYPER.lr * HYPER.weightDecay) : p));
    assertClose(got, want, FWD, 'decayed params');
    expect(Array.from(got.subarray(decayEnd))).toEqual(Array.from(p0.subarray(decayEnd)));
  });

  it('throws on bad shapes and hyper-parameters before any GPU work', async () => {
    const gpu = await testGpu();
    const n = 100;
    const b = () => createBuffer(gpu, n * 4);
    const args = { params: b(), grads: b(), m: b(), v: b(), normSq: createBuffer(gpu, 4), n, decayEnd: 50, hyper: HYPER };
    expect(() => adamw(gpu, { ...args, n: 101 })).toThrow(/adamw: params holds 100 elements but the shape needs 101/);
    expect(() => adamw(gpu, { ...args, decayEnd: 101 })).toThrow(/decayEnd/);
    expect(() => adamw(gpu, { ...args, hyper: { ...HYPER, step: 0 } })).toThrow(/step must be an integer >= 1/);
    expect(() => adamw(gpu, { ...args, hyper: { ...HYPER, beta2: 1 } })).toThrow(/beta1 and beta2/);
    expect(() => adamw(gpu, { ...args, hyper: { ...HYPER, lr: NaN } })).toThrow(/adamw/);
    expect(() => adamw(gpu, { ...args, normSq: createBuffer(gpu, 0) })).toThrow(/normSq holds 0/);
    const norm = gradNormSq(gpu, { grads: args.grads, partials: createBuffer(gpu, 4), out: createBuffer(gpu, 4), n });
    expect(() => setAdamwHyper(gpu, norm, HYPER)).toThrow(/none of these dispatches was made by adamw/);
    expect(() => gradNormSq(gpu, { grads: args.grads, partials: createBuffer(gpu, 4), out: createBuffer(gpu, 4), n: 5000 })).toThrow(/grads holds 100/);
    expect(() => gradNormSq(gpu, { grads: createBuffer(gpu, 5000 * 4), partials: createBuffer(gpu, 4), out: createBuffer(gpu, 4), n: 5000 })).toThrow(/partials holds 1 elements but the shape needs 2/);
  });
});

describe('gradNormSq', () => {
  // 4096 is one full first-stage chunk; 4097 spills one float into a second; 4098 leaves a tail of 2
  // past the last group of four in the thread-per-chunk variant.
  for (const kernels of KERNEL_PROFILES) for (const n of [1, 7, 4096, 4097, 4098, 300_000]) {
    it(`matches the reference sum of squares (n=${n}, ${kernels} kernels)`, async () => {
      const gpu = await gpuWith(kernels);
      const g = randn(n, rng(n));
      const out = createBuffer(gpu, 4);
      const d = gradNormSq(gpu, { grads: f32View(gpu, g), partials: createBuffer(gpu, gradNormPartials(n) * 4), out, n });
      await run(gpu, d);
      const first = await readF32(gpu, out);
      let want = 0;
      for (let i = 0; i < n; i++) want += g[i] * g[i];
      assertClose(first, [want], FWD, 'normSq');
      // Deterministic: the same inputs give the same bits.
      await run(gpu, d);
      expect(await readF32(gpu, out)).toEqual(first);
    });
  }

  it('sizes its scratch: one partial per 4096 floats', () => {
    expect([1, 4096, 4097, 300_000].map(gradNormPartials)).toEqual([1, 1, 2, 74]);
  });
});
