// Host side of shaders/sampling.wgsl: one token id per row of logits, drawn on the GPU (greedy, temperature,
// top-k, top-p), with per-row done flags, eos detection and an optional history of every step's ids.
import code from '../../shaders/sampling.wgsl?raw';
import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, grid1d, makeDispatch, setUniforms, type UniformField } from '../gpu/kernel';
import { greedyPerRow, ROW_THREADS } from './profile';
import { checkDims, checkLen } from './shapes';

const shader = { name: 'sampling', code };

export interface SamplingParams {
  temperature: number; // 0 = greedy (argmax; ties -> lowest id)
  topK: number; // 0 = off; 1 = greedy
  topP: number; // 1 = off; keep the smallest set of most likely tokens whose probability mass >= topP
  seed: number; // u32; the same seed, step and row give the same draw
}

export interface SampleArgs {
  logits: View; // [B, stride] f32 (rows of the last position of each sequence)
  out: View; // [B] u32: the chosen token id per row (written)
  history?: View; // optional [B, maxNew] u32: out is also written at history[b*maxNew + step]
  done: View; // [B] u32: 1 = the sequence has finished; its row then outputs `padId` and is not sampled
  B: number;
  V: number; // candidate ids are 0..V-1 (the tokenizer's vocabulary)
  stride?: number; // row length of logits, >= V (the model's vocabulary, which may be padded past V); default V
  maxNew?: number;
  eosId: number; // when a row samples eosId, set done[b] = 1 (the eos token itself is still output this step)
  padId: number;
  params: SamplingParams;
}

/** The mode each dispatch from sample() was compiled for. */
const modes = new WeakMap<Dispatch, string>();

function isU32(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}

function checkParams({ temperature, topK, topP, seed }: SamplingParams): void {
  if (!Number.isFinite(temperature) || temperature < 0) {
    throw new Error(`sample: temperature must be a finite number >= 0 (0 = greedy), got ${temperature}`);
  }
  if (!isU32(topK)) throw new Error(`sample: topK must be an integer >= 0 (0 = off), got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`sample: topP must be in (0, 1] (1 = off), got ${topP}`);
  if (!isU32(seed)) throw new Error(`sample: seed must be a u32 integer, got ${seed}`);
}

function check(args: SampleArgs): void {
  const { logits, out, history, done, B, V, maxNew, eosId, padId, params } = args;
  checkDims('sample', { B, V });
  checkParams(params);
  if (!isU32(eosId) || !isU32(padId)) throw new Error(`sample: eosId and padId must be u32 integers, got ${eosId}, ${padId}`);
  const stride = args.stride ?? V;
  if (!Number.isInteger(stride) || stride < V) throw new Error(`sample: stride (the logits row length) must be an integer >= V = ${V}, got ${stride}`);
  checkLen('sample', { logits }, B * stride);
  checkLen('sample', { out, done }, B);
  if (history) {
    if (maxNew === undefined) throw new Error('sample: a history view needs maxNew (its row length)');
    checkDims('sample', { maxNew });
    checkLen('sample', { history }, B * maxNew);
  }
}

/**
 * The pipeline's mode constants. Each mode compiles to its own pipeline holding only the code it runs
 * (the shader's overrides), so the params may change between steps only within one mode.
 */
function modeOf(params: SamplingParams, V: number): Record<string, number> {
  const greedy = params.temperature === 0 || params.topK === 1;
  return {
    // Threads per row: G * G. Rows narrower than 2048 columns get 64 threads (at most 32 columns each);
    // more would mostly idle through the same barriers.
    G: V >= 2048 ? 16 : 8,
    GREEDY: greedy ? 1 : 0,
    TOP_K: !greedy && params.topK > 1 && params.topK < V ? 1 : 0,
    TOP_P: !greedy && Math.fround(params.topP) < 1 ? 1 : 0, // the shader sees topP as an f32
  };
}

/** The uniforms, in the order of the shader's Params struct. */
function fields(args: SampleArgs, step: number): UniformField[] {
  const { B, V, history, maxNew, eosId, padId, params } = args;
  return [B, V, history ? maxNew! : 0, step, eosId, padId, { f32: params.temperature }, params.topK, { f32: params.topP }, params.seed, args.stride ?? V];
}

function checkStep(args: SampleArgs, step: number): void {
  if (!isU32(step)) throw new Error(`sample: step must be a u32 integer, got ${step}`);
  if (args.history && step >= args.maxNew!) throw new Error(`sample: step ${step} is outside the history (maxNew ${args.maxNew})`);
}

/**
 * One token per row (one workgroup each), for decode step 0; call setSampleStep before each later step.
 * Reads logits and done, writes out, done (eos) and history. Greedy when temperature is 0 or topK is 1.
 */
export function sample(gpu: Gpu, args: SampleArgs): Dispatch[] {
  check(args);
  const { logits, out, history, done, B, V, params } = args;
  const buffers: Record<number, View> = { 1: logits, 2: out, 3: done };
  if (history) buffers[4] = history;
  const constants = modeOf(params, V);
  const rowGreedy = greedyPerRow(gpu, constants.GREEDY === 1); // see ./profile.ts
  const d = makeDispatch(gpu, {
    label: history ? 'sampling.history' : 'sampling',
    shader,
    ...(rowGreedy
      ? { entry: history ? 'greedy_history_row' : 'greedy_row', workgroups: grid1d(gpu, B, ROW_THREADS) }
      : { entry: history ? 'main_history' : 'main', constants, workgroups: grid1d(gpu, B, 1) }),
    uniforms: fields(args, 0),
    buffers,
  });
  modes.set(d, JSON.stringify(constants));
  return [d];
}

/**
 * Rewrites the decode step (RNG stream and history column) of dispatches from `sample` with the same args,
 * without allocating GPU memory. The params are repacked too, so the seed, temperature, topK and topP may
 * change here as long as the mode stays (greedy or not, top-k on or off, top-p on or off); the views and
 * shapes may not (they are baked into the bind group).
 */
export function setSampleStep(gpu: Gpu, dispatches: Dispatch[], args: SampleArgs, step: number): void {
  checkParams(args.params);
  checkStep(args, step);
  const d = dispatches[0];
  if (dispatches.length !== 1 || !modes.has(d)) throw new Error('setSampleStep: pass the dispatches returned by sample()');
  if (JSON.stringify(modeOf(args.params, args.V)) !== modes.get(d)) {
    throw new Error('setSampleStep: the params changed mode (greedy, top-k or top-p on/off); call sample() again');
  }
  setUniforms(gpu, d, fields(args, step));
}
