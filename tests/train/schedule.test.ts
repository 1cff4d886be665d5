import { describe, expect, it } from 'vitest';
import { type LrSchedule, lrAt } from '../../src/train/schedule';

const cosine: LrSchedule = { lr: 3e-4, warmupSteps: 10, totalSteps: 110, kind: 'cosine', minLrRatio: 0.1 };
const constant: LrSchedule = { ...cosine, kind: 'constant' };

describe('lrAt', () => {
  it('warms up linearly from lr / warmupSteps to lr', () => {
    for (const s of [cosine, constant]) {
      expect(lrAt(1, s)).toBeCloseTo(3e-5, 15);
      expect(lrAt(5, s)).toBeCloseTo(1.5e-4, 15);
      expect(lrAt(10, s)).toBeCloseTo(3e-4, 15);
    }
  });

  it('holds lr after warmup when constant', () => {
    for (const step of [11, 50, 110, 1000]) expect(lrAt(step, constant)).toBe(3e-4);
    expect(lrAt(1, { ...constant, warmupSteps: 0 })).toBe(3e-4);
  });

  it('decays along a cosine to lr * minLrRatio at totalSteps, then holds the floor', () => {
    expect(lrAt(60, cosine)).toBeCloseTo(3e-4 * (0.1 + 0.9 * 0.5), 15); // halfway: the midpoint
    expect(lrAt(110, cosine)).toBeCloseTo(3e-5, 15);
    expect(lrAt(500, cosine)).toBeCloseTo(3e-5, 15);
    let prev = lrAt(10, cosine);
    for (let step = 11; step <= 110; step++) {
      const lr = lrAt(step, cosine);
      expect(lr).toBeLessThan(prev);
      prev = lr;
    }
  });

  it('decays from the first step when there is no warmup', () => {
    const s = { ...cosine, warmupSteps: 0, totalSteps: 100, minLrRatio: 0 };
    expect(lrAt(1, s)).toBeCloseTo(3e-4 * 0.5 * (1 + Math.cos(Math.PI / 100)), 15);
    expect(lrAt(100, s)).toBe(0);
  });

  it('rejects bad steps and schedules', () => {
    expect(() => lrAt(0, cosine)).toThrow(/step must be an integer >= 1/);
    expect(() => lrAt(1.5, cosine)).toThrow(/step/);
    expect(() => lrAt(20, { ...cosine, minLrRatio: 2 })).toThrow(/minLrRatio/);
    expect(() => lrAt(20, { ...cosine, totalSteps: 5 })).toThrow(/totalSteps/);
    expect(() => lrAt(1, { ...cosine, warmupSteps: -1 })).toThrow(/warmupSteps/);
  });
});
