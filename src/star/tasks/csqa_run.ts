// A CommonsenseQA run as data (the model, where the questions come from, the loop's settings) and its
// preparation: questions, the pretrained base model and its tokenizer, loaded and checked before any
// GPU work starts. The CLI (`npm run star -- --task csqa --model <repo id or folder>`) turns every error
// of prepareCsqaRun into exit code 2, then hands the result to runStar.
//
// The base model is pretrained, so the loop's seed phase stores the loaded weights as "base" and every
// iteration fine-tunes from them (the task has no seedExamples).

import type { Gpu } from '../../gpu/device';
import { type HubModel, type HubProgress, loadHubModel } from '../../hub/load';
import { DEFAULT_LORA, LORA_TARGETS, type LoraConfig, type LoraTarget } from '../../model/lora';
import { DEFAULT_HUB_MODEL, HUB_PRESETS } from '../../hub/presets';
import { uploadParams } from '../../model/params';
import { DEFAULT_OPTIM, type OptimConfig } from '../../train/config';
import { rng, shuffle } from '../../util/random';
import { STAR_PRESETS, type StarConfig, validateStarConfig, withMode } from '../config';
import { createGpuEngine, type GpuEngine } from '../gpu_engine';
import type { Mode } from '../types';
import type { CsqaProblem } from './csqa';
import { checkHeldOut, CSQA_HUB_REPO, type CsqaHubOptions, loadCsqaFromHub, parseCsqaJsonl } from './csqa_data';

export interface CsqaRunConfig {
  task: 'csqa';
  /** A Hub repo id, a preset name (src/hub/presets.ts) or a model folder. */
  model: string;
  /** A JSONL file in the official format, or "hub" for tau/commonsense_qa (train; eval from validation). */
  data: string;
  /** Held-out questions: a JSONL file, or "" to hold out evalSize questions of `data` (disjoint from training). */
  evalData: string;
  /** Exemplars before each question while sampling (0..7). */
  fewShot: number;
  /** Keep the few-shot prefix in training prompts too (false: STaR fine-tunes on the bare question). */
  fewShotInTraining: boolean;
  /** Fine-tune LoRA adapters on the frozen base (fresh adapters every iteration); null: full fine-tuning. */
  lora: LoraConfig | null;
  /** Rationale token budget. */
  maxNewTokens: number;
  /** Cap on the model's context (prompt + rationale), which sizes the KV cache. */
  maxSeq: number;
  star: StarConfig;
  optim: OptimConfig;
  trainBatch: number;
  genBatch: number;
}

const BASE: Omit<CsqaRunConfig, 'model' | 'data' | 'evalData'> = {
  task: 'csqa',
  fewShot: 7,
  fewShotInTraining: false,
  lora: DEFAULT_LORA, // a laptop's memory: only the adapters have gradients and AdamW moments
  maxNewTokens: 96,
  maxSeq: 1024,
  // Unused by this task (its base model is pretrained): seedSize/seedSteps and the digit ranges.
  star: {
    ...STAR_PRESETS.quick, iterations: 4, patience: 2, trainSize: 256, poolSize: 2000, evalSize: 200,
    temperature: 0, steps: { kind: 'multiply', start: 40, factor: 1.2 },
  },
  optim: { ...DEFAULT_OPTIM, lr: 1e-5, warmupSteps: 10, weightDecay: 0 },
  trainBatch: 4,
  genBatch: 16,
};

export const CSQA_RUN_PRESETS = {
  /** A handful of questions, one iteration: a check of the machinery on any device. */
  micro: {
    ...BASE, fewShot: 0, maxNewTokens: 16, maxSeq: 256, trainBatch: 2, genBatch: 4, lora: null,
    star: { ...BASE.star, iterations: 1, patience: 0, trainSize: 2, poolSize: 4, evalSize: 2, steps: { kind: 'add', start: 2, increment: 0 } },
  },
  /** A first learning curve on a GPU: 256 questions per iteration, 200 held out. */
  quick: BASE,
} satisfies Record<string, Omit<CsqaRunConfig, 'model' | 'data' | 'evalData'>>;

export function csqaRunConfig(
  preset: string,
  o: {
    model?: string; data?: string; evalData?: string; mode?: Mode; iterations?: number; patience?: number; seed?: number;
    /** LoRA rank (0: full fine-tuning) and targets; the alpha keeps the preset's alpha/rank ratio. */
    loraRank?: number; loraTargets?: string[]; fewShotInTraining?: boolean;
  } = {},
): CsqaRunConfig {
  if (!Object.hasOwn(CSQA_RUN_PRESETS, preset)) {
    throw new Error(`Unknown preset "${preset}" for --task csqa. Known presets: ${Object.keys(CSQA_RUN_PRESETS).join(', ')}.`);
  }
  const base = structuredClone(CSQA_RUN_PRESETS[preset as keyof typeof CSQA_RUN_PRESETS]) as Omit<CsqaRunConfig, 'model' | 'data' | 'evalData'>;
  let star = o.mode ? withMode(base.star, o.mode) : base.star;
  if (o.iterations !== undefined) star = { ...star, iterations: o.iterations };
  if (o.patience !== undefined) star = { ...star, patience: o.patience };
  if (o.seed !== undefined) star = { ...star, seed: o.seed };
  validateStarConfig(star);
  if (!(base.fewShot >= 0 && base.fewShot <= 7)) throw new Error(`fewShot must be 0..7, got ${base.fewShot}.`);
  const lora = loraOverride(base.lora, o.loraRank, o.loraTargets);
  return {
    ...base, star, lora, fewShotInTraining: o.fewShotInTraining ?? base.fewShotInTraining,
    model: o.model ?? HUB_PRESETS[DEFAULT_HUB_MODEL].repo, data: o.data ?? 'hub', evalData: o.evalData ?? '',
  };
}

/** The preset's LoRA with a new rank (0: none) and/or targets; alpha scales with the rank (alpha/rank is kept). */
function loraOverride(preset: LoraConfig | null, rank?: number, targets?: string[]): LoraConfig | null {
  if (rank === 0) {
    if (targets) throw new Error('LoRA targets were given with rank 0 (full fine-tuning); drop one of them.');
    return null;
  }
  if (rank === undefined && targets === undefined) return preset;
  const from = preset ?? DEFAULT_LORA;
  if (rank !== undefined && !(Number.isInteger(rank) && rank > 0)) throw new Error(`LoRA rank must be a positive integer (0: full fine-tuning), got ${rank}.`);
  const bad = targets?.find((t) => !LORA_TARGETS.includes(t as LoraTarget));
  if (bad !== undefined) throw new Error(`Unknown LoRA target "${bad}". Targets: ${LORA_TARGETS.join(', ')}.`);
  if (targets && targets.length === 0) throw new Error('LoRA needs at least one target.');
  const r = rank ?? from.rank;
  return { ...from, rank: r, alpha: (from.alpha / from.rank) * r, targets: (targets as LoraTarget[] | undefined) ?? from.targets };
}

/**
 * A seeded split of `problems` into `evalSize` held-out questions and the rest. A question the file holds
 * twice (under two ids) could land on both sides: that is refused (checkHeldOut), naming both ids.
 */
export function holdOut(problems: CsqaProblem[], evalSize: number, seed: number, fileName = 'the questions file'): { train: CsqaProblem[]; eval: CsqaProblem[] } {
  if (problems.length <= evalSize) {
    throw new Error(`${problems.length} questions cannot be split into ${evalSize} held out plus a training pool; pass an eval file.`);
  }
  const order = shuffle(problems.slice(), rng(seed));
  const split = { eval: order.slice(0, evalSize), train: order.slice(evalSize) };
  checkHeldOut(split.train, split.eval, { train: `the rest of ${fileName}`, eval: `the ${evalSize === 1 ? 'question' : `${evalSize} questions`} held out of ${fileName}` });
  return split;
}

export interface CsqaRunInputs {
  train: CsqaProblem[];
  eval: CsqaProblem[];
  model: HubModel;
}

export interface PrepareOptions extends Omit<CsqaHubOptions, 'onProgress'> {
  /** Reads a data file (Node: fs). */
  readText(path: string): Promise<string>;
  /** The device's binding limit (models with a larger tensor are refused before their weights load). */
  maxBindingBytes?: number;
  onProgress?(e: HubProgress): void;
}

/** Loads and checks everything a run needs; every error here is bad input (a file, a repo, a model). */
export async function prepareCsqaRun(cfg: CsqaRunConfig, opts: PrepareOptions): Promise<CsqaRunInputs> {
  const fromFile = async (path: string) => parseCsqaJsonl(await opts.readText(path), path);
  const hub = { ...opts, onProgress: (p: Parameters<NonNullable<CsqaHubOptions['onProgress']>>[0]) => opts.onProgress?.({ kind: 'file', ...p }) };
  let train: CsqaProblem[];
  let evalSet: CsqaProblem[];
  if (cfg.data === 'hub') {
    train = await loadCsqaFromHub('train', hub);
    evalSet = cfg.evalData ? await fromFile(cfg.evalData) : await loadCsqaFromHub('validation', hub);
  } else {
    const all = await fromFile(cfg.data);
    ({ train, eval: evalSet } = cfg.evalData ? { train: all, eval: await fromFile(cfg.evalData) } : holdOut(all, cfg.star.evalSize, cfg.star.evalSeed, cfg.data));
  }
  if (cfg.data === 'hub' || cfg.evalData) {
    const name = (data: string, split: string) => (data === 'hub' || data === '' ? `${CSQA_HUB_REPO} (${split})` : data);
    checkHeldOut(train, evalSet, { train: name(cfg.data, 'train'), eval: name(cfg.evalData, 'validation') });
  }
  const model = await loadHubModel(cfg.model, {
    fetch: opts.fetch, cache: opts.cache ?? undefined, maxBindingBytes: opts.maxBindingBytes, maxSeq: cfg.maxSeq, onProgress: opts.onProgress,
  });
  return { train, eval: evalSet, model };
}

/** The run's engine (the CLI's and the web worker's): the loaded model as the base, LoRA adapters per cfg.lora. */
export function createCsqaEngine(gpu: Gpu, cfg: CsqaRunConfig, model: HubModel): GpuEngine {
  const engine = createGpuEngine(gpu, model.cfg, model.tokenizer, {
    trainBatch: cfg.trainBatch, genBatch: cfg.genBatch, optim: cfg.optim, lora: cfg.lora ?? undefined,
  });
  uploadParams(gpu, engine.params, model.tensors);
  return engine;
}
