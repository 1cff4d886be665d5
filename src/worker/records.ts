// What a run's stored phases say: iteration records are built from the stored phase outputs by the same
// function the loop uses (../star/iteration_record.ts), and an iteration's rationales are matched to its
// problems, which are re-drawn from the config's seeds exactly as the loop drew them, by the run's task as the
// registry builds it (../star/tasks/registry.ts: from the seeds alone, or from questions stored with the run).

import { iterationSample, sampleWeights, trainingPool } from '../star/draws';
import { storedRecords } from '../star/iteration_record';
import type { AnyRunConfig } from '../star/run_configs';
import { type RunTask, taskOf } from '../star/tasks/registry';
import type { EvaluateOutput, FilterOutput, GenerateOutput, IterationRecord, RationalizeOutput, RunStore } from '../star/types';
import type { RationaleRow } from './api';

/** The run's task, or null when what it needs is not stored (a CSQA archive written without its questions). */
export function taskFor(cfg: AnyRunConfig, store: RunStore): Promise<RunTask | null> {
  return taskOf(cfg).runTask(cfg, store);
}

/** Records of the iterations whose evaluation is stored (0..n, in order), from the stored phases (see iteration_record.ts). */
export function completedRecords(cfg: AnyRunConfig, store: RunStore): Promise<IterationRecord[]> {
  return storedRecords(store, cfg.star.mode === 'base' ? 0 : cfg.star.iterations);
}

/**
 * Every rationale of iteration `it`: one per problem of its sample (generated, right or wrong), then the
 * failures that rationalization rescued (hinted, kept). Empty for iteration 0 and the direct baseline.
 */
export async function rationaleRows(cfg: AnyRunConfig, store: RunStore, it: number): Promise<RationaleRow[]> {
  if (it < 1) return [];
  const gen = await store.getPhase<GenerateOutput>(it, 'generate');
  const filt = await store.getPhase<FilterOutput>(it, 'filter');
  if (!gen || !filt) return [];
  const rat = await store.getPhase<RationalizeOutput>(it, 'rationalize');
  const t = await taskFor(cfg, store);
  if (!t) return [];
  const { task, expected } = t;
  // The sample as the loop drew it: under 'frontier' sampling it depends on the previous iteration's evaluation.
  const prev = await store.getPhase<EvaluateOutput>(it - 1, 'evaluate');
  const sample = iterationSample(cfg.star, trainingPool(cfg.star, task), it, sampleWeights(cfg.star, prev), (p) => task.category(p));
  const failed = new Set(filt.failures);
  const shown = (p: unknown) => (task.trainPrompt ? task.trainPrompt(p) : task.prompt(p, false)); // without a few-shot prefix
  const rows: RationaleRow[] = sample.map((p, i) => ({
    iteration: it, source: 'generated', correct: !failed.has(i), category: task.category(p),
    prompt: shown(p), rationale: gen.completions[i] ?? '', answer: task.answerOf(gen.completions[i] ?? ''), expected: expected(p),
  }));
  const byProblem = new Map(filt.failures.map((i) => [JSON.stringify(task.toJSON(sample[i])), sample[i]]));
  for (const k of rat?.kept ?? []) {
    const p = byProblem.get(JSON.stringify(k.problem));
    rows.push({
      iteration: it, source: 'rationalized', correct: true, category: p !== undefined ? task.category(p) : '?',
      prompt: k.prompt, rationale: k.rationale, answer: k.answer, expected: p !== undefined ? expected(p) : k.answer,
    });
  }
  return rows;
}
