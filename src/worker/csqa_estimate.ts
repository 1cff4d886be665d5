// Before a CommonsenseQA run starts: the GPU memory it needs (the pretrained weights, what fine-tuning
// adds: gradients and AdamW moments of every parameter, or of the LoRA adapters only, the training
// activations at the longest example, and the generator), whether that fits this adapter, and the work
// it does. Pure: ./csqa.ts reads config.json, the tokenizer and the questions and hands the sizes here.
//
// With config.json alone (before the tokenizer and the questions are read) everything but the
// activations is known, so a model too large for the device is refused before any other download.

import { chooseBatchSize, generatorBytes } from '../generate/generate';
import { checkBindingLimit, type MemoryEstimate } from '../hub/load';
import { memoryReport } from '../model/activations';
import type { ModelConfig } from '../model/config';
import { plannedStepsForIteration } from '../star/config';
import type { CsqaRunConfig } from '../star/tasks/csqa_run';
import type { IterationRecord } from '../star/types';
import { BUCKET_T } from '../train/batches'; // training lengths round up to a multiple of it, as the engine's do
import { formatBytes } from '../util/bytes';
import type { Estimate } from './api';
import { type Calibration, largestActivation, type Limits } from './estimate';

/**
 * WebGPU does not say how much memory a GPU has. A pretrained model needs more than the arithmetic task's
 * 2 GiB: allow a run at most 4 GiB (and at most four of the adapter's largest buffers), which a laptop GPU
 * or an integrated one sharing 8 GB of memory can give. Beyond that a run is refused before it starts.
 */
export const CSQA_MEMORY_BUDGET = 4 * 1024 ** 3;

/** What the generator may use; the same default the engine chooses its batch under (src/star/gpu_engine.ts). */
export const GENERATOR_BUDGET = 1 << 30;

const PROMPT_BUCKET = 8; // as the generator buckets prompt lengths

export interface CsqaSizes {
  /** The model as the engine runs it (maxSeq capped by the run config). */
  model: ModelConfig;
  memory: MemoryEstimate;
  /** Tokens of the longest training example (prompt, rationale budget, BOS and EOS); null before the tokenizer and questions are read. */
  trainTokens: number | null;
  /** Tokens of the longest generation prompt (few-shot prefix and hint included, with BOS); null when not yet known. */
  promptTokens: number | null;
}

export const csqaCalibrationKey = (cfg: CsqaRunConfig): string =>
  `csqa/${cfg.model}/${cfg.trainBatch}/${cfg.genBatch}/${cfg.maxSeq}/${cfg.lora ? `r${cfg.lora.rank}:${cfg.lora.targets.join('+')}` : 'full'}`;

/** The generation batch the engine will use: the config's, lowered until the generator fits its budget. */
export function generationBatch(cfg: CsqaRunConfig, model: ModelConfig, limits?: Limits | null): number {
  return Math.min(cfg.genBatch, chooseBatchSize(model, model.maxSeq, GENERATOR_BUDGET, model.maxSeq, cfg.genBatch, limits?.maxStorageBufferBindingSize));
}

/** Decode steps (one token for a whole batch) to answer `n` questions, at most maxNewTokens each. */
const decodeSteps = (cfg: CsqaRunConfig, n: number, genBatch: number) => Math.ceil(n / genBatch) * cfg.maxNewTokens;

/** Training and decode steps of a whole run (rationalization assumed to retry half the questions). */
export function csqaWork(cfg: CsqaRunConfig, genBatch: number): { trainSteps: number; decodeSteps: number } {
  const s = cfg.star;
  const iterations = s.mode === 'base' ? 0 : s.iterations;
  let trainSteps = 0;
  let decode = decodeSteps(cfg, s.evalSize, genBatch);
  for (let it = 1; it <= iterations; it++) {
    trainSteps += plannedStepsForIteration(s, it, cfg.trainBatch);
    decode += decodeSteps(cfg, s.evalSize, genBatch);
    if (s.mode !== 'direct') decode += decodeSteps(cfg, s.trainSize, genBatch);
    if (s.mode === 'star') decode += decodeSteps(cfg, Math.ceil(s.trainSize / 2), genBatch);
  }
  return { trainSteps, decodeSteps: decode };
}

/** This device's speed from a finished iteration (null when it trained or generated nothing). */
export function calibrateCsqa(cfg: CsqaRunConfig, model: ModelConfig, r: IterationRecord): Calibration | null {
  const genBatch = generationBatch(cfg, model);
  const ft = r.seconds.finetune ?? 0;
  const gen = (r.seconds.generate ?? 0) + (r.seconds.rationalize ?? 0) + (r.seconds.evaluate ?? 0);
  const retried = cfg.star.rationalize ? r.generated - r.correct : 0;
  const steps = [r.generated, retried, cfg.star.evalSize].reduce((a, n) => a + (n > 0 ? decodeSteps(cfg, n, genBatch) : 0), 0);
  if (r.trainSteps === 0 || ft <= 0 || gen <= 0 || steps === 0) return null;
  return { trainStep: ft / r.trainSteps, decodeStep: gen / steps };
}

export function estimateCsqa(cfg: CsqaRunConfig, sizes: CsqaSizes, limits: Limits | null, calib: Calibration | null): Estimate {
  const { model } = sizes;
  const lora = cfg.lora ?? undefined;
  let refusal: string | null = null;
  if (limits) {
    try {
      checkBindingLimit(model, limits.maxStorageBufferBindingSize, cfg.model);
    } catch (e) {
      refusal = (e as Error).message;
    }
  }
  let genBatch = cfg.genBatch;
  try {
    genBatch = generationBatch(cfg, model, limits);
  } catch (e) {
    refusal ??= `${cfg.model}: ${(e as Error).message} Generation may use ${formatBytes(GENERATOR_BUDGET)}; pick a smaller model.`;
  }
  const T = sizes.trainTokens === null ? null : Math.min(model.maxSeq, Math.ceil(sizes.trainTokens / BUCKET_T) * BUCKET_T);
  // The splits of the layout follow the binding limit; a model this GPU cannot bind is refused above, and
  // its sizes are then shown as they would be on a device with the default limit.
  const bound = <R>(f: (maxBindingBytes?: number) => R): R => {
    try {
      return f(limits?.maxStorageBufferBindingSize);
    } catch (e) {
      refusal ??= `${cfg.model}: ${(e as Error).message}`;
      return f(undefined);
    }
  };
  const full = bound((maxBindingBytes) => memoryReport(model, { B: cfg.trainBatch, T: T ?? 1, kvCache: generatorBytes(model, genBatch, model.maxSeq), lora, maxBindingBytes }));
  // Before the questions are read the activations are not known: the total is then a floor.
  const memory = T === null ? { ...full, activations: 0, total: full.total - full.activations } : full;
  const largestBuffer = T === null ? 0 : bound((maxBindingBytes) => largestActivation(model, cfg.trainBatch, T, lora, maxBindingBytes));
  const budget = Math.min(CSQA_MEMORY_BUDGET, limits ? 4 * limits.maxBufferSize : CSQA_MEMORY_BUDGET);
  const work = csqaWork(cfg, genBatch);
  const few = `${cfg.fewShot} few-shot exemplar${cfg.fewShot === 1 ? '' : 's'}`;

  if (refusal === null && sizes.promptTokens !== null) {
    const room = model.maxSeq - Math.ceil(sizes.promptTokens / PROMPT_BUCKET) * PROMPT_BUCKET + 1;
    if (room < cfg.maxNewTokens) {
      refusal = `The longest prompt (the question with ${few}) is ${sizes.promptTokens} tokens, which leaves room for ${Math.max(0, room)} of the ` +
        `${cfg.maxNewTokens} rationale tokens within the ${model.maxSeq}-token context. Use fewer few-shot exemplars.`;
    }
  }
  if (refusal === null && sizes.trainTokens !== null && sizes.trainTokens > model.maxSeq) {
    refusal = `The longest training example is ${sizes.trainTokens} tokens, more than the ${model.maxSeq}-token context. Train on the bare question (not under the few-shot prompt) or use fewer exemplars.`;
  }
  if (refusal === null && limits && largestBuffer > limits.maxStorageBufferBindingSize) {
    refusal = `Training ${cfg.trainBatch} sequences of ${T} tokens needs a ${formatBytes(largestBuffer)} buffer; this GPU binds at most ${formatBytes(limits.maxStorageBufferBindingSize)}. Lower the train batch.`;
  }
  if (refusal === null && memory.total > budget) {
    const what = lora ? 'A smaller model, a lower LoRA rank or a smaller train batch needs less.' : 'Fine-tune with LoRA (a rank above 0) instead of every parameter, or pick a smaller model.';
    refusal = `The run needs ${T === null ? 'at least ' : ''}${formatBytes(memory.total)} of GPU memory, more than the ${formatBytes(budget)} this app allows itself on this GPU. ${what}`;
  }
  const seconds = calib ? work.trainSteps * calib.trainStep + work.decodeSteps * calib.decodeStep : null;
  return { memory, budget, largestBuffer, trainSeq: T ?? 0, ...work, seconds, calibrated: calib !== null, refusal };
}
