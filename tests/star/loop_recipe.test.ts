// The loop's recipe settings: the seed phase's mastery stop, the rationale filter, hint replay, frontier
// sampling, the 'epochs' step schedule, and held-out problems kept out of what is trained on.
import { describe, expect, it } from 'vitest';
import { stepsForIteration, upgradeStarConfig, validateStarConfig, type StarConfig } from '../../src/star/config';
import { evaluationSet, iterationSample, sampleWeights, trainingPool } from '../../src/star/draws';
import { MemoryStore } from '../../src/star/stores/memory';
import { makeProblem, type Problem, problemPrompt, sampleProblems, scratchpad, splitOf } from '../../src/star/tasks/arithmetic';
import { arithmeticTask } from '../../src/star/tasks/arithmetic_task';
import type { FilterOutput, RationalizeOutput, SeedOutput } from '../../src/star/types';
import { rationaleRows } from '../../src/worker/records';
import { microConfig } from '../storage/fixtures';
import { CFG, FakeEngine, parsePrompt, run, task } from './fake_engine';

const key = (p: Problem) => `${p.a}+${p.b}`;

describe('the seed phase trains to mastery', () => {
  const cfg: StarConfig = { ...CFG, seedSteps: 20, seedTarget: 0.99, seedCheckEvery: 2, seedCheckSize: 30, iterations: 1 };

  it('checks held-out seed-range accuracy every seedCheckEvery steps and stops at the first check that reaches the target', async () => {
    const engine = new FakeEngine();
    engine.stepsToLearn = 5; // the fake solves its seed range from step 5 on
    const { summary, store } = await run(cfg, { engine });
    const seed = (await store.getPhase<SeedOutput>(0, 'seed'))!;
    expect(seed.checks!.map((c) => [c.step, c.accuracy])).toEqual([[2, 0], [4, 0], [6, 1]]);
    expect(seed).toMatchObject({ steps: 6, mastered: true });
    expect(engine.finetuneCalls[0].steps).toBe(20); // asked for the cap, stopped early
    expect(summary.iterations[0].trainSteps).toBe(6);
    expect(Object.keys(seed.checks![0].byCategory).sort()).toEqual(['1', '2']); // the seed range only
  });

  it('with hinted longer seed examples, also waits until the model follows the hint on held-out longer problems', async () => {
    const hintCfg: StarConfig = { ...cfg, seedHinted: 6, seedHintMaxDigits: 3, seedHintTarget: 0.9, filter: 'rationale' };
    const engine = new FakeEngine();
    engine.stepsToLearn = 3;
    const { store } = await run(hintCfg, { engine, task: arithmeticTask(hintCfg) });
    const seed = (await store.getPhase<SeedOutput>(0, 'seed'))!;
    expect(seed.checks!.map((c) => [c.step, c.accuracy, c.hinted?.accuracy])).toEqual([[2, 0, 0], [4, 1, 1]]);
    expect(seed).toMatchObject({ steps: 4, mastered: true });
    expect(Object.keys(seed.checks![0].hinted!.byCategory)).toEqual(['3']); // longer than the seed range only
    // The two checks' hinted generations come first (iteration 1's rationalization follows them).
    const hintedCalls = engine.generateCalls.filter((c) => c.prompts.some((p) => parsePrompt(p).hinted)).slice(0, 2);
    for (const c of hintedCalls) {
      expect(c.prompts).toHaveLength(hintCfg.seedCheckSize);
      expect(c.prompts.every((p) => parsePrompt(p).hinted && parsePrompt(p).p.digits === 3)).toBe(true);
    }
    // Without hinted seed examples there is no hint-following to wait for.
    const plain = await run(cfg, { engine: Object.assign(new FakeEngine(), { stepsToLearn: 3 }) });
    expect((await plain.store.getPhase<SeedOutput>(0, 'seed'))!.checks!.every((c) => c.hinted === undefined)).toBe(true);
  });

  it('trains to the cap and says so when the target is never reached', async () => {
    const engine = new FakeEngine();
    engine.stepsToLearn = 1000;
    const { store } = await run(cfg, { engine });
    const seed = (await store.getPhase<SeedOutput>(0, 'seed'))!;
    expect(seed).toMatchObject({ steps: 20, mastered: false });
    expect(seed.checks!.map((c) => c.step)).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
  });

  it('without a target trains exactly seedSteps and records no checks', async () => {
    const { store } = await run({ ...cfg, seedTarget: 0 });
    const seed = (await store.getPhase<SeedOutput>(0, 'seed'))!;
    expect(seed.steps).toBe(20);
    expect(seed.checks).toBeUndefined();
  });
});

describe('the rationale filter', () => {
  it('keeps hinted answers with wrong scratchpads under "answer", drops them under "rationale", and counts both', async () => {
    const sloppy = () => Object.assign(new FakeEngine(), { sloppyHints: true });
    const byAnswer = await run({ ...CFG, filter: 'answer' }, { engine: sloppy() });
    const byRationale = await run({ ...CFG, filter: 'rationale' }, { engine: sloppy() });
    const a = byAnswer.summary.iterations[1];
    const r = byRationale.summary.iterations[1];
    expect(a.rationalized).toBeGreaterThan(0);
    expect(a.rationalizedAnswers).toBe(a.rationalized);
    expect(r.rationalized).toBe(0);
    expect(r.rationalizedAnswers).toBe(a.rationalized); // the same answers were right...
    expect(r.correct).toBe(a.correct); // ...and the unaided ones had right scratchpads
    expect(r.correctAnswers).toBe(r.correct);
    for (const k of (await byAnswer.store.getPhase<RationalizeOutput>(1, 'rationalize'))!.kept) {
      expect(k.rationale).not.toBe(scratchpad(parsePrompt(k.prompt).p)); // what the answer filter lets through
    }
  });

  it('refuses the rationale filter for a task that cannot check rationales', async () => {
    const { isRationaleCorrect: _, ...answersOnly } = task;
    await expect(run({ ...CFG, filter: 'rationale' }, { task: answersOnly })).rejects.toThrow(/filter 'rationale' needs a task that checks rationales/);
  });

  it('records what was kept per digit count', async () => {
    const { summary } = await run(CFG);
    const r = summary.iterations[1];
    const total = Object.values(r.keptByCategory).reduce((n, c) => n + c.correct + c.rationalized, 0);
    expect(total).toBe(r.trainExamples);
    expect(r.keptByCategory['3']).toEqual({ correct: 0, rationalized: r.rationalized }); // the base solves 1-2 digits
  });
});

describe('hint replay', () => {
  it('trains every kept example under its plain and its hinted prompt, and stores only the plain one', async () => {
    const { engine, store, summary } = await run({ ...CFG, hintReplay: true });
    for (const [i, call] of engine.finetuneCalls.slice(1).entries()) {
      const n = call.examples.length / 2;
      const plain = call.examples.slice(0, n);
      const hinted = call.examples.slice(n);
      expect(plain.every((ex) => !parsePrompt(ex.prompt).hinted)).toBe(true);
      expect(hinted.every((ex) => parsePrompt(ex.prompt).hinted)).toBe(true);
      expect(hinted.map((ex) => ex.target)).toEqual(plain.map((ex) => ex.target));
      expect(hinted.map((ex) => problemPrompt(parsePrompt(ex.prompt).p))).toEqual(plain.map((ex) => ex.prompt));
      expect(summary.iterations[i + 1].trainExamples).toBe(call.examples.length);
      const rat = (await store.getPhase<RationalizeOutput>(i + 1, 'rationalize'))!;
      for (const k of rat.kept) expect(parsePrompt(k.prompt).hinted).toBe(false);
    }
  });
});

describe('accumulation', () => {
  it('trains each fine-tune on every example kept so far, the newest rationale per problem', async () => {
    const cfg: StarConfig = { ...CFG, accumulate: true };
    const { engine, store } = await run(cfg);
    const keptAt = async (it: number) => [
      ...(await store.getPhase<FilterOutput>(it, 'filter'))!.kept, ...(await store.getPhase<RationalizeOutput>(it, 'rationalize'))!.kept,
    ];
    const union = new Map<string, string>();
    for (const it of [1, 2, 3]) {
      for (const k of await keptAt(it)) union.set(JSON.stringify(k.problem), k.rationale);
      const trained = engine.finetuneCalls[it].examples;
      expect(trained).toHaveLength(union.size);
      expect(new Map(trained.map((ex) => [JSON.stringify(task.toJSON(parsePrompt(ex.prompt).p)), ex.target]))).toEqual(union);
    }
    expect(engine.finetuneCalls[3].examples.length).toBeGreaterThan((await keptAt(3)).length);
    const plain = await run(CFG);
    expect(plain.engine.finetuneCalls[3].examples).toHaveLength((await keptAt(3)).length); // the same kept phases: off, this iteration's only
  });
});

describe('frontier sampling', () => {
  it('draws more of the digit counts the last model fails', () => {
    const cfg: StarConfig = { ...CFG, trainSize: 200, poolSize: 2000, sampling: 'frontier' };
    const pool = trainingPool(cfg, task);
    const prev = { accuracy: 0.5, tokensGenerated: 0, seconds: 0, byCategory: { 1: { correct: 10, total: 10 }, 2: { correct: 10, total: 10 }, 3: { correct: 0, total: 10 }, 4: { correct: 0, total: 10 } } };
    const weights = sampleWeights(cfg, prev)!;
    expect(weights).toEqual({ 1: 0.05, 2: 0.05, 3: 1, 4: 1 });
    const frontier = iterationSample(cfg, pool, 1, weights, (p) => String(p.digits));
    const uniform = iterationSample(cfg, pool, 1);
    const short = (ps: Problem[]) => ps.filter((p) => p.digits <= 2).length;
    expect(frontier).toHaveLength(200);
    expect(new Set(frontier.map(key)).size).toBe(new Set(frontier).size);
    expect(short(uniform)).toBeGreaterThan(70);
    expect(short(frontier)).toBeLessThan(20);
    expect(short(frontier)).toBeGreaterThan(0); // the floor keeps a share of what is mastered
    expect(sampleWeights({ ...cfg, sampling: 'uniform' }, prev)).toBeUndefined();
  });

  it('the rationale browser lists the problems a frontier iteration drew', async () => {
    const cfg: StarConfig = { ...CFG, sampling: 'frontier' };
    const { engine, store } = await run(cfg);
    // After the first fine-tune: iteration 1's evaluation, then iteration 2's generation (then its rationalization).
    const plain = engine.generateCalls.filter((c) => c.finetunesBefore === 2 && c.prompts.every((p) => !parsePrompt(p).hinted)).flatMap((c) => c.prompts);
    const asked = plain.slice(cfg.evalSize);
    expect(asked).toHaveLength(cfg.trainSize);
    const rows = await rationaleRows({ ...microConfig(), star: cfg }, store, 2);
    expect(new Set(rows.filter((r) => r.source === 'generated').map((r) => r.prompt))).toEqual(new Set(asked));
  });

  it('a frontier run draws each iteration by the previous evaluation, and replays to the same summary', async () => {
    const cfg: StarConfig = { ...CFG, sampling: 'frontier' };
    const first = await run(cfg);
    expect(first.summary.iterations[1].generated).toBe(cfg.trainSize);
    const again = await run(cfg, { store: first.store }); // every phase read back: the same samples
    expect(again.summary).toEqual(first.summary);
    expect(again.engine.generateCalls).toHaveLength(0);
  });
});

describe("the 'epochs' step schedule", () => {
  it('follows the size of what was kept, clamped to [min, max]', async () => {
    const steps = { kind: 'epochs' as const, epochs: 2, min: 3, max: 9 };
    expect(stepsForIteration({ steps }, 1, { examples: 20, batch: 8 })).toBe(5);
    expect(stepsForIteration({ steps }, 4, { examples: 1, batch: 8 })).toBe(3);
    expect(stepsForIteration({ steps }, 1, { examples: 1000, batch: 8 })).toBe(9);
    expect(() => stepsForIteration({ steps }, 1)).toThrow(/needs the example count/);
    const { engine, summary } = await run({ ...CFG, steps: { kind: 'epochs', epochs: 2, min: 1, max: 1000 } });
    for (const r of summary.iterations.slice(1)) expect(r.trainSteps).toBe(Math.max(1, Math.round((2 * r.trainExamples) / engine.trainBatch)));
  });

  it('validates its fields', () => {
    expect(() => validateStarConfig({ ...CFG, steps: { kind: 'epochs', epochs: 0, min: 1, max: 2 } })).toThrow(/steps.epochs/);
    expect(() => validateStarConfig({ ...CFG, steps: { kind: 'epochs', epochs: 1, min: 5, max: 2 } })).toThrow(/steps.min and steps.max/);
    expect(() => validateStarConfig({ ...CFG, filter: 'vibes' as never })).toThrow(/filter must be one of answer, rationale/);
    expect(() => validateStarConfig({ ...CFG, sampling: 'edge' as never })).toThrow(/sampling must be one of uniform, frontier/);
    expect(() => validateStarConfig({ ...CFG, seedTarget: 99 })).toThrow(/seedTarget must be a fraction/);
  });
});

describe('held-out problems', () => {
  it('every problem of two digits or more belongs to one split, about a tenth each for eval and check', () => {
    const all = sampleProblems(20000, { minDigits: 2, maxDigits: 5, seed: 4 });
    const share = (s: string) => all.filter((p) => splitOf(p) === s).length / all.length;
    expect(share('eval')).toBeGreaterThan(0.08);
    expect(share('eval')).toBeLessThan(0.12);
    expect(share('check')).toBeGreaterThan(0.08);
    expect(share('check')).toBeLessThan(0.12);
    expect(splitOf(makeProblem(3, 4))).toBe('train'); // one digit: every split draws from all 81
    for (const split of ['eval', 'check', 'train'] as const) {
      const drawn = sampleProblems(500, { minDigits: 1, maxDigits: 5, seed: 9, split });
      expect(drawn.every((p) => p.digits === 1 || splitOf(p) === split)).toBe(true);
    }
  });

  it('the pool, the seed set and the seed checks never hold an evaluation problem, whatever the seeds and ranges', async () => {
    const cfg: StarConfig = { ...CFG, evalSize: 300, poolSize: 2000, trainSize: 100, seedTarget: 0.99, seedCheckEvery: 2, seedSteps: 4, iterations: 1 };
    const evalSet = evaluationSet(cfg, task);
    const held = new Set(evalSet.filter((p) => p.digits > 1).map(key));
    const other = arithmeticTask({ ...cfg, minDigits: 2, maxDigits: 6 }).trainProblems(3000, 77);
    for (const ps of [trainingPool(cfg, task), other]) expect(ps.filter((p) => held.has(key(p)))).toEqual([]);
    const engine = new FakeEngine();
    const { summary } = await run(cfg, { engine });
    const seedSet = engine.finetuneCalls[0].examples.map((ex) => parsePrompt(ex.prompt).p);
    const checked = engine.generateCalls[0].prompts.map((pr) => parsePrompt(pr).p); // the first mastery check
    for (const ps of [seedSet, checked]) expect(ps.filter((p) => held.has(key(p)))).toEqual([]);
    expect(checked.every((p) => p.digits === 1 || splitOf(p) === 'check')).toBe(true);
    // One digit: the pool shares problems with the evaluation set, and the run counts them.
    const pool = trainingPool(cfg, task);
    const all = new Set(evalSet.map(key));
    expect(summary.evalOverlap).toBe(pool.filter((p) => all.has(key(p))).length);
    expect(summary.evalOverlap).toBeGreaterThan(0);
    expect(pool.filter((p) => all.has(key(p))).every((p) => p.digits === 1)).toBe(true);
  });
});

describe('configs stored before the recipe settings existed', () => {
  it('are upgraded to the behaviour they ran with, and resume', async () => {
    const { filter: _f, hintReplay: _h, sampling: _s, seedTarget: _t, seedCheckEvery: _e, seedCheckSize: _c, seedHinted: _n, seedHintMaxDigits: _m, ...old } = CFG;
    const upgraded = upgradeStarConfig(structuredClone(old) as StarConfig);
    expect(upgraded).toMatchObject({ filter: 'answer', hintReplay: false, sampling: 'uniform', seedTarget: 0, seedHinted: 0, seedHintMaxDigits: CFG.seedMaxDigits });
    expect(() => validateStarConfig(structuredClone(old) as StarConfig)).not.toThrow();
    const store = new MemoryStore();
    await store.putJSON('star-config', old);
    const { summary } = await run({ ...CFG, filter: 'answer', seedHintMaxDigits: CFG.seedMaxDigits }, { store });
    expect(summary.iterations).toHaveLength(CFG.iterations + 1);
  });
});
