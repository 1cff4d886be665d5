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

/** A generator of the shape's batch over random weights of its preset, and B random prompts of its length. */
function randomGenerator(gpu: Gpu, s: GenerateShape, promptSeed: number) {
  const cfg = presetConfig(s.preset);
  const params = createParamBuffers(gpu, layoutParams(cfg, gpu.limits.maxStorageBufferBindingSize), 'bench.params');
  uploadParams(gpu, params, initParams(cfg, 1));
  const gen = createGenerator(gpu, cfg, params, { B: s.B, S: cfg.maxSeq });
  const r = rng(promptSeed);
  const prompts = Array.from({ length: s.B }, () => Array.from({ length: s.prompt }, () => 3 + Math.floor(r() * (cfg.vocab - 3))));
  return { cfg, params, gen, prompts };
}

export async function generateCase(gpu: Gpu, s: GenerateShape, repeats: number): Promise<CaseResult> {
  const { cfg, params, gen, prompts } = randomGenerator(gpu, s, 2);
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

/**
 * Ragged batches: rows that stop at different steps (each at the first prefix of its text whose hash is 0 mod
 * 4, so about a quarter of the rows stop at each step: most early, a few late, as 1-digit sums end long before
 * 5-digit ones). The same greedy generate() calls with finished rows compacted away and kept in place, timed
 * alternately in one run; the value is the speedup, with the rows each decoded.
 */
export async function raggedCase(gpu: Gpu, s: GenerateShape, repeats: number): Promise<CaseResult> {
  const { cfg, params, gen, prompts } = randomGenerator(gpu, s, 3);
  const decode = (ids: number[]) => ids.map((t) => String.fromCharCode(0x100 + t)).join('');
  const hash = (t: string) => [...t].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 1_000_003, 7);
  const stopAt = (t: string) => {
    for (let k = 2; k <= t.length; k++) if (hash(t.slice(0, k)) % 4 === 0) return k;
    return -1;
  };
  const run = async (compact: boolean) => {
    const rows0 = gen.stats.decodeRows;
    const t0 = performance.now();
    const out = await gen.generate(prompts, { maxNewTokens: s.steps, sampling: GREEDY, eosId: cfg.vocab, padId: 0, decode, stopAt, compact });
    return { seconds: (performance.now() - t0) / 1000, rows: gen.stats.decodeRows - rows0, text: out.map((g) => g.text) };
  };
  await run(true); // warmup: compiles the prefill, the decode steps and the compacted plans
  await run(false);
  const on: number[] = [];
  const off: number[] = [];
  let rows = { on: 0, off: 0 };
  for (let i = 0; i < repeats; i++) {
    const a = await run(true);
    const b = await run(false);
    if (JSON.stringify(a.text) !== JSON.stringify(b.text)) throw new Error(`${s.preset} B${s.B}: compaction changed the generated text`);
    on.push(a.seconds);
    off.push(b.seconds);
    rows = { on: a.rows, off: b.rows };
  }
  for (const seg of params.segments) seg.buffer.destroy();
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const [tOn, tOff] = [median(on), median(off)];
  return {
    name: `generate() ragged ${s.preset} B${s.B}, compacted vs not`, group: 'generate', value: tOff / tOn, unit: 'x', seconds: tOn,
    params: { preset: s.preset, B: s.B, maxNew: s.steps, prompt: s.prompt, repeats, secondsCompacted: tOn, secondsInPlace: tOff, rowsCompacted: rows.on, rowsInPlace: rows.off },
    note: `rows that stop at different steps (most early); finished rows moved out of the batch (${rows.on} rows decoded) against kept in place (${rows.off}), the same text; value = time in place / time compacted`,
  };
}
