// The arithmetic run estimate (src/worker/estimate.ts): every preset can be estimated before it runs,
// 'epochs' schedules included (their steps depend on how many examples are kept, unknown ahead).

import { describe, expect, it } from 'vitest';
import { plannedStepsForIteration, stepsForIteration } from '../../src/star/config';
import { RUN_PRESETS, type RunConfig } from '../../src/star/run_config';
import { estimateRun, runWork } from '../../src/worker/estimate';

describe('estimating an arithmetic run', () => {
  it.each(Object.keys(RUN_PRESETS))('estimates the %s preset, training steps counted per iteration', (name) => {
    const cfg = RUN_PRESETS[name as keyof typeof RUN_PRESETS] as RunConfig;
    const e = estimateRun(cfg, null, null);
    expect(e.refusal).toBeNull();
    const planned = Array.from({ length: cfg.star.iterations }, (_, i) => plannedStepsForIteration(cfg.star, i + 1, cfg.trainBatch));
    const seed = cfg.base === 'scratch' ? cfg.star.seedSteps : 0; // a shipped base model skips the seed phase
    expect(e.trainSteps).toBe(seed + planned.reduce((a, b) => a + b, 0));
    expect(e.seconds).toBeGreaterThan(0);
  });

  it("plans an 'epochs' schedule from the examples it expects to keep: more with hint replay and accumulation, within min and max", () => {
    const star = { ...RUN_PRESETS.demo.star, steps: { kind: 'epochs' as const, epochs: 4, min: 10, max: 100_000 } };
    const batch = 16;
    const plain = { ...star, hintReplay: false, accumulate: false };
    expect(plannedStepsForIteration(plain, 1, batch)).toBe(Math.round((4 * star.trainSize * 0.75) / batch));
    expect(plannedStepsForIteration({ ...plain, hintReplay: true }, 1, batch)).toBe(Math.round((4 * star.trainSize * 1.5) / batch));
    expect(plannedStepsForIteration({ ...plain, accumulate: true }, 3, batch)).toBe(Math.round((4 * star.trainSize * 2.25) / batch));
    expect(plannedStepsForIteration({ ...plain, mode: 'direct' }, 1, batch)).toBe(Math.round((4 * star.trainSize) / batch));
    expect(plannedStepsForIteration({ ...plain, steps: { ...plain.steps, max: 7 } }, 1, batch)).toBe(7);
    // Fixed schedules are what they say.
    const fixed = { ...plain, iterations: 6, steps: { kind: 'multiply' as const, start: 40, factor: 1.2 } };
    expect(plannedStepsForIteration(fixed, 3, batch)).toBe(stepsForIteration(fixed, 3));
    expect(runWork({ ...RUN_PRESETS.demo, base: 'scratch', star: fixed }).trainSteps).toBe(fixed.seedSteps + 40 + 48 + 58 + 69 + 83 + 100);
    expect(runWork({ ...RUN_PRESETS.demo, star: fixed }).trainSteps).toBe(40 + 48 + 58 + 69 + 83 + 100);
  });

  it('guesses the time of an uncalibrated device from its kind: the demo on SwiftShader within 2x of what it measured', () => {
    const limits = (kernels: 'cpu' | 'gpu') => ({ maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27, kernels });
    const demo = RUN_PRESETS.demo as RunConfig;
    const secs = (e: { seconds: number | null }) => e.seconds ?? NaN;
    const cpu = { ...estimateRun(demo, limits('cpu'), null) };
    // Measured on this kind of device (docs/results.md): 28.5 minutes in Node, 19.5 in the browser.
    expect(secs(cpu) / 60).toBeGreaterThan(19.5 / 2);
    expect(secs(cpu) / 60).toBeLessThan(28.5 * 2);
    expect(cpu.calibrated).toBe(false);
    const gpu = estimateRun(demo, limits('gpu'), null);
    expect(secs(gpu) * 10).toBeLessThan(secs(cpu));
    // More parameters, longer sums and more iterations take longer; a measured speed replaces the guess.
    expect(secs(estimateRun(RUN_PRESETS.five as RunConfig, limits('cpu'), null))).toBeGreaterThan(5 * secs(cpu));
    const measured = estimateRun(demo, limits('cpu'), { trainStep: 0.4, decodeStep: 0.05 });
    expect(secs(measured)).toBeCloseTo(measured.trainSteps * 0.4 + measured.decodeSteps * 0.05);
  });
});
