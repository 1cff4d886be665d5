// Batched generation on the GPU: left-padded prefill, then one dispatch chain per decode step for the
// whole batch (KV cache, logits, sampling). Only sampled token ids come back, every `readEvery` steps,
// to stream text and apply stop rules; finished sequences are marked done on the GPU (they then emit
// padding) and are no longer read. The batch ends when every sequence has stopped.
//
// No work on finished rows (greedy decoding): when a read-back finds at most half the rows of the current
// batch still going, the live rows move to the front of the KV cache (through a scratch buffer: WebGPU
// copies never stay inside one buffer), of the history and of the flags, and decoding goes on with the
// decode plan of a batch half as large (or smaller), so 28 live rows of 256 cost like a batch of 32.
// Batches are not compacted below MIN_COMPACT_BATCH rows.
// Greedy picks depend on a row's logits alone, so moving rows changes no output; sampling with a
// temperature hashes the row index into its draw, so it keeps every row in place.

import { createBuffer, readF32, readU32, subView, upload, type View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import type { Dispatch } from '../gpu/kernel';
import { encode } from '../gpu/kernel';
import { type ModelConfig, validateTokens } from '../model/config';
import {
  createInferencePlan, createKvCache, inferenceActivationBytes, type InferencePlan, type KvCache, kvCacheBytes, kvRowBytes, maxBatchForBindings, uploadPositions,
} from '../model/inference';
import type { ParamBuffers } from '../model/params';
import { sample, type SampleArgs, type SamplingParams, setSampleStep } from '../ops/sampling';
import { submitCommands } from '../gpu/counters';

export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1, seed: 0 };

export interface GenerateOptions {
  maxNewTokens: number;
  sampling?: SamplingParams;
  eosId: number;
  padId: number;
  /** Sample only ids below this: the tokenizer's vocabulary, when the model's embedding is padded past it. Default: the model's vocab. */
  vocabSize?: number;
  /** Token ids to text; needed for stop strings and streaming. */
  decode?: (ids: number[]) => string;
  /** Stop after the first occurrence of any of these; the text keeps the stop string and nothing after it. */
  stopStrings?: string[];
  /** Where a text ends (the index just past it) or -1 while unfinished, for ends no stop string expresses. */
  stopAt?: (text: string) => number;
  /** Streaming: the text so far of sequence i, each time it grows, and once more when it is done. */
  onText?: (i: number, text: string, done: boolean) => void;
  /** Read sampled ids back every this many steps (default 4). */
  readEvery?: number;
  /** Move live rows together once half have finished (greedy decoding only; default true). See the header. */
  compact?: boolean;
  /** Tests only: receives each step's logits [B, V] (forces a readback per step). */
  debugLogits?: (step: number, logits: Float32Array) => void;
}

export type FinishReason = 'eos' | 'stop' | 'length';

export interface Generation {
  tokens: number[];
  text: string;
  finish: FinishReason;
}

export interface Generator {
  B: number;
  S: number;
  /** Rows decoded so far, summed over decode steps (a step of a batch of b rows counts b): what compaction saves. */
  stats: { decodeRows: number };
  /** Generates for up to B prompts (token ids, no padding). */
  generate(prompts: number[][], opts: GenerateOptions): Promise<Generation[]>;
}

/** The smaller batches a generator of batch B compacts into: halving, down to MIN_COMPACT_BATCH. */
export function compactSizes(B: number): number[] {
  const sizes: number[] = [];
  for (let b = Math.ceil(B / 2); b >= MIN_COMPACT_BATCH && b < B; b = Math.ceil(b / 2)) {
    sizes.push(b);
    if (b === MIN_COMPACT_BATCH) break;
  }
  return sizes;
}

/**
 * GPU bytes a generator of batch B and capacity S needs: the cache, the decode plan and one prefill plan of
 * length P, the decode plans of the compacted batches (together under one of batch B) and the scratch rows
 * a compaction moves a layer's keys or values through.
 */
export function generatorBytes(cfg: ModelConfig, B: number, S: number, maxPrompt = S): number {
  const scratch = (compactSizes(B)[0] ?? 0) * kvRowBytes(cfg, S);
  const compacted = compactSizes(B).reduce((n, b) => n + inferenceActivationBytes(cfg, b, 1), 0);
  return kvCacheBytes(cfg, B, S) + inferenceActivationBytes(cfg, B, 1) + inferenceActivationBytes(cfg, B, maxPrompt) + B * S * 4 + 2 * B * 4 + compacted + scratch;
}

/**
 * The largest batch, halving from `cap`, whose generator fits in `budgetBytes` and, given the device's
 * `maxBindingBytes`, whose every buffer fits one binding (the logits [B, V] and a layer's KV cache grow with B).
 */
export function chooseBatchSize(cfg: ModelConfig, S: number, budgetBytes: number, maxPrompt = S, cap = 256, maxBindingBytes?: number): number {
  const bindable = maxBindingBytes === undefined ? Infinity : maxBatchForBindings(cfg, S, maxPrompt, maxBindingBytes);
  const fits = (B: number) => generatorBytes(cfg, B, S, maxPrompt) <= budgetBytes && B <= bindable;
  let B = cap;
  while (B > 1 && !fits(B)) B >>= 1;
  if (!fits(B)) {
    throw new Error(
      bindable < 1
        ? `Generation with ${S} cache positions and prompts of ${maxPrompt} tokens needs a buffer larger than this GPU can bind at once (${maxBindingBytes} bytes) even at batch 1. Use shorter sequences or a smaller model.`
        : `Generation does not fit in ${budgetBytes} bytes even at batch 1 (needs ${generatorBytes(cfg, 1, S, maxPrompt)}).`,
    );
  }
  return B;
}

const BUCKET = 8;
const MAX_PREFILL_PLANS = 4;
/**
 * The smallest batch a generator compacts into: below it a decode step costs about the same whatever its rows
 * (measured on SwiftShader: a ragged batch of 64 gained nothing, one of 256 ran 1.4x faster; bench 'ragged').
 */
const MIN_COMPACT_BATCH = 32;

export function createGenerator(gpu: Gpu, cfg: ModelConfig, params: ParamBuffers, { B, S }: { B: number; S: number }): Generator {
  const cache = createKvCache(gpu, cfg, B, S);
  const start = createBuffer(gpu, B * 4, 'gen.start');
  const done = createBuffer(gpu, B * 4, 'gen.done');
  const history = createBuffer(gpu, B * S * 4, 'gen.history');
  const decodePlan = createInferencePlan(gpu, cfg, params, cache, 1, start);
  const rowBytes = kvRowBytes(cfg, S); // one sequence's keys (or values) in one layer
  // The first `rows` rows of the batch: the cache, flags and history of a compacted batch (row strides unchanged).
  const front = (rows: number) => ({
    cache: { B: rows, S, k: cache.k.map((v) => subView(v, 0, rows * rowBytes)), v: cache.v.map((v) => subView(v, 0, rows * rowBytes)) } as KvCache,
    start: subView(start, 0, rows * 4), done: subView(done, 0, rows * 4), history: subView(history, 0, rows * S * 4),
  });
  // Decode plans of the compacted batches and the scratch their moves go through, made on first use.
  const compactPlans = new Map<number, InferencePlan>();
  let scratch: View | null = null;
  const stats = { decodeRows: 0 };
  const decodePlanFor = (rows: number) => {
    if (rows === B) return decodePlan;
    let plan = compactPlans.get(rows);
    if (!plan) {
      const f = front(rows);
      plan = createInferencePlan(gpu, cfg, params, f.cache, 1, f.start);
      compactPlans.set(rows, plan);
    }
    return plan;
  };
  // Sampling reads a plan's logits and writes the decode plan's input tokens, so no ids travel via the CPU.
  const sampler = (plan: InferencePlan, target: InferencePlan, sampling: SamplingParams, eosId: number, padId: number, V: number) => {
    const f = front(target.B);
    const args: SampleArgs = { logits: plan.logits, out: target.tokens, history: f.history, done: f.done, B: target.B, V, stride: cfg.vocab, maxNew: S, eosId, padId, params: sampling };
    return { args, ds: sample(gpu, args) };
  };
  const prefills = new Map<number, InferencePlan>();
  const samplers = new Map<string, { args: SampleArgs; ds: Dispatch[] }>();
  const prefillPlan = (P: number) => {
    let plan = prefills.get(P);
    if (!plan) {
      if (prefills.size >= MAX_PREFILL_PLANS) prefills.delete(prefills.keys().next().value!);
      plan = createInferencePlan(gpu, cfg, params, cache, P, start);
      prefills.set(P, plan);
    }
    return plan;
  };
  const samplerFor = (plan: InferencePlan, target: InferencePlan, s: SamplingParams, eos: number, pad: number, V: number) => {
    const key = `${plan.Tq}:${plan.B}:${JSON.stringify(s)}:${eos}:${pad}:${V}`;
    let e = samplers.get(key);
    if (!e || e.args.logits !== plan.logits) {
      e = sampler(plan, target, s, eos, pad, V);
      samplers.set(key, e);
    }
    return e;
  };

  /** Moves rows `keep` (ascending) of every layer's keys and values to rows 0..keep.length-1. */
  const moveCacheRows = (keep: number[]) => {
    scratch ??= createBuffer(gpu, (compactSizes(B)[0] ?? 1) * rowBytes, 'gen.compactScratch');
    const enc = gpu.device.createCommandEncoder();
    for (const layer of [...cache.k, ...cache.v]) {
      keep.forEach((r, j) => enc.copyBufferToBuffer(layer.buffer, layer.offset + r * rowBytes, scratch!.buffer, scratch!.offset + j * rowBytes, rowBytes));
      enc.copyBufferToBuffer(scratch.buffer, scratch.offset, layer.buffer, layer.offset, keep.length * rowBytes);
    }
    submitCommands(gpu, enc);
  };

  async function generate(prompts: number[][], opts: GenerateOptions): Promise<Generation[]> {
    const n = prompts.length;
    if (n === 0) return [];
    if (n > B) throw new Error(`generate: ${n} prompts exceed this generator's batch of ${B}.`);
    const maxNew = opts.maxNewTokens;
    if (!Number.isInteger(maxNew) || maxNew < 1) throw new Error(`generate: maxNewTokens must be a positive integer, got ${maxNew}.`);
    prompts.forEach((p, i) => {
      if (p.length === 0) throw new Error(`generate: prompt ${i} is empty; it needs at least one token (e.g. BOS).`);
      if (p.length > S) throw new Error(`generate: prompt ${i} has ${p.length} tokens, more than the cache's ${S} (maxSeq ${cfg.maxSeq}).`);
      validateTokens(cfg, p, p.length);
    });
    const longest = Math.max(...prompts.map((p) => p.length));
    const P = Math.min(S, Math.ceil(longest / BUCKET) * BUCKET);
    if (P + maxNew - 1 > S) {
      throw new Error(`generate: a prompt of ${longest} tokens (padded to ${P}) plus ${maxNew} new tokens overflows the KV cache of ${S} positions. Lower maxNewTokens.`);
    }
    if ((opts.stopStrings?.length || opts.stopAt || opts.onText) && !opts.decode) throw new Error('generate: stop strings and streaming need a decode function.');
    const sampling = opts.sampling ?? GREEDY;
    const readEvery = Math.max(1, opts.readEvery ?? 4);
    const greedy = sampling.temperature === 0 || sampling.topK === 1;
    const compacting = greedy && opts.compact !== false;

    // Left-pad every prompt to P; rows past n are idle (done from the start).
    let startArr = new Uint32Array(B);
    const tokens = new Uint32Array(B * P).fill(opts.padId);
    let doneArr = new Uint32Array(B);
    for (let b = 0; b < B; b++) {
      const p = prompts[b];
      if (!p) {
        startArr[b] = P - 1;
        doneArr[b] = 1;
        continue;
      }
      startArr[b] = P - p.length;
      tokens.set(p, b * P + startArr[b]);
    }
    const pre = prefillPlan(P);
    upload(gpu, start, startArr);
    upload(gpu, done, doneArr);
    upload(gpu, pre.tokens, tokens);
    uploadPositions(gpu, pre, startArr, 0);
    const V = opts.vocabSize ?? cfg.vocab;
    if (!Number.isInteger(V) || V < 1 || V > cfg.vocab) throw new Error(`generate: vocabSize must be an integer in 1..${cfg.vocab} (the model's vocab), got ${V}.`);
    const preSample = samplerFor(pre, decodePlan, sampling, opts.eosId, opts.padId, V);
    // The batch being decoded: its plan, its sampler, and which prompt each of its rows holds (-1: none).
    let cur = { plan: decodePlan, sample: samplerFor(decodePlan, decodePlan, sampling, opts.eosId, opts.padId, V), prompt: Array.from({ length: B }, (_, b) => (b < n ? b : -1)) };

    const out: Generation[] = prompts.map(() => ({ tokens: [], text: '', finish: 'length' as FinishReason }));
    const finished = prompts.map(() => false);
    const submitStep = (step: number) => {
      const enc = gpu.device.createCommandEncoder();
      const s = step === 0 ? preSample : cur.sample;
      setSampleStep(gpu, s.ds, s.args, step);
      if (step === 0) pre.encode(enc, 0);
      else {
        uploadPositions(gpu, cur.plan, startArr, P + step - 1);
        cur.plan.encode(enc, P + step - 1);
        stats.decodeRows += cur.plan.B;
      }
      const pass = enc.beginComputePass();
      encode(pass, s.ds);
      pass.end();
      submitCommands(gpu, enc);
    };
    /** Keeps the live rows of the current batch, moved to the front of a smaller one (no step is in flight). */
    const compact = (live: number[], hist: Uint32Array, steps: number) => {
      const rows = compactSizes(B).filter((b) => b >= live.length).pop();
      if (rows === undefined || rows >= cur.plan.B) return;
      moveCacheRows(live);
      const plan = decodePlanFor(rows);
      const pick = (src: Uint32Array, fill: number) => Uint32Array.from({ length: rows }, (_, j) => (j < live.length ? src[live[j]] : fill));
      startArr = pick(startArr, P - 1);
      doneArr = pick(doneArr, 1);
      const histNew = new Uint32Array(rows * S);
      live.forEach((r, j) => histNew.set(hist.subarray(r * S, r * S + steps), j * S));
      const next = Uint32Array.from({ length: rows }, (_, j) => (j < live.length ? hist[live[j] * S + steps - 1] : opts.padId));
      const f = front(rows);
      upload(gpu, f.start, startArr);
      upload(gpu, f.done, doneArr);
      upload(gpu, f.history, histNew);
      upload(gpu, plan.tokens, next); // the last sampled id of each row: the next step's input
      cur = { plan, sample: samplerFor(plan, plan, sampling, opts.eosId, opts.padId, V), prompt: Array.from({ length: rows }, (_, j) => (j < live.length ? cur.prompt[live[j]] : -1)) };
    };
    const collect = async (steps: number) => {
      const f = front(cur.plan.B);
      const [hist, doneNow] = await Promise.all([readU32(gpu, f.history), readU32(gpu, f.done)]);
      const markDone: number[] = [];
      for (let r = 0; r < cur.plan.B; r++) {
        const i = cur.prompt[r];
        if (i < 0 || finished[i]) continue;
        const ids = Array.from(hist.subarray(r * S, r * S + steps));
        const eosAt = ids.indexOf(opts.eosId);
        const g = out[i];
        g.tokens = eosAt >= 0 ? ids.slice(0, eosAt) : ids;
        if (eosAt >= 0) {
          g.finish = 'eos';
          finished[i] = true;
        } else if (doneNow[r]) {
          finished[i] = true;
        }
        if (opts.decode) {
          g.text = opts.decode(g.tokens);
          const cut = firstStop(g.text, opts.stopStrings, opts.stopAt);
          if (cut >= 0) {
            g.finish = 'stop';
            finished[i] = true;
            g.text = g.text.slice(0, cut);
            // Keep the shortest token prefix that still contains the stop string.
            let k = 1;
            while (k < g.tokens.length && opts.decode(g.tokens.slice(0, k)).length < cut) k++;
            g.tokens = g.tokens.slice(0, k);
            markDone.push(r);
          }
        }
        if (!finished[i] && steps >= maxNew) finished[i] = true;
        opts.onText?.(i, g.text, finished[i]);
      }
      // No step is in flight here, so the GPU's flags (EOS included) are exactly doneNow.
      for (let b = 0; b < cur.plan.B; b++) doneArr[b] = doneNow[b];
      if (markDone.length) {
        for (const r of markDone) doneArr[r] = 1;
        upload(gpu, f.done, doneArr);
      }
      if (compacting && steps < maxNew) {
        const live = cur.prompt.flatMap((i, r) => (i >= 0 && !finished[i] ? [r] : []));
        if (live.length > 0 && live.length <= cur.plan.B / 2) compact(live, hist, steps);
      }
    };
    let step = 0;
    for (; step < maxNew; step++) {
      submitStep(step);
      if (opts.debugLogits) opts.debugLogits(step, await readF32(gpu, (step === 0 ? pre : cur.plan).logits));
      if ((step + 1) % readEvery === 0 || step + 1 === maxNew) {
        await collect(step + 1);
        if (finished.every(Boolean)) break;
      }
    }
    return out;
  }

  return { B, S, stats, generate };
}

function firstStop(text: string, stops: string[] | undefined, stopAt: ((text: string) => number) | undefined): number {
  let best = stopAt ? stopAt(text) : -1;
  for (const s of stops ?? []) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i + s.length < best)) best = i + s.length;
  }
  return best;
}

