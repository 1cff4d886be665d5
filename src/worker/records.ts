// What a run's stored phases say, read back by the STaR loop's own code: iteration records come from
// replaying runStar over the store (every phase is found there, so no engine runs and nothing is
// written), and an iteration's rationales are matched to its problems, which are re-drawn from the
// config's seeds exactly as the loop drew them.

import { iterationSample, runStar, trainingPool } from '../star/loop';
import type { RunConfig } from '../star/run_config';
import type { Problem } from '../star/tasks/arithmetic';
import { arithmeticTask } from '../star/tasks/arithmetic_task';
import type { FilterOutput, GenerateOutput, IterationRecord, RationalizeOutput, RunStore, StarEngine, TaskAdapter } from '../star/types';
import type { RationaleRow } from './api';

export function taskFor(cfg: RunConfig): TaskAdapter<Problem> {
  return arithmeticTask(cfg.star);
}

/** Reads through to `store`; writes go nowhere. */
function readOnly(store: RunStore): RunStore {
  return {
    getPhase: (it, phase) => store.getPhase(it, phase),
    getWeights: (name) => store.getWeights(name),
    getJSON: (key) => store.getJSON(key),
    putPhase: async () => {},
    putWeights: async () => {},
    putJSON: async () => {},
  };
}

const missing = (): never => {
  throw new Error('replay reached a phase that is not stored');
};
const NO_ENGINE: StarEngine = { initRandom: missing, generate: missing, finetune: missing, saveWeights: missing, loadWeights: missing };

/** Records of the iterations whose evaluation is stored (0..n, in order), as the loop computes them. */
export async function completedRecords(cfg: RunConfig, store: RunStore): Promise<IterationRecord[]> {
  let n = -1;
  while (n < cfg.star.iterations && (await store.getPhase(n + 1, 'evaluate')) !== undefined) n++;
  if (n < 0) return [];
  try {
    const summary = await runStar({ ...cfg.star, iterations: n }, { task: taskFor(cfg), engine: NO_ENGINE, store: readOnly(store), now: () => 0 });
    return summary.iterations;
  } catch {
    return []; // a store that does not hold what its evaluations imply: show no records rather than wrong ones
  }
}

/**
 * Every rationale of iteration `it`: one per problem of its sample (generated, right or wrong), then the
 * failures that rationalization rescued (hinted, kept). Empty for iteration 0 and the direct baseline.
 */
export async function rationaleRows(cfg: RunConfig, store: RunStore, it: number): Promise<RationaleRow[]> {
  if (it < 1) return [];
  const gen = await store.getPhase<GenerateOutput>(it, 'generate');
  const filt = await store.getPhase<FilterOutput>(it, 'filter');
  if (!gen || !filt) return [];
  const rat = await store.getPhase<RationalizeOutput>(it, 'rationalize');
  const task = taskFor(cfg);
  const sample = iterationSample(cfg.star, trainingPool(cfg.star, task), it);
  const failed = new Set(filt.failures);
  const expected = (p: Problem) => task.answerOf(task.directTarget(p));
  const rows: RationaleRow[] = sample.map((p, i) => ({
    iteration: it, source: 'generated', correct: !failed.has(i), category: task.category(p),
    prompt: task.prompt(p, false), rationale: gen.completions[i] ?? '', answer: task.answerOf(gen.completions[i] ?? ''), expected: expected(p),
  }));
  const byProblem = new Map(filt.failures.map((i) => [JSON.stringify(task.toJSON(sample[i])), sample[i]]));
  for (const k of rat?.kept ?? []) {
    const p = byProblem.get(JSON.stringify(k.problem));
    rows.push({
      iteration: it, source: 'rationalized', correct: true, category: p ? task.category(p) : '?',
      prompt: k.prompt, rationale: k.rationale, answer: k.answer, expected: p ? expected(p) : k.answer,
    });
  }
  return rows;
}
