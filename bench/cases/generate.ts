// Generation throughput: batched greedy decoding through the product's generator (createGenerator:
// prefill, then one dispatch chain per token, ids read back every 4 steps). The EOS id is set past the
// vocabulary, so no row stops early and every call decodes exactly `steps` tokens per row.

import { countsNow, countsSince } from '../../src/gpu/counters';
import type { Gpu } from '../../src/gpu/device';
import { createGenerator, GREEDY } from '../../src/generate/generate';
import { presetConfig } from '../../src/model/config';
import { createParamBuffers, initParams, layoutParams, uploadParams } from '../../src/model/params';
import { rng } from '../../src/util/random';
import type { CaseResult } from '../report';
import { timeJob } from '../timing';

export interface GenerateShape {
  preset: string;
  /** Sequences decoded together. */
  B: number;
  /** New tokens per sequence. */
  steps: number;
  /** Prompt tokens per sequence (prefilled once, included in the time). */
  prompt: number;
}

export function generateName(s: GenerateShape): string {
  return `generate() ${s.preset} B${s.B}`;
}

export async function generateCase(gpu: Gpu, s: GenerateShape, repeats: number): Promise<CaseResult> {
  const cfg = presetConfig(s.preset);
  const params = createParamBuffers(gpu, layoutParams(cfg, gpu.limits.maxStorageBufferBindingSize), 'bench.params');
  uploadParams(gpu, params, initParams(cfg, 1));
  const gen = createGenerator(gpu, cfg, params, { B: s.B, S: cfg.maxSeq });
  const r = rng(2);
  const prompts = Array.from({ length: s.B }, () => Array.from({ length: s.prompt }, () => 3 + Math.floor(r() * (cfg.vocab - 3))));
  let produced = 0;
  const call = async (maxNewTokens: number) => {
    const out = await gen.generate(prompts, { maxNewTokens, sampling: GREEDY, eosId: cfg.vocab, padId: 0 });
    produced = out.reduce((a, g) => a + g.tokens.length, 0);
  };
  await call(Math.min(2, s.steps)); // warmup: compiles the prefill and the decode step, at a fraction of a call
  const t = await timeJob(() => call(s.steps), { warmup: 0, repeats });
  if (produced !== s.B * s.steps) throw new Error(`${generateName(s)}: decoded ${produced} tokens, expected ${s.B * s.steps}`);
  const perStep = await askedPerStep(call, cfg.nLayers);
  for (const seg of params.segments) seg.buffer.destroy();
  return {
    name: generateName(s), group: 'generate', value: produced / t.median, unit: 'tokens/s', seconds: t.median,
    params: { preset: s.preset, B: s.B, steps: s.steps, prompt: s.prompt, sampling: 'greedy', repeats, ...perStep },
    note: `per call: prefill of ${s.prompt} prompt tokens + ${s.steps} decode steps, ids read back every 4 steps; per decode step (B tokens): ${perStep.dispatchesPerStep} dispatches (${perStep.dispatchesPerLayer} per layer, the LM head and sampling included), ${perStep.submitsPerStep} command buffers (readback copies included), ${perStep.readbacksPerStep} readbacks`,
  };
}

/**
 * What one decode step asks of the GPU (dispatches, command buffers, readbacks), from the difference between a
 * call of 12 steps and one of 4: the prefill and the call's fixed costs cancel. Per layer: dispatches / nLayers.
 */
async function askedPerStep(call: (steps: number) => Promise<void>, nLayers: number) {
  const count = async (steps: number) => {
    const before = countsNow();
    await call(steps);
    return countsSince(before);
  };
  const [short, long] = [await count(4), await count(12)];
  const per = (k: 'dispatches' | 'submits' | 'readbacks') => (long[k] - short[k]) / 8;
  return {
    dispatchesPerStep: per('dispatches'),
    dispatchesPerLayer: Math.round((per('dispatches') / nLayers) * 100) / 100,
    submitsPerStep: per('submits'),
    readbacksPerStep: per('readbacks'),
  };
}
