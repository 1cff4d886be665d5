// Learning-rate schedule: linear warmup, then constant or cosine decay. Pure TS, evaluated on the host
// each step and handed to the optimizer through setAdamwHyper.

export interface LrSchedule {
  lr: number; // peak learning rate
  warmupSteps: number; // 0: no warmup
  totalSteps: number; // the cosine reaches its floor here and stays there
  kind: 'constant' | 'cosine';
  minLrRatio: number; // cosine floor as a fraction of lr
}

/**
 * The learning rate at a 1-based step. Warmup rises linearly from lr / warmupSteps (step 1) to lr
 * (step warmupSteps). After it, 'constant' holds lr; 'cosine' follows half a cosine from lr at step
 * warmupSteps down to lr * minLrRatio at step totalSteps, and holds that floor beyond.
 */
export function lrAt(step: number, s: LrSchedule): number {
  if (!Number.isInteger(step) || step < 1) throw new Error(`lrAt: step must be an integer >= 1, got ${step}`);
  if (!(s.lr >= 0) || !Number.isFinite(s.lr)) throw new Error(`lrAt: lr must be finite and >= 0, got ${s.lr}`);
  if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0) throw new Error(`lrAt: warmupSteps must be an integer >= 0, got ${s.warmupSteps}`);
  if (step <= s.warmupSteps) return (s.lr * step) / s.warmupSteps;
  if (s.kind === 'constant') return s.lr;
  if (!(s.minLrRatio >= 0 && s.minLrRatio <= 1)) throw new Error(`lrAt: minLrRatio must lie in [0, 1], got ${s.minLrRatio}`);
  if (!Number.isInteger(s.totalSteps) || s.totalSteps < s.warmupSteps) {
    throw new Error(`lrAt: totalSteps (${s.totalSteps}) must be an integer >= warmupSteps (${s.warmupSteps})`);
  }
  const progress = Math.min(1, (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps));
  return s.lr * (s.minLrRatio + (1 - s.minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
