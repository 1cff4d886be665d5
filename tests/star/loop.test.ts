import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STAR_PRESETS, type StarConfig, stepsForIteration, validateStarConfig, withMode } from '../../src/star/config';
import { iterationSample, trainingPool } from '../../src/star/draws';
import { comparisonTable, curveTable } from '../../src/star/report';
import { FolderStore } from '../../src/star/stores/files';
import { MemoryStore } from '../../src/star/stores/memory';
import { makeProblem, type Problem, problemPrompt, scratchpad } from '../../src/star/tasks/arithmetic';
import { arithmeticEnd, arithmeticStop } from '../../src/star/tasks/arithmetic_task';
import { arithmeticTokenizer as tok } from '../../src/star/tasks/char_tokenizer';
import type { FilterOutput, Mode, RationalizeOutput, StarEvent, StarSummary } from '../../src/star/types';
import { CFG, FakeEngine, parsePrompt, run, task } from './fake_engine';

const digitsOf = (ex: { prompt: string }) => parsePrompt(ex.prompt).p.digits;
const count = (ps: Problem[], f: (d: number) => boolean) => ps.filter((p) => f(p.digits)).length;
const evalPrompts = new Set(task.evalProblems(CFG.evalSize, CFG.evalSeed).map((p) => problemPrompt(p)));

describe('runStar (star)', () => {
  it('filters exactly-correct rationales and rationalizes failures with the hint', async () => {
    const { summary, store } = await run(CFG);
    const pool = trainingPool(CFG, task);
    for (const it of [1, 2, 3]) {
      const sample = iterationSample(CFG, pool, it);
      const level = it + 1; // M_{it-1}: the base solves 2 digits, each iteration adds one
      const rec = summary.iterations[it];
      expect(rec).toMatchObject({
        iteration: it,
        generated: CFG.trainSize,
        correct: count(sample, (d) => d <= level),
        rationalized: count(sample, (d) => d === level + 1),
        failed: count(sample, (d) => d > level + 1),
      });
      expect(rec.trainExamples).toBe(rec.correct + rec.rationalized);
      const filt = (await store.getPhase<FilterOutput>(it, 'filter'))!;
      const rat = (await store.getPhase<RationalizeOutput>(it, 'rationalize'))!;
      expect(filt.kept.every((k) => k.source === 'generated' && digitsOf(k) <= level)).toBe(true);
      expect(rat.kept.every((k) => k.source === 'rationalized' && digitsOf(k) === level + 1)).toBe(true);
      expect(filt.failures).toHaveLength(CFG.trainSize - rec.correct);
    }
    expect(summary.iterations[1].rationalized).toBeGreaterThan(0);
    expect(summary.iterations[1].failed).toBeGreaterThan(0);
    expect(summary.iterations.map((r) => r.evalAccuracyByDigits)).toEqual([
      { 1: 1, 2: 1, 3: 0, 4: 0 },
      { 1: 1, 2: 1, 3: 1, 4: 0 },
      { 1: 1, 2: 1, 3: 1, 4: 1 },
      { 1: 1, 2: 1, 3: 1, 4: 1 },
    ]);
    expect(summary).toMatchObject({ task: 'arithmetic', mode: 'star', bestIteration: 2, bestAccuracy: 1, finalAccuracy: 1, stoppedBy: 'iterations' });
  });

  it('never lets a hint reach a training example', async () => {
    const { engine, store } = await run(CFG);
    const hinted = engine.generateCalls.flatMap((c) => c.prompts).filter((p) => parsePrompt(p).hinted);
    expect(hinted.length).toBeGreaterThan(0); // rationalization did use hints...
    const trained = engine.finetuneCalls.slice(1).flatMap((c) => c.examples); // (the seed set teaches hints on purpose)
    expect(trained.some((ex) => digitsOf(ex) === 3)).toBe(true); // ...and its rationales were trained on
    for (const ex of trained) expect(ex.prompt).toBe(problemPrompt(parsePrompt(ex.prompt).p, false));
    for (const it of [1, 2, 3]) {
      for (const k of (await store.getPhase<RationalizeOutput>(it, 'rationalize'))!.kept) expect(parsePrompt(k.prompt).hinted).toBe(false);
    }
  });

  it('starts every fine-tune from the base weights, bit for bit, and generates from the previous model', async () => {
    const { engine, store } = await run(CFG);
    const base = (await store.getWeights('base'))!;
    expect(engine.finetuneCalls).toHaveLength(4);
    for (const call of engine.finetuneCalls.slice(1)) expect(call.startedFrom).toEqual(base);
    expect(await store.getWeights('latest')).not.toEqual(base);
    // Iteration n generates and rationalizes (after n fine-tunes: seed, 1 .. n-1) with M_{n-1}, of level n + 1.
    for (const it of [1, 2, 3]) {
      const calls = engine.generateCalls.filter((c) => c.finetunesBefore === it && !c.prompts.every((p) => evalPrompts.has(p)));
      expect(calls.some((c) => c.prompts.some((p) => parsePrompt(p).hinted))).toBe(it < 3); // iteration 3 solves all
      for (const c of calls) expect(c.level).toBe(it + 1);
    }
  });

  it('follows both step schedules', async () => {
    expect([1, 2, 3, 4, 5].map((it) => stepsForIteration({ steps: { kind: 'multiply', start: 40, factor: 1.2 } }, it))).toEqual([40, 48, 58, 69, 83]);
    expect([1, 2, 3].map((it) => stepsForIteration({ steps: { kind: 'add', start: 10, increment: 5 } }, it))).toEqual([10, 15, 20]);
    expect(() => stepsForIteration(CFG, 0)).toThrow(/iteration must be an integer >= 1/);

    const add = await run({ ...CFG, steps: { kind: 'add', start: 2, increment: 3 } });
    expect(add.engine.finetuneCalls.map((c) => c.steps)).toEqual([CFG.seedSteps, 2, 5, 8]);
    expect(add.summary.iterations.map((r) => r.trainSteps)).toEqual([CFG.seedSteps, 2, 5, 8]);
    const mul = await run({ ...CFG, steps: { kind: 'multiply', start: 5, factor: 1.2 } });
    expect(mul.engine.finetuneCalls.map((c) => c.steps)).toEqual([CFG.seedSteps, 5, 6, 7]);
    expect(mul.summary.iterations[3].losses).toHaveLength(7);
    expect(mul.summary.iterations[3].finalLoss).toBeCloseTo(1 / 7);
  });

  it('stops when accuracy has not improved for `patience` iterations', async () => {
    const { summary } = await run({ ...CFG, iterations: 8, patience: 1 });
    expect(summary.iterations.map((r) => r.evalAccuracy).slice(2)).toEqual([1, 1]); // best at 2, no gain at 3
    expect(summary).toMatchObject({ stoppedBy: 'patience', bestIteration: 2 });
    expect(summary.iterations).toHaveLength(4);
    const patient = await run({ ...CFG, iterations: 5, patience: 3 });
    expect(patient.summary.iterations).toHaveLength(6); // 2 + 3 = 5: stops at the last iteration anyway
  });

  it('streams progress and samples, hinted only while rationalizing', async () => {
    const { events } = await run(CFG);
    const samples = events.filter((e) => e.kind === 'sample');
    expect(samples.every((e) => e.hinted === (e.phase === 'rationalize'))).toBe(true);
    expect(samples.every((e) => (e.done ? typeof e.correct === 'boolean' : e.correct === null))).toBe(true);
    const phases = new Set(events.filter((e) => e.kind === 'progress').map((e) => `${e.iteration}:${e.phase}`));
    expect([...phases]).toEqual(expect.arrayContaining(['0:seed', '0:evaluate', '1:generate', '1:rationalize', '1:finetune', '3:evaluate']));
  });

  it('writes every per-iteration field the CLI reads', async () => {
    const { summary, store } = await run(CFG);
    expect(Object.keys(summary.iterations[1]).sort()).toEqual(
      ['correct', 'correctAnswers', 'evalAccuracy', 'evalAccuracyByDigits', 'failed', 'keptByCategory', 'rationalizedAnswers', 'finalLoss', 'generated', 'iteration', 'losses', 'rationalized', 'seconds',
        'tokensGenerated', 'tokensPerSecond', 'tokensTrained', 'trainExamples', 'trainSteps'].sort(),
    );
    expect(summary.iterations[1].seconds).toEqual({ generate: 1, filter: 1, rationalize: 1, finetune: 1, evaluate: 1 });
    const r = summary.iterations[1];
    expect(r.tokensPerSecond).toBeCloseTo((r.tokensGenerated + r.tokensTrained) / 5);
    expect(await store.getJSON('summary')).toEqual(summary);
  });
});

describe('runStar (baselines)', () => {
  it('direct: trains prompt -> answer on the whole sample, generating only to evaluate', async () => {
    const cfg = withMode(CFG, 'direct');
    const { summary, engine } = await run(cfg);
    const pool = trainingPool(cfg, task);
    engine.finetuneCalls.slice(1).forEach((call, i) => {
      expect(call.examples).toEqual(iterationSample(cfg, pool, i + 1).map((p) => ({ prompt: problemPrompt(p), target: task.directTarget(p) })));
    });
    for (const c of engine.generateCalls) for (const p of c.prompts) expect(evalPrompts.has(p)).toBe(true);
    expect(summary.iterations.slice(1).every((r) => r.generated === 0 && r.trainExamples === CFG.trainSize)).toBe(true);
  });

  it('stores and trains under the task\'s trainPrompt when it has one (CSQA: the question without the few-shot prefix)', async () => {
    const bare = { ...task, trainPrompt: (p: Problem) => `\n${problemPrompt(p)}` };
    for (const mode of ['star', 'direct'] as const) {
      const { engine, store } = await run(withMode(CFG, mode), { task: bare });
      const trained = engine.finetuneCalls.slice(1).flatMap((c) => c.examples);
      expect(trained.length).toBeGreaterThan(0);
      for (const ex of trained) expect(ex.prompt.startsWith('\nInput:')).toBe(true);
      if (mode === 'star') {
        const kept = (await store.getPhase<RationalizeOutput>(1, 'rationalize'))!.kept;
        expect(kept.length).toBeGreaterThan(0);
        for (const k of kept) expect(k.prompt.startsWith('\nInput:')).toBe(true);
      }
      // Sampling still uses the task's own prompt.
      for (const c of engine.generateCalls) for (const p of c.prompts) expect(p.startsWith('Input:')).toBe(true);
    }
  });

  it('base: only iteration 0', async () => {
    const { summary, engine, store } = await run(withMode(CFG, 'base'));
    expect(summary.iterations).toHaveLength(1);
    expect(engine.finetuneCalls).toHaveLength(1);
    expect(engine.generateCalls.every((c) => c.prompts.every((p) => evalPrompts.has(p)))).toBe(true);
    expect((store as MemoryStore).phaseKeys()).toEqual(['0/seed', '0/evaluate']);
  });

  it('star-no-rationalization never prompts with a hint', async () => {
    const { summary, engine, store } = await run(withMode(CFG, 'star-no-rationalization'));
    for (const c of engine.generateCalls) for (const p of c.prompts) expect(parsePrompt(p).hinted).toBe(false);
    expect(summary.iterations.every((r) => r.rationalized === 0)).toBe(true);
    expect(await store.getPhase(1, 'rationalize')).toBeUndefined();
    expect(summary.iterations.map((r) => r.evalAccuracy)).toEqual(new Array(4).fill(summary.iterations[0].evalAccuracy)); // stuck at 2 digits
  });

  it('reuses a base model already in the store (one base shared by every mode)', async () => {
    const first = await run(CFG);
    const store = new MemoryStore();
    await store.putWeights('base', (await first.store.getWeights('base'))!);
    const { summary, engine } = await run(withMode(CFG, 'direct'), { store });
    expect(engine.log).not.toContain('initRandom');
    expect(summary.iterations[0]).toMatchObject({ trainSteps: 0, trainExamples: 0, evalAccuracy: first.summary.iterations[0].evalAccuracy });
  });
});

describe('runStar (resume and abort)', () => {
  const promptsOf = (e: FakeEngine) => e.generateCalls.map((c) => c.prompts);

  it('resumes after a crash inside fine-tuning without redoing finished phases', async () => {
    const whole = await run(CFG);
    const store = new MemoryStore();
    const crashing = new FakeEngine();
    crashing.crashFinetune = 2; // seed, iteration 1, iteration 2
    await expect(run(CFG, { engine: crashing, store })).rejects.toThrow(/crashed mid-finetune/);
    expect(await store.getPhase(2, 'rationalize')).toBeDefined();
    expect(await store.getPhase(2, 'finetune')).toBeUndefined();

    const resumed = await run(CFG, { store }); // a fresh engine, as after a restart
    expect(resumed.summary).toEqual(whole.summary);
    expect(resumed.engine.log.slice(0, 3)).toEqual(['loadWeights', 'finetune', 'saveWeights']); // straight to finetune 2
    expect(resumed.engine.finetuneCalls[0].startedFrom).toEqual(await store.getWeights('base'));
    // Together the two sessions generated exactly what one uninterrupted run did: nothing was redone.
    expect([...promptsOf(crashing), ...promptsOf(resumed.engine)]).toEqual(promptsOf(whole.engine));
    expect(resumed.engine.generateCalls[0].prompts.every((p) => evalPrompts.has(p))).toBe(true);
  });

  it('resuming at evaluate reloads the weights that iteration saved', async () => {
    const whole = await run(CFG);
    const store = new MemoryStore();
    const crashing = new FakeEngine();
    // The first call made with M_1 (level 3) is iteration 1's evaluation: make it crash.
    crashing.crashGenerate = whole.engine.generateCalls.findIndex((c) => c.level === 3);
    await expect(run(CFG, { engine: crashing, store })).rejects.toThrow(/device lost/);
    expect(await store.getPhase(1, 'finetune')).toBeDefined();
    const resumed = await run(CFG, { store });
    expect(resumed.engine.log.slice(0, 2)).toEqual(['loadWeights', 'generate']);
    expect(resumed.engine.generateCalls[0].level).toBe(3); // M_1, not the base
    expect(resumed.summary).toEqual(whole.summary);
  });

  it('stops on abort with nothing half-written, and a rerun finishes the same run', async () => {
    const whole = await run(CFG);
    const store = new MemoryStore();
    const ctrl = new AbortController();
    const onEvent = (e: StarEvent) => {
      if (e.kind === 'sample' && e.iteration === 1 && e.phase === 'generate') ctrl.abort();
    };
    await expect(run(CFG, { store, signal: ctrl.signal, onEvent })).rejects.toMatchObject({ name: 'AbortError' });
    expect(store.phaseKeys()).toEqual(['0/seed', '0/evaluate']);
    expect((await run(CFG, { store })).summary).toEqual(whole.summary);

    const engine = new FakeEngine();
    await expect(run(CFG, { engine, signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    expect(engine.log).toEqual([]);
  });

  it('refuses a store holding a different run, but lets it run longer', async () => {
    const { store, summary } = await run({ ...CFG, iterations: 2 });
    await expect(run({ ...CFG, seed: 99 }, { store })).rejects.toThrow(/different config \(seed\)/);
    const longer = await run({ ...CFG, iterations: 3 }, { store });
    expect(longer.summary.iterations.slice(0, 3)).toEqual(summary.iterations);
    expect(longer.engine.finetuneCalls).toHaveLength(1); // iteration 3 only
  });

  it('runs on a FolderStore and finds everything there on a rerun', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'star-loop-'));
    try {
      const first = await run(CFG, { store: new FolderStore(dir) });
      const lines = (await readFile(join(dir, 'iteration-1', 'rationales.jsonl'), 'utf8')).trimEnd().split('\n');
      expect(lines).toHaveLength(first.summary.iterations[1].trainExamples);
      expect(JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8'))).toEqual(first.summary);
      const again = await run(CFG, { store: new FolderStore(dir) });
      expect(again.summary).toEqual(first.summary);
      expect(again.engine.log).toEqual([]);
      // Every phase of the rerun says it was read from the store (typed, not only in its message); none of the first run's did.
      const progress = (events: StarEvent[]) => events.filter((e) => e.kind === 'progress');
      expect(progress(again.events).length).toBeGreaterThan(0);
      expect(progress(again.events).every((e) => e.kind === 'progress' && e.stored === true)).toBe(true);
      expect(progress(first.events).some((e) => e.kind === 'progress' && e.stored)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('config', () => {
  it('accepts every preset in every mode', () => {
    const modes: Mode[] = ['base', 'direct', 'star-no-rationalization', 'star'];
    for (const preset of Object.values(STAR_PRESETS)) for (const m of modes) expect(() => validateStarConfig(withMode(preset, m))).not.toThrow();
  });

  it('lists every problem, naming the field', () => {
    const bad = { ...CFG, trainSize: 100, poolSize: 50, minDigits: 3, maxDigits: 2, temperature: -1, rationalize: false, iteration: 3 } as StarConfig;
    let message = '';
    try {
      validateStarConfig(bad);
    } catch (e) {
      message = (e as Error).message;
    }
    for (const part of ['unknown field "iteration"', 'trainSize (100) exceeds poolSize (50)', 'minDigits (3) exceeds maxDigits (2)', 'temperature', 'rationalize is false but mode is "star"']) {
      expect(message).toContain(part);
    }
    expect(() => validateStarConfig({ ...CFG, steps: { kind: 'multiply', start: 0, factor: 0.5 } })).toThrow(/steps.start.*\n.*steps.factor/);
  });
});

describe('arithmetic task adapter', () => {
  const p = makeProblem(29, 57);

  it('knows where a completion ends', () => {
    const full = scratchpad(p);
    expect(arithmeticEnd(full + 'junk')).toBe(full.length);
    expect(arithmeticStop(full.slice(0, -1))).toBe(false); // answer line not yet ended
    expect(arithmeticStop('<scratch>\n2 9 + 5 7 , C: 0\n')).toBe(false);
    expect(arithmeticStop('8 6\n')).toBe(true); // a direct-baseline answer
    expect(task.end).toBe(arithmeticEnd);
  });

  it('gives enough tokens for the longest scratchpad and the EOS', () => {
    for (let d = 1; d <= 6; d++) {
      const nines = makeProblem(10 ** d - 1, 10 ** d - 1);
      expect(task.maxNewTokens(nines)).toBeGreaterThan(tok.encode(scratchpad(nines)).length + 1);
    }
  });

  it('seeds with plain and hinted prompts, half each, in the seed digit range', () => {
    const seed = task.seedExamples!(10, 1);
    expect(seed.filter((ex) => parsePrompt(ex.prompt).hinted)).toHaveLength(5);
    for (const ex of seed) {
      const { p: q } = parsePrompt(ex.prompt);
      expect(q.digits).toBeLessThanOrEqual(CFG.seedMaxDigits);
      expect(ex.target).toBe(scratchpad(q));
    }
    expect(task.answerOf(scratchpad(p))).toBe('86');
    expect(task.category(p)).toBe('2');
    expect(task.toJSON(p)).toEqual({ a: 29, b: 57 });
  });
});

describe('comparisonTable', () => {
  it('tabulates accuracy per digit count at each mode best iteration', async () => {
    const rows: { mode: string; summary: StarSummary }[] = [];
    for (const mode of ['base', 'star-no-rationalization', 'star'] as Mode[]) rows.push({ mode, summary: (await run(withMode(CFG, mode))).summary });
    const table = comparisonTable(rows);
    const lines = table.trimEnd().split('\n');
    expect(lines[1].split(/\s+/)).toEqual(['mode', 'iteration', '1', '2', '3', '4', 'overall']);
    expect(lines[3].split(/\s+/).slice(0, 6)).toEqual(['base', '0', '100.0', '100.0', '0.0', '0.0']);
    expect(lines[5].split(/\s+/).slice(0, 7)).toEqual(['star', '2', '100.0', '100.0', '100.0', '100.0', '100.0']);
    expect(comparisonTable(rows, { at: 'final' }).split('\n')[5]).toMatch(/^star\s+3\s/);
    // The curve: one row per iteration, one column per mode; base has iteration 0 only.
    const curve = curveTable(rows).trimEnd().split('\n').map((l) => l.trim().split(/\s+/));
    expect(curve[1]).toEqual(['iteration', 'base', 'star-no-rationalization', 'star']);
    expect(curve.slice(3).map((r) => r[0])).toEqual(['0', '1', '2', '3']);
    expect(curve[4][1]).toBe('-');
    const acc = (it: number, m: number) => (100 * rows[m].summary.iterations[it].evalAccuracy).toFixed(1);
    expect(curve[3].slice(1)).toEqual([acc(0, 0), acc(0, 1), acc(0, 2)]);
    expect(curve[6][3]).toBe(acc(3, 2));
  });
});
