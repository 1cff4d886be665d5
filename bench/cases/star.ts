// STaR: wall time of an arithmetic run (iteration 0 = seed + evaluate, then one full iteration:
// generate, filter, rationalize, finetune, evaluate) on the GPU engine with an in-memory store, split
// by phase as the loop itself records it (src/star/loop.ts stamps every phase's seconds).
// Sizes: `micro` (the test preset, a 5k-parameter model) and `small` (the five preset scaled down, its base
// trained for 20 steps) run with a fixed-rule checker (halfSolvedTask below); `five` is the 1-5 digit run
// preset itself, unchanged (arithmetic-small from its shipped base, 1000 problems, an 'epochs' fine-tune)
// with the real checker: the run whose generation and fine-tuning times the target compares.

import type { Gpu } from '../../src/gpu/device';
import { runStar } from '../../src/star/loop';
import { type RunConfig, runConfig } from '../../src/star/run_config';
import { createRunEngine } from '../../src/star/run_engine';
import { MemoryStore } from '../../src/star/stores/memory';
import type { TaskAdapter } from '../../src/star/types';
import type { Problem } from '../../src/star/tasks/arithmetic';
import { arithmeticTask } from '../../src/star/tasks/arithmetic_task';
import type { CaseResult } from '../report';

export type StarSize = 'micro' | 'small' | 'five';
export const STAR_SIZES: readonly StarSize[] = ['micro', 'small', 'five'];

/** The run: `micro` is the test preset (a 5k-parameter model); `small` the five preset scaled down; `five` the five preset. */
export function starRun(size: StarSize): RunConfig {
  if (size === 'five') return runConfig('five', { iterations: 1 });
  if (size === 'micro') {
    const micro = runConfig('micro', { iterations: 1 });
    return { ...micro, star: { ...micro.star, seedSteps: 1 } };
  }
  const base = runConfig('five', { iterations: 1, fromScratch: true });
  return {
    ...base,
    star: { ...base.star, trainSize: 64, poolSize: 128, evalSize: 32, seedSize: 64, seedSteps: 20, maxDigits: 3, steps: { kind: 'add', start: 10, increment: 0 } },
    trainBatch: 16,
    genBatch: 64,
  };
}

/**
 * The arithmetic task with its checker replaced by a fixed rule: a problem counts as solved when a + b is
 * even, whatever the model wrote. A base model trained for a few steps solves nothing, so with the real
 * checker filter keeps nothing, rationalize keeps nothing and finetune is skipped: the iteration would
 * time almost nothing. With this rule about half the sample is kept by filter, the other half goes
 * through rationalize (and fails again), and finetune trains on the kept half: every phase runs at the
 * size a half-successful iteration has. Accuracies from this run mean nothing; only the seconds do.
 */
export function halfSolvedTask(opts: RunConfig['star']): TaskAdapter<Problem> {
  const task = arithmeticTask(opts);
  return { ...task, isCorrect: (p) => (p.a + p.b) % 2 === 0 };
}

export async function starCases(gpu: Gpu, size: StarSize): Promise<CaseResult[]> {
  const cfg = starRun(size);
  const engine = createRunEngine(gpu, cfg);
  const realChecker = size === 'five';
  const task = realChecker ? arithmeticTask(cfg.star) : halfSolvedTask(cfg.star);
  const summary = await runStar(cfg.star, { task, engine, store: new MemoryStore() });
  const params = {
    run: size, model: cfg.model, trainSize: cfg.star.trainSize, evalSize: cfg.star.evalSize, seedSteps: cfg.star.seedSteps,
    trainBatch: cfg.trainBatch, genBatch: cfg.genBatch,
  };
  const out: CaseResult[] = [];
  for (const rec of summary.iterations) {
    let total = 0;
    for (const [phase, seconds] of Object.entries(rec.seconds)) {
      if (seconds === undefined) continue;
      total += seconds;
      out.push({ name: `star ${size} iter ${rec.iteration} ${phase}`, group: 'star', value: seconds, unit: 's', seconds, params: { ...params, iteration: rec.iteration } });
    }
    out.push({
      name: `star ${size} iter ${rec.iteration} total`, group: 'star', value: total, unit: 's', seconds: total,
      params: {
        ...params, iteration: rec.iteration, kept: rec.correct, trainExamples: rec.trainExamples, trainSteps: rec.trainSteps,
        tokensGenerated: rec.tokensGenerated, tokensTrained: rec.tokensTrained,
      },
      note: realChecker
        ? 'the five run preset as the app and CLI run it (real checker); generation = generate + rationalize (+ evaluate), to set against finetune'
        : 'checker replaced by "a + b even" so every phase runs at full size (see bench/cases/star.ts)',
    });
  }
  return out;
}
