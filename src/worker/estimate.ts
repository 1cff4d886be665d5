// Before an arithmetic run starts (./csqa_estimate.ts for CommonsenseQA): how much GPU memory it needs (the same sizes the trainer and generator allocate),
// whether that fits this adapter, and roughly how long it takes. Time is counted in training steps and
// decode steps; the seconds each costs are measured on this device once it has finished an iteration
// (calibrate), and are a rough default before that.

import { generatorBytes } from '../generate/generate';
import type { KernelProfile } from '../gpu/device';
import { activationSizes, memoryReport } from '../model/activations';
import { headDim, type ModelConfig, presetConfig } from '../model/config';
import type { LoraConfig } from '../model/lora';
import { plannedStepsForIteration } from '../star/config';
import type { RunConfig } from '../star/run_config';
import { makeProblem, problemPrompt, scratchpad } from '../star/tasks/arithmetic';
import { arithmeticTask } from '../star/tasks/arithmetic_task';
import { arithmeticTokenizer } from '../star/tasks/char_tokenizer';
import type { IterationRecord } from '../star/types';
import { BUCKET_T } from '../train/batches'; // training lengths round up to a multiple of it, as the engine's do
import { formatBytes } from '../util/bytes';
import type { Estimate } from './api';

/** WebGPU does not report how much memory a GPU has; refuse runs needing more than this share of a laptop's. */
export const MEMORY_BUDGET = 2 * 1024 ** 3;

export interface Limits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** Which kernels the device runs ('cpu': a CPU driver such as SwiftShader), for the time guessed before it is measured. */
  kernels?: KernelProfile;
}

/** Seconds per training step and per decode step (one token for a whole batch), on one device. */
export interface Calibration {
  trainStep: number;
  decodeStep: number;
}

/**
 * Before this device has finished an iteration, its speed is guessed from the work of a step and the kind of
 * device: arithmetic throughput on these small matmuls, and the fixed cost of one dispatch.
 *   cpu: SwiftShader on 2 cores. The demo preset measured 0.40 s a training step (76k parameters, batch 16,
 *        ~110 tokens: ~0.8 GFLOP) and the five preset ~2 s (150k, batch 16, ~160 tokens); a dispatch ~0.7 ms.
 *   gpu: a laptop GPU: a small share of its peak on matrices this narrow, and tens of microseconds a dispatch
 *        (published measurements: 24-71 µs). Not measured here (no GPU): a guess, replaced after one iteration.
 */
export const DEVICE_GUESS: Record<KernelProfile, { flops: number; dispatch: number }> = {
  cpu: { flops: 2e9, dispatch: 7e-4 },
  gpu: { flops: 2e11, dispatch: 3e-5 },
};

/** Seconds per training step (batch B of T tokens) and per decode step (batch G) guessed for a device of this kind. */
export function guessCalibration(model: ModelConfig, B: number, T: number, G: number, kernels: KernelProfile): Calibration {
  const d = DEVICE_GUESS[kernels];
  const weights = model.nLayers * (2 * model.dModel * (model.nHeads + model.nKvHeads) * headDim(model) + 3 * model.dModel * model.dFF) + model.vocab * model.dModel;
  const attention = model.nLayers * 2 * T * model.nHeads * headDim(model); // per token: scores and the weighted sum, about half causal
  const train = 6 * B * T * (weights + attention) / d.flops + (10 + 37 * model.nLayers) * d.dispatch; // ~37 dispatches per layer and step
  const decode = 2 * G * (weights + attention) / d.flops + (4 + 12 * model.nLayers) * d.dispatch; // 12 per layer (tests/generate)
  return { trainStep: train, decodeStep: decode };
}

export function calibrationKey(cfg: RunConfig): string {
  return `${cfg.model}/${cfg.trainBatch}/${cfg.genBatch}`;
}

/** Tokens of the longest training example of d digits: all nines (every column carries), hinted, with BOS and EOS. */
function exampleTokens(d: number): number {
  const nines = 10 ** d - 1;
  const p = makeProblem(nines, nines);
  return arithmeticTokenizer.encode(problemPrompt(p, true)).length + arithmeticTokenizer.encode(scratchpad(p)).length + 2;
}

/** Tokens of the longest training example: the largest digit count. */
function longestExample(cfg: RunConfig): number {
  return exampleTokens(Math.max(cfg.star.maxDigits, cfg.star.seedMaxDigits));
}

/** Tokens of a typical training batch: examples bucketed by length (train/batches.ts), so the mean over the digit range. */
function typicalLength(cfg: RunConfig): number {
  const { minDigits, maxDigits } = cfg.star;
  let sum = 0;
  for (let d = minDigits; d <= maxDigits; d++) sum += exampleTokens(d);
  return Math.ceil(sum / (maxDigits - minDigits + 1) / BUCKET_T) * BUCKET_T;
}

/** Decode steps to generate for `n` problems spread evenly over the digit range, grouped as the loop groups them. */
function decodeSteps(cfg: RunConfig, n: number): number {
  const { minDigits, maxDigits } = cfg.star;
  const task = arithmeticTask(cfg.star);
  let steps = 0;
  for (let d = minDigits; d <= maxDigits; d++) {
    const count = n / (maxDigits - minDigits + 1);
    if (count > 0) steps += Math.ceil(count / cfg.genBatch) * task.maxNewTokens(makeProblem(10 ** (d - 1), 10 ** (d - 1)));
  }
  return steps;
}

/** Training and decode steps of a whole run (rationalization assumed to retry half the problems). */
export function runWork(cfg: RunConfig): { trainSteps: number; decodeSteps: number } {
  const s = cfg.star;
  const iterations = s.mode === 'base' ? 0 : s.iterations;
  let trainSteps = cfg.base === 'scratch' ? s.seedSteps : 0; // a shipped base model skips the seed phase
  let decode = decodeSteps(cfg, s.evalSize);
  for (let it = 1; it <= iterations; it++) {
    trainSteps += plannedStepsForIteration(s, it, cfg.trainBatch);
    decode += decodeSteps(cfg, s.evalSize);
    if (s.mode !== 'direct') decode += decodeSteps(cfg, s.trainSize);
    if (s.mode === 'star') decode += decodeSteps(cfg, s.trainSize / 2);
  }
  return { trainSteps, decodeSteps: decode };
}

/** Bytes of the largest single training activation buffer (compared with maxStorageBufferBindingSize). */
export function largestActivation(model: ModelConfig, B: number, T: number, lora?: LoraConfig, maxBindingBytes?: number): number {
  let max = 0;
  const visit = (x: unknown) => {
    if (typeof x === 'number') max = Math.max(max, x);
    else if (x && typeof x === 'object') Object.values(x).forEach(visit);
  };
  visit(activationSizes(model, B, T, lora, maxBindingBytes));
  return max * 4;
}

export function estimateRun(cfg: RunConfig, limits: Limits | null, calib: Calibration | null): Estimate {
  const model = presetConfig(cfg.model);
  const longest = longestExample(cfg);
  const T = Math.min(model.maxSeq, Math.ceil(longest / BUCKET_T) * BUCKET_T);
  // Bucketed training keeps a trainer for every length a batch rounds up to; they share one set of activations,
  // allocated for the model's longest sequence (src/star/gpu_engine.ts).
  const memory = memoryReport(model, { B: cfg.trainBatch, T: model.maxSeq, kvCache: generatorBytes(model, cfg.genBatch, model.maxSeq) });
  const largestBuffer = largestActivation(model, cfg.trainBatch, model.maxSeq);
  const work = runWork(cfg);
  const c = calib ?? guessCalibration(model, cfg.trainBatch, Math.min(T, typicalLength(cfg)), cfg.genBatch, limits?.kernels ?? 'gpu');
  const seconds = work.trainSteps * c.trainStep + work.decodeSteps * c.decodeStep;

  // A GPU whose buffers max out small is a small GPU: allow at most four of its largest buffers.
  const budget = Math.min(MEMORY_BUDGET, limits ? 4 * limits.maxBufferSize : MEMORY_BUDGET);
  let refusal: string | null = null;
  if (longest > model.maxSeq) {
    const d = Math.max(cfg.star.maxDigits, cfg.star.seedMaxDigits);
    refusal = `A ${d}-digit problem with its scratchpad is ${longest} tokens, but the ${cfg.model} model reads at most ${model.maxSeq}. Lower the digit range.`;
  } else if (limits && largestBuffer > limits.maxStorageBufferBindingSize) {
    refusal = `Training needs a ${formatBytes(largestBuffer)} buffer; this GPU binds at most ${formatBytes(limits.maxStorageBufferBindingSize)}. Use a smaller batch or model.`;
  } else if (memory.total > budget) {
    refusal = `The run needs ${formatBytes(memory.total)} of GPU memory, more than the ${formatBytes(budget)} this app allows itself on this GPU. Use a smaller preset.`;
  }
  return { memory, budget, largestBuffer, trainSeq: T, ...work, seconds, calibrated: calib !== null, refusal };
}

/** This device's speed, measured from a finished iteration (null when it trained or generated nothing). */
export function calibrate(cfg: RunConfig, r: IterationRecord): Calibration | null {
  const ft = r.seconds.finetune ?? 0;
  const gen = (r.seconds.generate ?? 0) + (r.seconds.rationalize ?? 0) + (r.seconds.evaluate ?? 0);
  const retried = cfg.star.rationalize ? r.generated - r.correct : 0;
  const steps = decodeSteps(cfg, r.generated) + decodeSteps(cfg, retried) + decodeSteps(cfg, cfg.star.evalSize);
  if (r.trainSteps === 0 || ft <= 0 || gen <= 0 || steps === 0) return null;
  return { trainStep: ft / r.trainSteps, decodeStep: gen / steps };
}
