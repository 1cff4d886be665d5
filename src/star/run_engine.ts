// The engine of an arithmetic run: our WebGPU engine with the run's model, batches and optimizer, the
// arithmetic tokenizer, and the scratchpad's key tokens reported beside the loss. The CLI, the page's
// worker and the bench make it alike.

import type { Gpu } from '../gpu/device';
import { presetConfig } from '../model/config';
import { createGpuEngine, type GpuEngine } from './gpu_engine';
import type { RunConfig } from './run_config';
import { arithmeticKeyToken } from './tasks/arithmetic_task';
import { arithmeticTokenizer } from './tasks/char_tokenizer';

export function createRunEngine(gpu: Gpu, cfg: RunConfig): GpuEngine {
  return createGpuEngine(gpu, presetConfig(cfg.model), arithmeticTokenizer, {
    trainBatch: cfg.trainBatch, genBatch: cfg.genBatch, optim: cfg.optim, keyToken: arithmeticKeyToken,
  });
}
