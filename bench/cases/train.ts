// Training throughput: one full step (forward, loss, backward, AdamW) of a preset at a fixed batch
// shape, in tokens/s (+ MFU when the device's peak is known). The same job (weights, batch, Adam
// settings) is what the peers run, so their step-0 loss can be checked against ours before timing.

import type { Gpu } from '../../src/gpu/device';
import { type ModelConfig, presetConfig } from '../../src/model/config';
import { initParams } from '../../src/model/params';
import { DEFAULT_OPTIM, type OptimConfig } from '../../src/train/config';
import { createTrainer } from '../../src/train/trainer';
import { rng } from '../../src/util/random';
import { mfu, paramCount, trainStepFlops } from '../flops';
import type { TrainJob } from '../peers/peer';
import type { CaseResult } from '../report';
import { type Budget, timeAdaptive } from '../timing';

export interface TrainShape {
  preset: string;
  B: number;
  T: number;
}

export function trainName(s: TrainShape): string {
  return `train ${s.preset} B${s.B} T${s.T}`;
}

/** A seeded job: our initial weights and a batch of random tokens, every position trained. */
export function makeTrainJob(cfg: ModelConfig, B: number, T: number, seed = 1): TrainJob {
  const r = rng(seed);
  const draw = () => Uint32Array.from({ length: B * T }, () => Math.floor(r() * cfg.vocab));
  return {
    cfg, B, T, weights: initParams(cfg, seed), tokens: draw(), targets: draw(),
    adam: { lr: 1e-3, beta1: DEFAULT_OPTIM.beta1, beta2: DEFAULT_OPTIM.beta2, eps: DEFAULT_OPTIM.eps },
  };
}

/** Our optimizer for the comparison: Adam as the peers run it (no weight decay, no clipping, constant LR). */
export function comparableOptim(job: TrainJob): OptimConfig {
  return { ...DEFAULT_OPTIM, ...job.adam, weightDecay: 0, maxGradNorm: 0, warmupSteps: 0, schedule: 'constant' };
}

/** Our step-0 loss and timed training steps for a job. */
export async function trainCase(gpu: Gpu, s: TrainShape, job: TrainJob, b: Budget, peakTflops?: number): Promise<{ result: CaseResult; loss0: number }> {
  const { cfg, B, T } = job;
  const trainer = createTrainer(gpu, cfg, { B, T }, comparableOptim(job));
  try {
    trainer.loadParams(job.weights);
    trainer.setBatch({ tokens: job.tokens, targets: job.targets, mask: new Float32Array(B * T).fill(1) });
    trainer.forward();
    const loss0 = await trainer.readLoss();
    const t = await timeAdaptive(() => void trainer.trainStep(1_000_000), () => gpu.device.queue.onSubmittedWorkDone(), b);
    const flops = trainStepFlops(cfg, B, T);
    const result: CaseResult = {
      name: trainName(s), group: 'train', value: (B * T) / t.median, unit: 'tokens/s', seconds: t.median, flops,
      mfu: mfu(flops, t.median, peakTflops),
      params: { preset: s.preset, B, T, parameters: paramCount(cfg), weightDecay: 0, maxGradNorm: 0, iters: t.iters, warmupSeconds: t.warmupSeconds },
      note: 'Adam without weight decay or clipping (TF.js has no AdamW); our default run uses AdamW 0.1 + clip 1.0',
    };
    return { result, loss0 };
  } finally {
    trainer.destroy();
  }
}

export function trainConfig(s: TrainShape): ModelConfig {
  return presetConfig(s.preset);
}

/** Relative difference of two losses; the peers must agree with ours within `LOSS_RTOL` before timing. */
export const LOSS_RTOL = 1e-3;
export function lossAgrees(ours: number, peer: number): boolean {
  return Number.isFinite(peer) && Math.abs(peer - ours) <= LOSS_RTOL * Math.abs(ours);
}
