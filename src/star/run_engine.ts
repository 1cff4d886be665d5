// The engine of an arithmetic run: our WebGPU engine with the run's model, batches and optimizer, the
// arithmetic tokenizer, the scratchpad's key tokens reported beside the loss, and batches of similar lengths
// (a 1-digit scratchpad is a third as long as a 3-digit one: bucketed, a fine-tune costs about two thirds).
// The CLI, the page's worker and the bench make it alike.

import type { Gpu } from '../gpu/device';
import { presetConfig } from '../model/config';
import { createGpuEngine, type GpuEngine } from './gpu_engine';
import type { RunConfig } from './run_config';
import { arithmeticKeyToken } from './tasks/arithmetic_task';
import { arithmeticTokenizer } from './tasks/char_tokenizer';

export function createRunEngine(gpu: Gpu, cfg: RunConfig): GpuEngine {
  return createGpuEngine(gpu, presetConfig(cfg.model), arithmeticTokenizer, {
    trainBatch: cfg.trainBatch, genBatch: cfg.genBatch, optim: cfg.optim, keyToken: arithmeticKeyToken, bucket: 32,
  });
}
