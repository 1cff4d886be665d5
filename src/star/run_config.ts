// A whole run as data: the task, the model preset, the STaR loop's settings, the optimizer and the
// batch sizes. Named presets go from a test-sized run to a paper-like one.

import { presetConfig } from '../model/config';
import { DEFAULT_OPTIM, type OptimConfig } from '../train/config';
import { DEFAULT_STAR_CONFIG, STAR_PRESETS, type StarConfig, validateStarConfig, withMode } from './config';
import { SHIPPED_BASES, type ShippedBaseRef } from './shipped';
import type { Mode } from './types';

export interface RunConfig {
  /** Which task: 'arithmetic' (n-digit addition with a scratchpad). */
  task: 'arithmetic';
  /** Model preset (src/model/config.ts PRESETS). */
  model: string;
  /**
   * Where the base model comes from: a shipped one (src/star/shipped.ts: trained to mastery ahead of time, so the
   * run starts at iteration 1), or 'scratch': the seed phase trains it from random weights on the seed set.
   */
  base: 'scratch' | ShippedBaseRef;
  /** The STaR loop: mode, iterations, sizes, digit ranges, step schedule, seeds. */
  star: StarConfig;
  /** AdamW and LR schedule of every fine-tune. */
  optim: OptimConfig;
  /** Sequences per training step. */
  trainBatch: number;
  /** Sequences decoded together. */
  genBatch: number;
}

/**
 * What made the loop bootstrap (docs/results.md): rationales checked step by step, hint replay in every
 * fine-tune, an accumulated kept set with fine-tunes that follow its size, and a base model trained to mastery
 * on single digits that follows hints on longer sums.
 */
const BOOTSTRAP = {
  filter: 'rationale', hintReplay: true, accumulate: true, sampling: 'uniform',
  steps: { kind: 'epochs', epochs: 8, min: 400, max: 4000 },
  seedMinDigits: 1, seedMaxDigits: 1, seedTarget: 0.99, seedHintTarget: 0.95, seedCheckEvery: 500, seedCheckSize: 100,
} satisfies Partial<StarConfig>;

export const RUN_PRESETS = {
  /** Two iterations of a few thousand parameters: a test of the machinery, on any device. */
  micro: {
    task: 'arithmetic',
    base: 'scratch',
    model: 'micro',
    star: { ...STAR_PRESETS.micro, iterations: 2, maxDigits: 2, seedMaxDigits: 2 },
    optim: { ...DEFAULT_OPTIM, lr: 3e-3, warmupSteps: 2 },
    trainBatch: 8,
    genBatch: 16,
  },
  /**
   * The page's default: STaR teaches a 76k-parameter model 2- and 3-digit addition. Its base model (shipped, or
   * trained from scratch in the seed phase) adds single digits and, shown the answer as a hint, writes the
   * scratchpad of longer sums, but cannot add them unaided; rationalization turns that into training data, and
   * every fine-tune also replays the hinted versions so the skill survives (docs/results.md).
   */
  demo: {
    task: 'arithmetic',
    base: presetBase('demo'),
    model: 'arithmetic-tiny',
    star: {
      ...DEFAULT_STAR_CONFIG, ...BOOTSTRAP, iterations: 4, patience: 0, trainSize: 600, poolSize: 20_000, evalSize: 180,
      minDigits: 1, maxDigits: 3, seedSize: 1000, seedHinted: 2000, seedHintMaxDigits: 3, seedSteps: 12_000,
      // Four iterations of at most 1,200 steps: the whole run fits half an hour on a 2-core CPU (SwiftShader).
      steps: { kind: 'epochs', epochs: 8, min: 400, max: 1200 },
    },
    optim: { ...DEFAULT_OPTIM, lr: 2e-3, warmupSteps: 20 },
    trainBatch: 16,
    genBatch: 256,
  },
  /**
   * The paper's digit range, 1-5, on the 150k-parameter model (256 positions hold a hinted five-digit
   * scratchpad). Its shipped base adds single digits and follows hints at every length up to five digits; the
   * demo's recipe, with fine-tunes long enough for the longer sums to click.
   */
  five: {
    task: 'arithmetic',
    base: presetBase('five'),
    model: 'arithmetic-small',
    star: {
      ...DEFAULT_STAR_CONFIG, ...BOOTSTRAP, iterations: 8, patience: 3, trainSize: 1000, poolSize: 40_000, evalSize: 300,
      minDigits: 1, maxDigits: 5, seedSize: 1000, seedHinted: 4000, seedHintMaxDigits: 5, seedSteps: 20_000,
      steps: { kind: 'epochs', epochs: 8, min: 400, max: 3000 },
    },
    optim: { ...DEFAULT_OPTIM, lr: 2e-3, warmupSteps: 20 },
    trainBatch: 16,
    genBatch: 256,
  },
  /**
   * The paper's shape: 1-5 digits, 10,000 problems per iteration, 16 iterations, on the 0.8M-parameter model,
   * with the demo's recipe (not measured yet: it needs a GPU's hours).
   */
  'paper-like': {
    task: 'arithmetic',
    base: 'scratch',
    model: 'arithmetic',
    star: {
      ...DEFAULT_STAR_CONFIG, ...BOOTSTRAP, iterations: 16, patience: 4, trainSize: 10_000, poolSize: 200_000, evalSize: 1000,
      minDigits: 1, maxDigits: 5, seedSize: 2000, seedHinted: 8000, seedHintMaxDigits: 5, seedSteps: 40_000,
      steps: { kind: 'epochs', epochs: 4, min: 400, max: 20_000 },
    },
    optim: { ...DEFAULT_OPTIM, lr: 1e-3, warmupSteps: 50 },
    trainBatch: 32,
    genBatch: 256,
  },
} satisfies Record<string, RunConfig>;

export type RunPresetName = keyof typeof RUN_PRESETS;

/** The preset the page shows first and the runner uses without --preset. */
export const DEFAULT_PRESET: RunPresetName = 'demo';

export interface RunOverrides {
  mode?: Mode;
  iterations?: number;
  patience?: number;
  seed?: number;
  /** Train the base model in the seed phase even where the preset ships one. */
  fromScratch?: boolean;
}

/** A preset with the usual command-line overrides applied, validated. */
export function runConfig(preset: string, o: RunOverrides = {}): RunConfig {
  if (!(preset in RUN_PRESETS)) throw new Error(`Unknown preset "${preset}". Known presets: ${Object.keys(RUN_PRESETS).join(', ')}.`);
  const base = structuredClone(RUN_PRESETS[preset as RunPresetName]) as RunConfig;
  let star = o.mode ? withMode(base.star, o.mode) : base.star;
  if (o.iterations !== undefined) star = { ...star, iterations: o.iterations };
  if (o.patience !== undefined) star = { ...star, patience: o.patience };
  if (o.seed !== undefined) star = { ...star, seed: o.seed };
  const cfg = { ...base, star, ...(o.fromScratch && { base: 'scratch' as const }) };
  validateRunConfig(cfg);
  return cfg;
}

/** The preset's shipped base model, or 'scratch' when none ships for it. */
export function presetBase(name: string): RunConfig['base'] {
  const b = SHIPPED_BASES[name];
  return b ? { shipped: name, sha256: b.sha256 } : 'scratch';
}

export function validateRunConfig(cfg: RunConfig): void {
  if (cfg.task !== 'arithmetic') throw new Error(`Unknown task "${cfg.task}". Known tasks: arithmetic.`);
  if (typeof cfg === 'object' && cfg !== null && !('base' in cfg)) (cfg as RunConfig).base = 'scratch'; // stored before shipped bases
  const b = cfg.base as unknown;
  const ref = b as Partial<ShippedBaseRef> | null;
  if (b !== 'scratch' && !(typeof ref === 'object' && ref !== null && typeof ref.shipped === 'string' && /^[0-9a-f]{64}$/.test(String(ref.sha256)))) {
    throw new Error(`base must be "scratch" or a shipped base model {"shipped": name, "sha256": hex}, got ${JSON.stringify(b)?.slice(0, 200)}.`);
  }
  presetConfig(cfg.model);
  validateStarConfig(cfg.star);
  for (const k of ['trainBatch', 'genBatch'] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) throw new Error(`${k} must be a positive integer, got ${cfg[k]}.`);
  }
}
