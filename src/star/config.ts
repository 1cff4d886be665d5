// The STaR run's settings as data, with a comment per field, and named presets that override the default.
// The digit fields configure the arithmetic task (./tasks/arithmetic_task.ts); the rest drive the loop.

import { MODES, type Mode } from './types';

/**
 * Fine-tuning steps per iteration. The paper's two schedules grow by a factor (40, then +20%) or by a constant;
 * 'epochs' follows the size of what was kept instead: epochs x examples / batch, clamped to [min, max]. A kept
 * set that grows from 60 to 6,000 examples needs that: a fixed count overfits the small one and underfits the
 * large one (docs/results.md).
 */
export type StepSchedule =
  | { kind: 'multiply'; start: number; factor: number }
  | { kind: 'add'; start: number; increment: number }
  | { kind: 'epochs'; epochs: number; min: number; max: number };

/** What a kept rationale must get right: its final answer (the paper), or every step of it as well. */
export type FilterKind = 'answer' | 'rationale';
export const FILTERS: readonly FilterKind[] = ['answer', 'rationale'];

/** How an iteration draws its problems from the pool. */
export type Sampling = 'uniform' | 'frontier';
export const SAMPLINGS: readonly Sampling[] = ['uniform', 'frontier'];

export interface StarConfig {
  /** base: evaluate the base model only; direct: fine-tune on answers without rationales; star(-no-rationalization). */
  mode: Mode;
  /** N, the number of outer-loop iterations after the base model (iteration 0). */
  iterations: number;
  /** Stop once eval accuracy has not improved on its best for this many iterations; 0 never stops early. */
  patience: number;
  /** Problems drawn from the pool each iteration, without replacement. */
  trainSize: number;
  /** The training pool, drawn once from `seed`. */
  poolSize: number;
  /** The held-out evaluation set, drawn from `evalSeed`. */
  evalSize: number;
  /** Supervised examples that train the base model from scratch (tasks with seedExamples only). */
  seedSize: number;
  /** Fine-tuning steps on the seed set. */
  seedSteps: number;
  /** Training and evaluation digit range. */
  minDigits: number;
  maxDigits: number;
  /** The seed set's digit range: the base model starts small, and STaR extends it. */
  seedMinDigits: number;
  seedMaxDigits: number;
  /** Sampling temperature for rationales; 0 = greedy (the paper found higher temperatures give worse rationales). */
  temperature: number;
  /** Retry failures with the answer as a hint; true exactly for mode 'star' (see withMode). */
  rationalize: boolean;
  /** Fine-tuning steps per iteration (see stepsForIteration). */
  steps: StepSchedule;
  /**
   * 'answer' keeps a rationale whose final answer is right (the paper); 'rationale' also needs every step of it
   * to be right (tasks with a rationale check: arithmetic's scratchpad). Both counts are recorded either way.
   */
  filter: FilterKind;
  /**
   * Every fine-tune also trains on each kept example under its hinted prompt, so M_n still follows hints when
   * the next iteration rationalizes with it (fine-tuning on hint-free prompts alone erases that skill). What is
   * stored is never hinted: the hinted copies are made at training time.
   */
  hintReplay: boolean;
  /**
   * Each fine-tune trains on every example kept so far (the newest rationale of each problem), not only on this
   * iteration's: what a model learned to solve stays in its successor's training set (as Lee et al. 2025 do). The
   * paper draws its whole data set every iteration, which comes to the same when the sample is the whole pool.
   */
  accumulate: boolean;
  /**
   * 'uniform': each iteration draws from the whole pool (the paper). 'frontier': weighted per category (digit
   * count) by how often the last model fails it, max(0.05, 1 - accuracy), so the sample goes where learning happens.
   */
  sampling: Sampling;
  /** The seed phase stops once greedy accuracy on held-out seed-range problems reaches this; 0: train seedSteps. */
  seedTarget: number;
  /**
   * With hinted-only seed examples longer than the seed range (seedHinted, seedHintMaxDigits): the seed phase also
   * waits until the model, shown the hint, solves this share of held-out longer problems (0: measure it, don't wait).
   */
  seedHintTarget: number;
  /** The seed phase checks its accuracy every this many steps (and at seedSteps, its cap). */
  seedCheckEvery: number;
  /** Held-out seed-range problems per check. */
  seedCheckSize: number;
  /** Seed examples shown with the hint only, of seedMinDigits..seedHintMaxDigits digits: worked examples of longer problems whose scratchpad the hint pins down. */
  seedHinted: number;
  /** The longest hinted-only seed examples (see seedHinted). */
  seedHintMaxDigits: number;
  /** Seeds the weights, the pool, the per-iteration samples and sampling. */
  seed: number;
  /** Seeds the held-out evaluation set, so every mode is scored on the same problems. */
  evalSeed: number;
}

/** The quick demo: a few minutes on a laptop GPU. */
export const DEFAULT_STAR_CONFIG: StarConfig = {
  mode: 'star',
  iterations: 8,
  patience: 3,
  trainSize: 1000,
  poolSize: 5000,
  evalSize: 250,
  seedSize: 2000,
  seedSteps: 600,
  minDigits: 1,
  maxDigits: 4,
  seedMinDigits: 1,
  seedMaxDigits: 2,
  temperature: 0,
  rationalize: true,
  steps: { kind: 'multiply', start: 40, factor: 1.2 },
  filter: 'answer',
  hintReplay: false,
  accumulate: false,
  sampling: 'uniform',
  seedTarget: 0,
  seedHintTarget: 0,
  seedCheckEvery: 250,
  seedCheckSize: 200,
  seedHinted: 0,
  seedHintMaxDigits: 2,
  seed: 1,
  evalSeed: 12345,
};

export type PresetName = 'micro' | 'quick' | 'paper-like';

export const STAR_PRESETS: Record<PresetName, StarConfig> = {
  /** Tests: tiny numbers, every phase still runs. */
  micro: {
    ...DEFAULT_STAR_CONFIG,
    iterations: 3,
    patience: 0,
    trainSize: 12,
    poolSize: 24,
    evalSize: 8,
    seedSize: 8,
    seedSteps: 4,
    maxDigits: 3,
    steps: { kind: 'add', start: 2, increment: 1 },
  },
  quick: DEFAULT_STAR_CONFIG,
  /** The paper's schedule (40 steps, +20% per iteration) at a scale closer to its arithmetic runs. */
  'paper-like': {
    ...DEFAULT_STAR_CONFIG,
    iterations: 20,
    patience: 4,
    trainSize: 10_000,
    poolSize: 50_000,
    evalSize: 1000,
    seedSize: 10_000,
    seedSteps: 3000,
    maxDigits: 5,
  },
};

/** The config with `mode` set and `rationalize` made to agree with it. */
export function withMode(cfg: StarConfig, mode: Mode): StarConfig {
  return { ...cfg, mode, rationalize: mode === 'star' };
}

/**
 * Fine-tuning steps at outer iteration `it` (1-based); rounded, at least 1. The 'epochs' schedule needs the
 * number of training examples and the batch size.
 */
export function stepsForIteration(cfg: Pick<StarConfig, 'steps'>, it: number, size?: { examples: number; batch: number }): number {
  if (!Number.isInteger(it) || it < 1) throw new Error(`stepsForIteration: iteration must be an integer >= 1, got ${it}`);
  const s = cfg.steps;
  if (s.kind === 'epochs') {
    if (!size || !(size.batch >= 1)) throw new Error("stepsForIteration: the 'epochs' schedule needs the example count and the batch size");
    return Math.min(s.max, Math.max(s.min, Math.round((s.epochs * size.examples) / size.batch)));
  }
  // Rounded, not floored: 40 * 1.2^2 is 57.599999999999994 in floating point.
  const steps = s.kind === 'multiply' ? s.start * s.factor ** (it - 1) : s.start + s.increment * (it - 1);
  return Math.max(1, Math.round(steps));
}

/**
 * Steps an iteration is planned to take before it has run, for time estimates. An 'epochs' schedule depends
 * on how many examples are kept, unknown ahead: this assumes three in four drawn problems kept in mode star,
 * half in star-no-rationalization and all of them in direct; every kept example twice with hint replay; and
 * with accumulation, every earlier iteration's examples too.
 */
export function plannedStepsForIteration(
  cfg: Pick<StarConfig, 'steps' | 'trainSize' | 'mode' | 'hintReplay' | 'accumulate'>,
  it: number,
  batch: number,
): number {
  if (cfg.steps.kind !== 'epochs') return stepsForIteration(cfg, it);
  const kept = cfg.trainSize * (cfg.mode === 'direct' ? 1 : cfg.mode === 'star' ? 0.75 : 0.5);
  const examples = Math.round(kept * (cfg.hintReplay ? 2 : 1) * (cfg.accumulate ? it : 1));
  return stepsForIteration(cfg, it, { examples, batch: Math.max(1, batch) });
}

const MAX_DIGITS = 15; // sums stay exact in float64 (see tasks/arithmetic.ts)

/**
 * Fields added after runs were first stored, with the values that reproduce how those runs ran. A config
 * without them (a run folder, an IndexedDB run or an archive written earlier) is upgraded in place.
 */
const ADDED_FIELDS = {
  filter: 'answer', hintReplay: false, accumulate: false, sampling: 'uniform', seedTarget: 0, seedHintTarget: 0, seedCheckEvery: 250, seedCheckSize: 200, seedHinted: 0,
} satisfies Partial<StarConfig>;

/** Fills in fields that configs stored before they existed lack (see ADDED_FIELDS); returns the same object. */
export function upgradeStarConfig<T extends StarConfig>(cfg: T): T {
  if (typeof cfg !== 'object' || cfg === null) return cfg;
  const o = cfg as Record<string, unknown>;
  for (const [k, v] of Object.entries(ADDED_FIELDS)) if (!(k in o)) o[k] = v;
  if (!('seedHintMaxDigits' in o)) o.seedHintMaxDigits = o.seedMaxDigits;
  return cfg;
}

/**
 * Throws one error listing every problem, each naming its field; unknown fields are rejected (typos). A config
 * stored before some fields existed is first upgraded in place (upgradeStarConfig).
 */
export function validateStarConfig(cfg: StarConfig): void {
  upgradeStarConfig(cfg);
  const errors: string[] = [];
  const known = new Set(Object.keys(DEFAULT_STAR_CONFIG));
  for (const key of Object.keys(cfg)) if (!known.has(key)) errors.push(`unknown field "${key}"`);

  const check = (ok: boolean, message: string) => {
    if (!ok) errors.push(message);
  };
  const isInt = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;
  const int = (name: keyof StarConfig, min: number) =>
    check(isInt(cfg[name], min), `${name} must be an integer >= ${min}, got ${JSON.stringify(cfg[name])}`);

  check(MODES.includes(cfg.mode), `mode must be one of ${MODES.join(', ')}, got ${JSON.stringify(cfg.mode)}`);
  for (const name of ['iterations', 'patience', 'seed', 'evalSeed'] as const) int(name, 0);
  for (const name of ['trainSize', 'poolSize', 'evalSize', 'seedSize', 'seedSteps'] as const) int(name, 1);
  check(cfg.trainSize <= cfg.poolSize, `trainSize (${cfg.trainSize}) exceeds poolSize (${cfg.poolSize}): problems are drawn without replacement`);
  for (const [lo, hi] of [['minDigits', 'maxDigits'], ['seedMinDigits', 'seedMaxDigits']] as const) {
    int(lo, 1);
    int(hi, 1);
    check(cfg[lo] <= cfg[hi], `${lo} (${cfg[lo]}) exceeds ${hi} (${cfg[hi]})`);
    check(cfg[hi] <= MAX_DIGITS, `${hi} must be at most ${MAX_DIGITS}, got ${cfg[hi]}`);
  }
  check(Number.isFinite(cfg.temperature) && cfg.temperature >= 0, `temperature must be finite and >= 0, got ${cfg.temperature}`);
  check(
    cfg.rationalize === (cfg.mode === 'star'),
    `rationalize is ${cfg.rationalize} but mode is "${cfg.mode}": rationalization belongs to mode "star" only (use withMode)`,
  );
  const s = cfg.steps as StepSchedule | undefined;
  if (s?.kind === 'multiply' || s?.kind === 'add') {
    check(isInt(s.start, 1), `steps.start must be an integer >= 1, got ${s.start}`);
    if (s.kind === 'multiply') check(Number.isFinite(s.factor) && s.factor >= 1, `steps.factor must be finite and >= 1, got ${s.factor}`);
    else check(isInt(s.increment, 0), `steps.increment must be an integer >= 0, got ${s.increment}`);
  } else if (s?.kind === 'epochs') {
    check(Number.isFinite(s.epochs) && s.epochs > 0 && s.epochs <= 1000, `steps.epochs must be a number in (0, 1000], got ${s.epochs}`);
    check(isInt(s.min, 1) && isInt(s.max, s.min), `steps.min and steps.max must be integers with 1 <= min <= max, got ${s.min}..${s.max}`);
  } else {
    errors.push(`steps must be { kind: 'multiply', start, factor }, { kind: 'add', start, increment } or { kind: 'epochs', epochs, min, max }, got ${JSON.stringify(s)}`);
  }
  check(FILTERS.includes(cfg.filter), `filter must be one of ${FILTERS.join(', ')}, got ${JSON.stringify(cfg.filter)}`);
  check(SAMPLINGS.includes(cfg.sampling), `sampling must be one of ${SAMPLINGS.join(', ')}, got ${JSON.stringify(cfg.sampling)}`);
  for (const name of ['hintReplay', 'accumulate'] as const) {
    check(typeof cfg[name] === 'boolean', `${name} must be true or false, got ${JSON.stringify(cfg[name])}`);
  }
  for (const name of ['seedTarget', 'seedHintTarget'] as const) {
    check(Number.isFinite(cfg[name]) && cfg[name] >= 0 && cfg[name] <= 1, `${name} must be a fraction in [0, 1], got ${cfg[name]}`);
  }
  for (const name of ['seedCheckEvery', 'seedCheckSize'] as const) int(name, 1);
  int('seedHinted', 0);
  int('seedHintMaxDigits', 1);
  check(cfg.seedHintMaxDigits <= MAX_DIGITS, `seedHintMaxDigits must be at most ${MAX_DIGITS}, got ${cfg.seedHintMaxDigits}`);
  if (errors.length > 0) throw new Error(`Invalid STaR config:\n  - ${errors.join('\n  - ')}`);
}
