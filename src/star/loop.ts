// The STaR outer loop (Zelikman et al. 2022, Algorithm 1) as a list of named phases.
//
//   iteration 0:   seed (train the base model, or reuse the stored one) -> evaluate
//   iteration n:   generate (rationales from M_{n-1}) -> filter (keep exactly-correct ones)
//                  -> rationalize (mode star: retry failures with the answer as a hint)
//                  -> finetune (from the BASE model, never M_{n-1}, giving M_n) -> evaluate (M_n)
//
// Mode direct replaces generate/filter/rationalize by (prompt -> answer) examples; mode base stops after
// iteration 0. Each phase's output is written to the store as one unit when the phase ends, and a phase
// found in the store is read instead of run, so a rerun with the same config continues where the last
// one stopped and produces the same summary. Weights live in the store as 'base' and 'latest' (M_n).

import { rng, shuffle } from '../util/random';
import { type StarConfig, stepsForIteration, validateStarConfig } from './config';
import type {
  EvaluateOutput, Example, FilterOutput, FinetuneOutput, GenerateOutput, IterationRecord, KeptExample, PhaseName,
  RationalizeOutput, RunStore, SeedOutput, StarEngine, StarEvent, StarSummary, TaskAdapter,
} from './types';

export interface StarDeps<P> {
  task: TaskAdapter<P>;
  engine: StarEngine;
  store: RunStore;
  onProgress?: (event: StarEvent) => void;
  /** Stops between phases (and, through the engine, between batches); nothing half-done is stored. */
  signal?: AbortSignal;
  /** A clock in milliseconds; tests inject one so recorded seconds are reproducible. */
  now?: () => number;
}

/** Everything the phases share, plus which stored weights the engine currently holds. */
interface Ctx<P> extends Required<Omit<StarDeps<P>, 'signal'>> {
  cfg: StarConfig;
  signal?: AbortSignal;
  loaded: 'base' | 'latest' | null;
}

/** A 32-bit seed for one purpose of the run (FNV-1a of "seed/part/part"), so draws never share a stream. */
export function deriveSeed(seed: number, ...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const ch of [seed, ...parts].join('/')) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** The training pool, drawn once per run. */
export function trainingPool<P>(cfg: StarConfig, task: TaskAdapter<P>): P[] {
  return task.trainProblems(cfg.poolSize, deriveSeed(cfg.seed, 'pool'));
}

/** Iteration `it`'s problems: `cfg.trainSize` drawn from the pool without replacement. */
export function iterationSample<P>(cfg: StarConfig, pool: P[], it: number): P[] {
  const order = shuffle(Array.from({ length: pool.length }, (_, i) => i), rng(deriveSeed(cfg.seed, 'sample', it)));
  return order.slice(0, cfg.trainSize).map((i) => pool[i]);
}

/** Reads a completed phase from the store, or runs it, stamps its wall time and stores it as one unit. */
async function phase<P, T extends { seconds: number }>(
  ctx: Ctx<P>, iteration: number, name: PhaseName, body: () => Promise<Omit<T, 'seconds'>>,
): Promise<T> {
  ctx.signal?.throwIfAborted();
  const stored = await ctx.store.getPhase<T>(iteration, name);
  if (stored !== undefined) {
    ctx.onProgress({ kind: 'progress', phase: name, iteration, done: 1, total: 1, message: 'completed earlier; read from the store' });
    return stored;
  }
  const start = ctx.now();
  const out = { ...(await body()), seconds: (ctx.now() - start) / 1000 } as T;
  ctx.signal?.throwIfAborted(); // an engine that ignored the signal: still store nothing
  await ctx.store.putPhase(iteration, name, out);
  return out;
}

/** Makes the engine hold the stored weights `name`, loading them only if it holds something else. */
async function useWeights<P>(ctx: Ctx<P>, name: 'base' | 'latest'): Promise<void> {
  if (ctx.loaded === name) return;
  await loadWeights(ctx, name);
}

async function loadWeights<P>(ctx: Ctx<P>, name: 'base' | 'latest'): Promise<void> {
  const bytes = await ctx.store.getWeights(name);
  if (bytes === undefined) throw new Error(`runStar: the store has no '${name}' weights, but a completed phase needs them`);
  await ctx.engine.loadWeights(bytes);
  ctx.loaded = name;
}

async function saveWeights<P>(ctx: Ctx<P>, name: 'base' | 'latest'): Promise<void> {
  await ctx.store.putWeights(name, await ctx.engine.saveWeights());
  ctx.loaded = name;
}

interface GenJob {
  prompt: string;
  maxNewTokens: number;
  hinted: boolean;
  isCorrect(text: string): boolean;
}

/**
 * One completion per job. Jobs are grouped by token budget so short problems are not generated to the
 * longest one's length; the abort signal is checked between groups (the engine checks between batches).
 */
async function generateAll<P>(
  ctx: Ctx<P>, iteration: number, name: PhaseName, jobs: GenJob[], temperature: number, seed: number,
): Promise<{ texts: string[]; tokens: number }> {
  const { task } = ctx;
  const groups = new Map<number, number[]>(); // maxNewTokens -> job indices
  jobs.forEach((job, i) => {
    const group = groups.get(job.maxNewTokens);
    if (group) group.push(i);
    else groups.set(job.maxNewTokens, [i]);
  });
  const texts: string[] = new Array(jobs.length);
  let tokens = 0;
  let done = 0;
  for (const [maxNewTokens, idx] of [...groups].sort((a, b) => a[0] - b[0])) {
    ctx.signal?.throwIfAborted();
    const offset = done;
    const out = await ctx.engine.generate(idx.map((i) => jobs[i].prompt), {
      temperature,
      maxNewTokens,
      stop: task.stop,
      end: task.end?.bind(task),
      seed: deriveSeed(seed, maxNewTokens),
      signal: ctx.signal,
      onProgress: (d) => ctx.onProgress({ kind: 'progress', phase: name, iteration, done: offset + d, total: jobs.length }),
      onSample: (k, text, fin) => {
        const job = jobs[idx[k]];
        const correct = fin ? job.isCorrect(text) : null;
        ctx.onProgress({ kind: 'sample', iteration, phase: name, prompt: job.prompt, text, done: fin, correct, hinted: job.hinted });
      },
    });
    if (out.length !== idx.length) throw new Error(`engine.generate returned ${out.length} completions for ${idx.length} prompts`);
    out.forEach((o, k) => {
      texts[idx[k]] = o.text;
      tokens += o.tokens;
    });
    done += idx.length;
    ctx.onProgress({ kind: 'progress', phase: name, iteration, done, total: jobs.length });
  }
  return { texts, tokens };
}

function genJobs<P>(task: TaskAdapter<P>, problems: P[], hint: boolean): GenJob[] {
  return problems.map((p) => ({
    prompt: task.prompt(p, hint),
    maxNewTokens: task.maxNewTokens(p),
    hinted: hint,
    isCorrect: (text) => task.isCorrect(p, text),
  }));
}

/** Fine-tunes the weights the engine holds, reporting each step as progress. */
async function train<P>(ctx: Ctx<P>, iteration: number, name: PhaseName, examples: Example[], steps: number, seed: number) {
  return ctx.engine.finetune(examples, {
    steps,
    seed,
    signal: ctx.signal,
    onStep: (step, loss) =>
      ctx.onProgress({ kind: 'progress', phase: name, iteration, done: step, total: steps, message: `loss ${loss.toFixed(4)}` }),
  });
}

// ---- The phases. ----

/** The base model: trained from random weights on the task's seed set, or the engine's pretrained weights. */
function seedPhase<P>(ctx: Ctx<P>): Promise<SeedOutput> {
  return phase<P, SeedOutput>(ctx, 0, 'seed', async () => {
    const { cfg, task, engine } = ctx;
    const none = { examples: 0, steps: 0, losses: [], tokensTrained: 0 };
    if ((await ctx.store.getWeights('base')) !== undefined) return { reused: true, ...none }; // e.g. shared across modes
    if (task.seedExamples === undefined) {
      await saveWeights(ctx, 'base'); // a pretrained model: whatever the caller loaded is the base
      return { reused: false, ...none };
    }
    const examples = task.seedExamples(cfg.seedSize, deriveSeed(cfg.seed, 'seed-set'));
    await engine.initRandom(cfg.seed);
    ctx.loaded = null;
    const { losses, tokens } = await train(ctx, 0, 'seed', examples, cfg.seedSteps, deriveSeed(cfg.seed, 'seed-train'));
    await saveWeights(ctx, 'base');
    return { reused: false, examples: examples.length, steps: cfg.seedSteps, losses, tokensTrained: tokens };
  });
}

/** A rationale per problem, sampled from M_{it-1} (the base model when it = 1). */
function generatePhase<P>(ctx: Ctx<P>, it: number, sample: P[]): Promise<GenerateOutput> {
  return phase<P, GenerateOutput>(ctx, it, 'generate', async () => {
    await useWeights(ctx, it === 1 ? 'base' : 'latest');
    const seed = deriveSeed(ctx.cfg.seed, 'generate', it);
    const { texts, tokens } = await generateAll(ctx, it, 'generate', genJobs(ctx.task, sample, false), ctx.cfg.temperature, seed);
    return { completions: texts, tokensGenerated: tokens };
  });
}

/** The prompt a problem's examples are trained under: never the hinted one. */
function trainingPrompt<P>(task: TaskAdapter<P>, p: P): string {
  return task.trainPrompt ? task.trainPrompt(p) : task.prompt(p, false);
}

/** A kept rationale, always under the training prompt: the hint never reaches training. */
function keep<P>(task: TaskAdapter<P>, p: P, text: string, source: KeptExample['source']): KeptExample {
  return { prompt: trainingPrompt(task, p), rationale: text, answer: task.answerOf(text), source, problem: task.toJSON(p) };
}

function filterPhase<P>(ctx: Ctx<P>, it: number, sample: P[], gen: GenerateOutput): Promise<FilterOutput> {
  return phase<P, FilterOutput>(ctx, it, 'filter', async () => {
    if (gen.completions.length !== sample.length) {
      throw new Error(
        `runStar: iteration ${it}'s stored generate phase has ${gen.completions.length} completions for ${sample.length} problems; ` +
          'the store belongs to another run',
      );
    }
    const kept: KeptExample[] = [];
    const failures: number[] = [];
    sample.forEach((p, i) => {
      if (ctx.task.isCorrect(p, gen.completions[i])) kept.push(keep(ctx.task, p, gen.completions[i], 'generated'));
      else failures.push(i);
    });
    return { kept, failures };
  });
}

/** Failures retried by the same model M_{it-1}, shown the answer; successes are kept under the plain prompt. */
function rationalizePhase<P>(ctx: Ctx<P>, it: number, sample: P[], filt: FilterOutput): Promise<RationalizeOutput> {
  return phase<P, RationalizeOutput>(ctx, it, 'rationalize', async () => {
    const failed = filt.failures.map((i) => sample[i]);
    if (failed.length === 0) return { kept: [], tokensGenerated: 0 };
    await useWeights(ctx, it === 1 ? 'base' : 'latest');
    const seed = deriveSeed(ctx.cfg.seed, 'rationalize', it);
    const { texts, tokens } = await generateAll(ctx, it, 'rationalize', genJobs(ctx.task, failed, true), ctx.cfg.temperature, seed);
    const kept = failed.flatMap((p, j) => (ctx.task.isCorrect(p, texts[j]) ? [keep(ctx.task, p, texts[j], 'rationalized')] : []));
    return { kept, tokensGenerated: tokens };
  });
}

/** M_it: the BASE model fine-tuned on this iteration's examples (the paper restarts every iteration). */
function finetunePhase<P>(ctx: Ctx<P>, it: number, examples: Example[]): Promise<FinetuneOutput> {
  return phase<P, FinetuneOutput>(ctx, it, 'finetune', async () => {
    await loadWeights(ctx, 'base'); // always, even if the engine seems to hold them: never train on M_{it-1}
    const steps = examples.length > 0 ? stepsForIteration(ctx.cfg, it) : 0;
    const { losses, tokens } =
      steps > 0 ? await train(ctx, it, 'finetune', examples, steps, deriveSeed(ctx.cfg.seed, 'finetune', it)) : { losses: [], tokens: 0 };
    await saveWeights(ctx, 'latest');
    return { examples: examples.length, steps, losses, tokensTrained: tokens };
  });
}

/** Greedy accuracy of M_it on the held-out set, overall and per category. */
function evaluatePhase<P>(ctx: Ctx<P>, it: number, evalSet: P[]): Promise<EvaluateOutput> {
  return phase<P, EvaluateOutput>(ctx, it, 'evaluate', async () => {
    await useWeights(ctx, it === 0 ? 'base' : 'latest');
    const seed = deriveSeed(ctx.cfg.seed, 'evaluate', it); // greedy (temperature 0): the seed changes nothing
    const { texts, tokens } = await generateAll(ctx, it, 'evaluate', genJobs(ctx.task, evalSet, false), 0, seed);
    const byCategory: EvaluateOutput['byCategory'] = {};
    let correct = 0;
    evalSet.forEach((p, i) => {
      const ok = ctx.task.isCorrect(p, texts[i]);
      const c = (byCategory[ctx.task.category(p)] ??= { correct: 0, total: 0 });
      c.total++;
      if (ok) {
        c.correct++;
        correct++;
      }
    });
    return { accuracy: correct / evalSet.length, byCategory, tokensGenerated: tokens };
  });
}

// ---- The loop. ----

interface RecordParts {
  generated: number;
  correct: number;
  rationalized: number;
  train: { examples: number; steps: number; losses: number[]; tokensTrained: number };
  ev: EvaluateOutput;
  seconds: Partial<Record<PhaseName, number>>;
  tokensGenerated: number;
}

function makeRecord(iteration: number, r: RecordParts): IterationRecord {
  const totalSeconds = Object.values(r.seconds).reduce((a, b) => a + (b ?? 0), 0);
  const tokensTrained = r.train.tokensTrained;
  const tokensGenerated = r.tokensGenerated + r.ev.tokensGenerated;
  return {
    iteration,
    generated: r.generated,
    correct: r.correct,
    rationalized: r.rationalized,
    failed: r.generated - r.correct - r.rationalized,
    trainExamples: r.train.examples,
    trainSteps: r.train.steps,
    losses: r.train.losses,
    finalLoss: r.train.losses.length > 0 ? r.train.losses[r.train.losses.length - 1] : null,
    evalAccuracy: r.ev.accuracy,
    evalAccuracyByDigits: Object.fromEntries(Object.entries(r.ev.byCategory).map(([k, c]) => [k, c.correct / c.total])),
    seconds: r.seconds,
    tokensGenerated,
    tokensTrained,
    tokensPerSecond: totalSeconds > 0 ? (tokensGenerated + tokensTrained) / totalSeconds : 0,
  };
}

/** The iteration with the highest eval accuracy, the earliest on ties (records[i].iteration === i). */
function bestIteration(records: IterationRecord[]): number {
  return records.reduce((b, r, i) => (r.evalAccuracy > records[b].evalAccuracy ? i : b), 0);
}

/** Sorted-key JSON, so field order never makes two equal configs differ. */
function canonical(x: unknown): string {
  if (typeof x !== 'object' || x === null) return JSON.stringify(x);
  if (Array.isArray(x)) return `[${x.map(canonical).join(',')}]`;
  const o = x as Record<string, unknown>;
  return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
}

/** A store continues one run: every field that shapes its results must match (iterations and patience may grow). */
async function claimStore(store: RunStore, cfg: StarConfig): Promise<void> {
  const stored = await store.getJSON<StarConfig>('star-config');
  if (stored !== undefined) {
    const keys = new Set([...Object.keys(stored), ...Object.keys(cfg)]);
    const differ = [...keys].filter(
      (k) => k !== 'iterations' && k !== 'patience' && canonical((stored as never)[k]) !== canonical((cfg as never)[k]),
    );
    if (differ.length > 0) {
      throw new Error(
        `runStar: the store holds a run with a different config (${differ.join(', ')}); resume it with the same config or use a fresh store`,
      );
    }
  }
  await store.putJSON('star-config', cfg);
}

export async function runStar<P>(cfg: StarConfig, deps: StarDeps<P>): Promise<StarSummary> {
  validateStarConfig(cfg);
  deps.signal?.throwIfAborted();
  const { task, engine, store, signal } = deps;
  const ctx: Ctx<P> = {
    task, engine, store, signal, cfg, loaded: null,
    onProgress: deps.onProgress ?? (() => {}),
    now: deps.now ?? (() => performance.now()),
  };
  await claimStore(store, cfg);

  const evalSet = task.evalProblems(cfg.evalSize, cfg.evalSeed);
  const seed = await seedPhase(ctx);
  const baseEval = await evaluatePhase(ctx, 0, evalSet);
  const records = [
    makeRecord(0, {
      generated: 0, correct: 0, rationalized: 0, train: seed, ev: baseEval,
      seconds: { seed: seed.seconds, evaluate: baseEval.seconds }, tokensGenerated: 0,
    }),
  ];

  let stoppedBy: StarSummary['stoppedBy'] = 'iterations';
  const iterations = cfg.mode === 'base' ? 0 : cfg.iterations;
  const pool = iterations > 0 ? trainingPool(cfg, task) : [];
  for (let it = 1; it <= iterations; it++) {
    const sample = iterationSample(cfg, pool, it);
    const seconds: Partial<Record<PhaseName, number>> = {};
    let examples: Example[];
    let counts = { generated: 0, correct: 0, rationalized: 0, tokensGenerated: 0 };
    if (cfg.mode === 'direct') {
      examples = sample.map((p) => ({ prompt: trainingPrompt(task, p), target: task.directTarget(p) }));
    } else {
      const gen = await generatePhase(ctx, it, sample);
      const filt = await filterPhase(ctx, it, sample, gen);
      const rat = cfg.rationalize ? await rationalizePhase(ctx, it, sample, filt) : undefined;
      Object.assign(seconds, { generate: gen.seconds, filter: filt.seconds }, rat && { rationalize: rat.seconds });
      const kept = [...filt.kept, ...(rat?.kept ?? [])];
      examples = kept.map((k) => ({ prompt: k.prompt, target: k.rationale }));
      counts = {
        generated: sample.length, correct: filt.kept.length, rationalized: rat?.kept.length ?? 0,
        tokensGenerated: gen.tokensGenerated + (rat?.tokensGenerated ?? 0),
      };
    }
    const ft = await finetunePhase(ctx, it, examples);
    const ev = await evaluatePhase(ctx, it, evalSet);
    Object.assign(seconds, { finetune: ft.seconds, evaluate: ev.seconds });
    records.push(makeRecord(it, { ...counts, train: ft, ev, seconds }));

    // Patience counts iterations since the best accuracy so far, the base model included.
    if (cfg.patience > 0 && it - bestIteration(records) >= cfg.patience) {
      stoppedBy = 'patience';
      break;
    }
  }

  const best = bestIteration(records);
  const summary: StarSummary = {
    task: task.name, mode: cfg.mode, iterations: records,
    bestIteration: best, bestAccuracy: records[best].evalAccuracy, finalAccuracy: records[records.length - 1].evalAccuracy, stoppedBy,
  };
  await store.putJSON('summary', summary);
  return summary;
}
