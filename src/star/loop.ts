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

import { type StarConfig, stepsForIteration, upgradeStarConfig, validateStarConfig } from './config';
import { deriveSeed, evaluationSet, iterationSample, poolOverlap, sampleWeights, trainingPool } from './draws';
import { bestIteration, recordFromPhases, type StoredPhases } from './iteration_record';
import type {
  EvaluateOutput, Example, FilterOutput, FinetuneOptions, FinetuneOutput, GenerateOutput, KeptExample, PhaseName,
  RationalizeOutput, RunStore, SeedCheck, SeedOutput, StarEngine, StarEvent, StarSummary, TaskAdapter,
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

/** Reads a completed phase from the store, or runs it, stamps its wall time and stores it as one unit. */
async function phase<P, T extends { seconds: number }>(
  ctx: Ctx<P>, iteration: number, name: PhaseName, body: () => Promise<Omit<T, 'seconds'>>,
): Promise<T> {
  ctx.signal?.throwIfAborted();
  const stored = await ctx.store.getPhase<T>(iteration, name);
  if (stored !== undefined) {
    ctx.onProgress({ kind: 'progress', phase: name, iteration, done: 1, total: 1, message: 'completed earlier; read from the store', stored: true });
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
 * `quiet` reports no progress or samples (the seed phase's checks, whose progress is the training's).
 */
async function generateAll<P>(
  ctx: Ctx<P>, iteration: number, name: PhaseName, jobs: GenJob[], temperature: number, seed: number, quiet = false,
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
      onProgress: quiet ? undefined : (d) => ctx.onProgress({ kind: 'progress', phase: name, iteration, done: offset + d, total: jobs.length }),
      onSample: quiet ? undefined : (k, text, fin) => {
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
    if (!quiet) ctx.onProgress({ kind: 'progress', phase: name, iteration, done, total: jobs.length });
  }
  return { texts, tokens };
}

/** Greedy accuracy on `problems` (shown the hint when `hint`; judged by `ok`, the answer by default), overall and per category. */
async function score<P>(
  ctx: Ctx<P>, it: number, name: PhaseName, problems: P[], quiet = false, hint = false, ok = (p: P, text: string) => ctx.task.isCorrect(p, text),
) {
  const seed = deriveSeed(ctx.cfg.seed, name, it); // greedy (temperature 0): the seed changes nothing
  const { texts, tokens } = await generateAll(ctx, it, name, genJobs(ctx.task, problems, hint), 0, seed, quiet);
  const byCategory: EvaluateOutput['byCategory'] = {};
  let correct = 0;
  problems.forEach((p, i) => {
    const c = (byCategory[ctx.task.category(p)] ??= { correct: 0, total: 0 });
    c.total++;
    if (ok(p, texts[i])) {
      c.correct++;
      correct++;
    }
  });
  return { accuracy: problems.length > 0 ? correct / problems.length : 0, byCategory, tokensGenerated: tokens };
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
async function train<P>(
  ctx: Ctx<P>, iteration: number, name: PhaseName, examples: Example[], steps: number, seed: number, until?: FinetuneOptions['until'],
) {
  const out = await ctx.engine.finetune(examples, {
    steps,
    seed,
    signal: ctx.signal,
    until,
    onStep: (step, loss, keyLoss) => {
      const key = keyLoss === undefined ? '' : `, sum digits ${keyLoss.toFixed(4)}`;
      ctx.onProgress({ kind: 'progress', phase: name, iteration, done: step, total: steps, message: `loss ${loss.toFixed(4)}${key}` });
    },
  });
  return { ...out, steps: out.steps ?? steps };
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
    const checkSet = cfg.seedTarget > 0 ? seedCheckSet(ctx) : null;
    await engine.initRandom(cfg.seed);
    ctx.loaded = null;
    const checks: SeedCheck[] = [];
    const until = checkSet ? masteryCheck(ctx, checkSet, checks) : undefined;
    const { losses, keyLosses, tokens, steps } = await train(ctx, 0, 'seed', examples, cfg.seedSteps, deriveSeed(cfg.seed, 'seed-train'), until);
    await saveWeights(ctx, 'base');
    const last = checks.at(-1);
    const mastered = last !== undefined && masters(cfg, last);
    return { reused: false, examples: examples.length, steps, losses, ...(keyLosses && { keyLosses }), tokensTrained: tokens, ...(until && { checks, mastered }) };
  });
}

/** The seed phase's held-out problems: plain ones of the seed range, and hinted longer ones where the seed set shows them. */
function seedCheckSet<P>(ctx: Ctx<P>): { plain: P[]; hinted: P[] } {
  const { cfg, task } = ctx;
  if (!task.seedCheckProblems) {
    throw new Error(`runStar: seedTarget is set but the ${task.name} task has no held-out seed problems to check it on; set seedTarget to 0`);
  }
  return task.seedCheckProblems(cfg.seedCheckSize, deriveSeed(cfg.seed, 'seed-check'));
}

/** A check reaches the targets: seedTarget unaided on the seed range, and seedHintTarget with the hint on longer problems. */
function masters(cfg: StarConfig, c: SeedCheck): boolean {
  return c.accuracy >= cfg.seedTarget && (c.hinted === undefined || c.hinted.accuracy >= cfg.seedHintTarget);
}

/**
 * The seed phase's stop rule: every seedCheckEvery steps (and at the cap), greedy accuracy on held-out
 * seed-range problems and, where the seed set shows longer problems with the hint, hinted accuracy on held-out
 * longer ones (the start STaR's rationalization extends); training stops once both reach their targets.
 */
function masteryCheck<P>(ctx: Ctx<P>, set: { plain: P[]; hinted: P[] }, checks: SeedCheck[]): FinetuneOptions['until'] {
  const { cfg } = ctx;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return {
    every: cfg.seedCheckEvery,
    async done(step) {
      const plain = await score(ctx, 0, 'seed', set.plain, true);
      // Hint-following counts only what rationalization would keep (a right scratchpad under the 'rationale' filter).
      const hinted = set.hinted.length > 0 ? await score(ctx, 0, 'seed', set.hinted, true, true, keeps(ctx)) : undefined;
      const check: SeedCheck = {
        step, accuracy: plain.accuracy, byCategory: plain.byCategory,
        ...(hinted && { hinted: { accuracy: hinted.accuracy, byCategory: hinted.byCategory } }),
      };
      checks.push(check);
      const withHint = hinted ? `; longer ones with the hint ${pct(hinted.accuracy)} (target ${pct(cfg.seedHintTarget)})` : '';
      ctx.onProgress({
        kind: 'progress', phase: 'seed', iteration: 0, done: step, total: cfg.seedSteps,
        message: `seed range ${pct(plain.accuracy)} (target ${pct(cfg.seedTarget)})${withHint}`,
      });
      return masters(cfg, check);
    },
  };
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
  return { prompt: trainingPrompt(task, p), rationale: text, answer: task.answerOf(text), source, problem: task.toJSON(p), category: task.category(p) };
}

/** The filter: the right answer, and under the 'rationale' filter a right rationale too. */
function keeps<P>(ctx: Ctx<P>): (p: P, text: string) => boolean {
  const { task, cfg } = ctx;
  if (cfg.filter === 'answer') return (p, text) => task.isCorrect(p, text);
  const check = task.isRationaleCorrect;
  if (!check) throw new Error(`runStar: filter 'rationale' needs a task that checks rationales, and ${task.name} does not; use filter 'answer'`);
  return (p, text) => task.isCorrect(p, text) && check.call(task, p, text);
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
    const good = keeps(ctx);
    let answerCorrect = 0;
    sample.forEach((p, i) => {
      if (ctx.task.isCorrect(p, gen.completions[i])) answerCorrect++;
      if (good(p, gen.completions[i])) kept.push(keep(ctx.task, p, gen.completions[i], 'generated'));
      else failures.push(i);
    });
    return { kept, failures, answerCorrect };
  });
}

/** Failures retried by the same model M_{it-1}, shown the answer; successes are kept under the plain prompt. */
function rationalizePhase<P>(ctx: Ctx<P>, it: number, sample: P[], filt: FilterOutput): Promise<RationalizeOutput> {
  return phase<P, RationalizeOutput>(ctx, it, 'rationalize', async () => {
    const failed = filt.failures.map((i) => sample[i]);
    if (failed.length === 0) return { kept: [], tokensGenerated: 0, answerCorrect: 0 };
    await useWeights(ctx, it === 1 ? 'base' : 'latest');
    const seed = deriveSeed(ctx.cfg.seed, 'rationalize', it);
    const { texts, tokens } = await generateAll(ctx, it, 'rationalize', genJobs(ctx.task, failed, true), ctx.cfg.temperature, seed);
    const good = keeps(ctx);
    const kept = failed.flatMap((p, j) => (good(p, texts[j]) ? [keep(ctx.task, p, texts[j], 'rationalized')] : []));
    const answerCorrect = failed.reduce((n, p, j) => n + (ctx.task.isCorrect(p, texts[j]) ? 1 : 0), 0);
    return { kept, tokensGenerated: tokens, answerCorrect };
  });
}

/**
 * What a fine-tune trains on: each kept rationale under its (hint-free) training prompt and, with hintReplay,
 * again under its hinted prompt, so that the model keeps following hints. Only the kept examples are stored.
 */
export function trainingExamples<P>(cfg: StarConfig, task: TaskAdapter<P>, kept: KeptExample[]): Example[] {
  const plain = kept.map((k) => ({ prompt: k.prompt, target: k.rationale }));
  if (!cfg.hintReplay) return plain;
  const fromJSON = task.fromJSON;
  if (!fromJSON) throw new Error(`runStar: hintReplay needs a task that can rebuild a problem from its record, and ${task.name} cannot; set hintReplay to false`);
  return [...plain, ...kept.map((k) => ({ prompt: task.prompt(fromJSON.call(task, k.problem), true), target: k.rationale }))];
}

/** M_it: the BASE model fine-tuned on this iteration's examples (the paper restarts every iteration). */
function finetunePhase<P>(ctx: Ctx<P>, it: number, examples: Example[]): Promise<FinetuneOutput> {
  return phase<P, FinetuneOutput>(ctx, it, 'finetune', async () => {
    await loadWeights(ctx, 'base'); // always, even if the engine seems to hold them: never train on M_{it-1}
    const steps = examples.length > 0 ? stepsForIteration(ctx.cfg, it, { examples: examples.length, batch: ctx.engine.trainBatch ?? 0 }) : 0;
    const { losses, keyLosses, tokens } =
      steps > 0 ? await train(ctx, it, 'finetune', examples, steps, deriveSeed(ctx.cfg.seed, 'finetune', it)) : { losses: [], keyLosses: undefined, tokens: 0 };
    await saveWeights(ctx, 'latest');
    return { examples: examples.length, steps, losses, ...(keyLosses && { keyLosses }), tokensTrained: tokens };
  });
}

/** Greedy accuracy of M_it on the held-out set, overall and per category. */
function evaluatePhase<P>(ctx: Ctx<P>, it: number, evalSet: P[]): Promise<EvaluateOutput> {
  return phase<P, EvaluateOutput>(ctx, it, 'evaluate', async () => {
    await useWeights(ctx, it === 0 ? 'base' : 'latest');
    return score(ctx, it, 'evaluate', evalSet);
  });
}

// ---- The loop. ----

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
    upgradeStarConfig(stored);
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

  const evalSet = evaluationSet(cfg, task);
  const seed = await seedPhase(ctx);
  const baseEval = await evaluatePhase(ctx, 0, evalSet);
  const records = [recordFromPhases(0, { seed, evaluate: baseEval })];

  let stoppedBy: StarSummary['stoppedBy'] = 'iterations';
  const iterations = cfg.mode === 'base' ? 0 : cfg.iterations;
  const pool = iterations > 0 ? trainingPool(cfg, task) : [];
  let prevEval = baseEval;
  const keptSoFar = new Map<string, KeptExample>(); // accumulate: the newest kept rationale of each problem
  for (let it = 1; it <= iterations; it++) {
    const sample = iterationSample(cfg, pool, it, sampleWeights(cfg, prevEval), (p) => task.category(p));
    let examples: Example[];
    let sampled: Pick<StoredPhases, 'generate' | 'filter' | 'rationalize'> = {};
    if (cfg.mode === 'direct') {
      examples = sample.map((p) => ({ prompt: trainingPrompt(task, p), target: task.directTarget(p) }));
    } else {
      const gen = await generatePhase(ctx, it, sample);
      const filt = await filterPhase(ctx, it, sample, gen);
      const rat = cfg.rationalize ? await rationalizePhase(ctx, it, sample, filt) : undefined;
      const kept = [...filt.kept, ...(rat?.kept ?? [])];
      for (const k of kept) keptSoFar.set(JSON.stringify(k.problem), k);
      examples = trainingExamples(cfg, task, cfg.accumulate ? [...keptSoFar.values()] : kept);
      sampled = { generate: gen, filter: filt, rationalize: rat };
    }
    const ft = await finetunePhase(ctx, it, examples);
    const ev = await evaluatePhase(ctx, it, evalSet);
    prevEval = ev;
    records.push(recordFromPhases(it, { ...sampled, finetune: ft, evaluate: ev }));

    // Patience counts iterations since the best accuracy so far, the base model included.
    if (cfg.patience > 0 && it - bestIteration(records) >= cfg.patience) {
      stoppedBy = 'patience';
      break;
    }
  }

  const best = bestIteration(records);
  const summary: StarSummary = {
    task: task.name, mode: cfg.mode, iterations: records, evalOverlap: poolOverlap(cfg, task, pool),
    bestIteration: best, bestAccuracy: records[best].evalAccuracy, finalAccuracy: records[records.length - 1].evalAccuracy, stoppedBy,
  };
  await store.putJSON('summary', summary);
  return summary;
}
