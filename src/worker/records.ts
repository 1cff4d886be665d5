// What a run's stored phases say: iteration records are built from the stored phase outputs by the same
// function the loop uses (../star/iteration_record.ts), and an iteration's rationales are matched to its
// problems, which are re-drawn from the config's seeds exactly as the loop drew them. An arithmetic run's
// problems come from its seeds alone; a CommonsenseQA run's are drawn from the questions stored with it
// ('csqa-questions').

import { iterationSample, sampleWeights, trainingPool } from '../star/draws';
import { storedRecords } from '../star/iteration_record';
import type { AnyRunConfig } from '../star/run_configs';
import { arithmeticTask } from '../star/tasks/arithmetic_task';
import { type CsqaProblem, csqaTask } from '../star/tasks/csqa';
import type { CsqaRunConfig } from '../star/tasks/csqa_run';
import type { EvaluateOutput, FilterOutput, GenerateOutput, IterationRecord, RationalizeOutput, RunStore, TaskAdapter } from '../star/types';
import type { CsqaQuestions } from '../storage/archive_check';
import type { RationaleRow } from './api';

export const QUESTIONS_DOC = 'csqa-questions';

/** A task as the record and rationale views need it: the adapter, and the expected answer as text. */
interface RunTask {
  task: TaskAdapter<unknown>;
  expected(p: unknown): string | null;
}

/** The CSQA task of a run config over its questions (the same options the session runs it with). */
export function csqaTaskFor(cfg: CsqaRunConfig, q: CsqaQuestions) {
  return csqaTask({ train: q.train, eval: q.eval, fewShot: cfg.fewShot, fewShotInTraining: cfg.fewShotInTraining, maxNewTokens: cfg.maxNewTokens });
}

/** The run's task, or null when a CSQA run's questions are not stored (an archive written without them). */
export async function taskFor(cfg: AnyRunConfig, store: RunStore): Promise<RunTask | null> {
  if (cfg.task === 'arithmetic') {
    const task = arithmeticTask(cfg.star) as TaskAdapter<unknown>;
    return { task, expected: (p) => task.answerOf(task.directTarget(p)) };
  }
  const q = await store.getJSON<CsqaQuestions>(QUESTIONS_DOC);
  if (!q) return null;
  const task = csqaTaskFor(cfg, q) as unknown as TaskAdapter<unknown>;
  return {
    task,
    expected: (p) => {
      const c = p as CsqaProblem;
      const right = c.choices.find((x) => x.label === c.answerKey);
      return `${c.answerKey.toLowerCase()}${right ? ` (${right.text})` : ''}`; // the label as answerOf writes it, then the text
    },
  };
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
