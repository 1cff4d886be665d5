// Decode throughput: the steady-state decode step of the generator, batched, without prefill or
// readbacks. One step is exactly what createGenerator submits per token after the prefill (src/generate/
// generate.ts): new RoPE positions, the Tq = 1 inference plan at the write position (KV-cache append,
// attention over the cache, logits), then greedy sampling on the GPU feeding the next step's tokens.
// Steps run from position `from` on (the cache holding `from` earlier positions, as after a prompt of
// that length), so attention reads a realistic context. tokens/s = B * steps / time.

import { createBuffer, upload } from '../../src/gpu/buffers';
import type { Gpu } from '../../src/gpu/device';
import { type Dispatch, encode } from '../../src/gpu/kernel';
import { GREEDY } from '../../src/generate/generate';
import { presetConfig } from '../../src/model/config';
import { createInferencePlan, createKvCache, uploadPositions } from '../../src/model/inference';
import { createParamBuffers, initParams, layoutParams, uploadParams } from '../../src/model/params';
import { sample, setSampleStep } from '../../src/ops/sampling';
import type { CaseResult } from '../report';
import { timeIt } from '../timing';
import { submitCommands } from '../../src/gpu/counters';

export interface DecodeShape {
  preset: string;
  /** Sequences decoded together. */
  B: number;
  /** Decode steps per timed repeat. */
  steps: number;
  /** Position of the first timed step (the context already in the cache). */
  from: number;
}

export function decodeName(s: DecodeShape): string {
  return `decode step ${s.preset} B${s.B}`;
}

/**
 * One decode step as the generator runs it, on random weights of `preset` at batch B: step(pos) sets the
 * sampling step and RoPE positions, then encodes the Tq = 1 plan at write position pos and greedy sampling
 * in one command buffer. EOS lies past the vocabulary, so no row ever finishes: every step decodes all B
 * rows. Also used by bench/profile.ts, which times `dispatches` one by one.
 */
export function decodeRig(gpu: Gpu, preset: string, B: number): { S: number; step(pos: number): void; dispatches: readonly Dispatch[]; destroy(): void } {
  const cfg = presetConfig(preset);
  const S = cfg.maxSeq;
  const params = createParamBuffers(gpu, layoutParams(cfg, gpu.limits.maxStorageBufferBindingSize), 'bench.params');
  uploadParams(gpu, params, initParams(cfg, 1));
  const cache = createKvCache(gpu, cfg, B, S);
  const start = createBuffer(gpu, B * 4, 'bench.start'); // every sequence starts at position 0
  const done = createBuffer(gpu, B * 4, 'bench.done');
  const history = createBuffer(gpu, B * S * 4, 'bench.history');
  const plan = createInferencePlan(gpu, cfg, params, cache, 1, start);
  upload(gpu, plan.tokens, new Uint32Array(B).fill(3));
  const args = { logits: plan.logits, out: plan.tokens, history, done, B, V: cfg.vocab, maxNew: S, eosId: cfg.vocab, padId: 0, params: GREEDY };
  const samp = sample(gpu, args);
  const starts = new Uint32Array(B);
  return {
    S,
    step(pos) {
      const enc = gpu.device.createCommandEncoder();
      setSampleStep(gpu, samp, args, pos);
      uploadPositions(gpu, plan, starts, pos);
      plan.encode(enc, pos);
      const pass = enc.beginComputePass();
      encode(pass, samp);
      pass.end();
      submitCommands(gpu, enc);
    },
    dispatches: [...plan.dispatches, ...samp],
    destroy() {
      for (const v of [...cache.k, ...cache.v, start, done, history, ...params.segments]) v.buffer.destroy();
    },
  };
}

export async function decodeCase(gpu: Gpu, s: DecodeShape, repeats: number): Promise<CaseResult> {
  const rig = decodeRig(gpu, s.preset, s.B);
  if (s.from + 1 + repeats * s.steps > rig.S) {
    rig.destroy();
    throw new Error(`${decodeName(s)}: ${s.from} + ${1 + repeats * s.steps} steps overflow the cache of ${rig.S}`);
  }
  let pos = s.from;
  // Warmup: one step (compiles everything); then `repeats` timed blocks of `steps` steps.
  const t = await timeIt(() => rig.step(pos++), () => gpu.device.queue.onSubmittedWorkDone(), { warmup: 1, iters: s.steps, repeats });
  rig.destroy();
  const layers = presetConfig(s.preset).nLayers;
  const dispatchesPerStep = rig.dispatches.length;
  return {
    name: decodeName(s), group: 'generate', value: s.B / t.median, unit: 'tokens/s', seconds: t.median,
    params: { preset: s.preset, B: s.B, steps: s.steps, from: s.from, sampling: 'greedy', repeats, dispatchesPerStep, dispatchesPerLayer: Math.round((dispatchesPerStep / layers) * 100) / 100 },
    note: 'steady-state decode steps (KV cache + logits + greedy sampling), no prefill, no readback; seconds are per step',
  };
}
