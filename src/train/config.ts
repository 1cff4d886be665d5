// Optimizer and fine-tuning settings as data, with a comment per field.
import type { LrSchedule } from './schedule';

export interface OptimConfig {
  /** Peak learning rate. */
  lr: number;
  /** AdamW first-moment decay. */
  beta1: number;
  /** AdamW second-moment decay. */
  beta2: number;
  /** AdamW denominator epsilon. */
  eps: number;
  /** Decoupled weight decay, applied to matrices only (not norm weights or biases). */
  weightDecay: number;
  /** Clip the global gradient norm to this; 0 disables clipping. */
  maxGradNorm: number;
  /** Steps of linear warmup from lr/warmupSteps up to lr. */
  warmupSteps: number;
  /** After warmup: hold lr, or decay it along a cosine to lr * minLrRatio at the last step. */
  schedule: LrSchedule['kind'];
  /** Floor of the cosine schedule, as a fraction of lr. */
  minLrRatio: number;
}

export const DEFAULT_OPTIM: OptimConfig = {
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  maxGradNorm: 1.0,
  warmupSteps: 20,
  schedule: 'cosine',
  minLrRatio: 0.1,
};
