// The task registry: what each task is, looked up by the name a run config carries (`cfg.task`). Code that
// must tell tasks apart asks the registry instead of comparing names (the task modules:
// ./arithmetic/task.ts, ./csqa/task.ts). A new task is a module of its own and one line below.

import type { ModelConfig } from '../../model/config';
import type { AnyRunConfig, TaskName } from '../run_configs';
import type { PhaseName, RunStore, TaskAdapter } from '../types';
import { ARITHMETIC } from './arithmetic/task';
import { CSQA } from './csqa/task';

/** What the rest of the app needs to know of a task, for a run config `C` of that task. */
export interface TaskInfo<C extends AnyRunConfig = AnyRunConfig> {
  name: C['task'];
  /** "Arithmetic": the start form's choice, tables. */
  title: string;
  /** The start form's line under the title. */
  blurb: string;
  /** What accuracy is broken down by: "Digits" (the rationale browser's filter). */
  categoryName: string;
  /** The heatmap's title: "Accuracy (%) by digit count". */
  heatmapTitle: string;
  /** Throws one error naming every bad field of a stored, imported or typed config. */
  validate(cfg: C): void;
  /** One line about a run's config (the live view's header). */
  describe(cfg: C): string;
  /** What the run covers, in a cell of the comparison table: "1–3 digits". */
  scope(cfg: C): string;
  /** The model part of a run's default name. */
  modelLabel(cfg: C): string;
  /** Whether its rationales are checked step by step under the 'rationale' filter (the explain panel says so). */
  checksRationales(cfg: C): boolean;
  /**
   * The run's task adapter as the loop ran it, with the expected answer of a problem as text (the record and
   * rationale views), from the config and what is stored with the run; null when that is missing.
   */
  runTask(cfg: C, store: Pick<RunStore, 'getJSON'>): Promise<RunTask | null>;
  /**
   * Problems per iteration: the sample size, which a task whose problems are stored with the run (`stored`, its
   * questions) caps at its pool; null when that depends on data that is not there.
   */
  sampleSize(cfg: C, stored?: { train: unknown[] }): number | null;
  /** The model's shapes when the run config alone fixes them (a preset trained here); null for a pretrained model. */
  presetModel(cfg: C): ModelConfig | null;
  /**
   * The last model as Hugging Face tooling reads it: (file name, JSON value or bytes) pairs, given its weights and
   * the model's own config.json where the run stored one.
   */
  finalModel(cfg: C, weights: Uint8Array, hfConfig: unknown): [string, unknown][];
  /** What each phase does on this task, titled: as a run with config `cfg` runs it, or as the default one would. */
  phases(cfg?: C): Record<PhaseName, { title: string; text: string }>;
  /** The paper's result on this task, which a run reproduces: text before and after the figure, and a note on ours. */
  paper: { before: string; result: string; after: string; note: string };
}

/** A run's task adapter, and a problem's expected answer as text. */
export interface RunTask {
  task: TaskAdapter<unknown>;
  expected(p: unknown): string | null;
}

type Registry = { [K in TaskName]: TaskInfo<Extract<AnyRunConfig, { task: K }>> };

const TASKS: Registry = {
  arithmetic: ARITHMETIC,
  csqa: CSQA,
};

export const TASK_NAMES = Object.keys(TASKS) as TaskName[];

/** The task named `name`, or an error listing the known ones. */
export function taskNamed(name: unknown): TaskInfo {
  if (typeof name !== 'string' || !Object.hasOwn(TASKS, name)) throw new Error(`Unknown task ${JSON.stringify(name)}. Known tasks: ${TASK_NAMES.join(', ')}.`);
  return TASKS[name as TaskName] as unknown as TaskInfo;
}

/** The task of a run config. */
export function taskOf(cfg: AnyRunConfig): TaskInfo {
  return taskNamed(cfg.task);
}
