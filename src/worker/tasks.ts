// How the worker runs each task of the registry (../star/tasks/registry.ts): estimating a config, preparing a
// run to start (the config it starts with, and what is stored beside it) and opening its engine. engine.ts asks
// these instead of branching on the task name; a new task adds its entry here.

import { describeModel } from '../hub/load';
import type { RunConfig } from '../star/run_config';
import type { AnyRunConfig, TaskName } from '../star/run_configs';
import { loadShipped } from '../star/shipped';
import type { CsqaRunConfig } from '../star/tasks/csqa_run';
import { type Db, keys, read } from '../storage/db';
import type { RunMeta } from '../storage/runs';
import type { CsqaFiles, EngineEvent, Estimate } from './api';
import type { CsqaInputs } from './csqa';
import { calibrateCsqa, csqaCalibrationKey } from './csqa_estimate';
import type { GpuBackend } from './engine';
import { type Calibration, calibrate, calibrationKey, estimateRun, type Limits } from './estimate';
import type { OpenedEngine } from './session';

/** What the worker's task entries share: the database, the device's stored speeds, the CSQA inputs, a fetch, a clock. */
export interface WorkerCtx {
  db: Db;
  calibFor(key: string): Promise<Calibration | null>;
  csqa: CsqaInputs;
  fetchBytes(url: URL): Promise<Uint8Array>;
  now(): number;
}

/** A config checked for this GPU: why it cannot run, or the config it runs with and what to store beside it. */
export interface Prepared<C> {
  refusal: string | null;
  config: C;
  /** Writes what the run needs besides its config (CSQA: its questions), once the run exists. */
  store?(runId: string): Promise<void>;
}

export interface WorkerTask<C extends AnyRunConfig> {
  estimate(x: WorkerCtx, cfg: C, files: CsqaFiles | undefined, limits: Limits | null): Promise<Estimate>;
  prepare(x: WorkerCtx, cfg: C, files: CsqaFiles | undefined, limits: Limits): Promise<Prepared<C>>;
  /** The run's engine, with its model loaded (emitting progress) and how a finished iteration calibrates the device. */
  open(x: WorkerCtx, g: GpuBackend, meta: RunMeta, cfg: C, emit: (e: EngineEvent) => void, signal: AbortSignal): Promise<OpenedEngine>;
}

/** Download progress at most this often per file (but always its end). */
const PROGRESS_EVERY_MS = 100;

const ARITHMETIC: WorkerTask<RunConfig> = {
  async estimate(x, cfg, _files, limits) {
    return estimateRun(cfg, limits, await x.calibFor(calibrationKey(cfg)));
  },
  async prepare(_x, cfg, _files, limits) {
    return { refusal: estimateRun(cfg, limits, null).refusal, config: cfg };
  },
  async open(x, g, meta, cfg, emit) {
    const runId = meta.id;
    // A shipped base: read once per session, but stored only while the run has no base yet (see session.ts).
    let base: Uint8Array | undefined;
    if (cfg.base !== 'scratch' && (await read<unknown>(x.db, keys.weights(runId, 'base'))) === undefined) {
      emit({ kind: 'model', runId, state: 'loading', text: `Loading the base model (${cfg.base.shipped})…` });
      base = await loadShipped(cfg.base, x.fetchBytes);
      emit({ kind: 'model', runId, state: 'ready', text: `Base model ${cfg.base.shipped}: trained ahead of time, checked (SHA-256 ${cfg.base.sha256.slice(0, 12)}…)` });
    }
    return { engine: g.createEngine(cfg), base, calibration: (r) => {
      const value = calibrate(cfg, r);
      return value && { key: calibrationKey(cfg), value };
    } };
  },
};

const csqaPrepare = (x: WorkerCtx, cfg: CsqaRunConfig, files: CsqaFiles | undefined, limits: Limits | null) =>
  x.csqa.prepare(cfg, files, limits, (c) => x.calibFor(csqaCalibrationKey(c)));

const CSQA: WorkerTask<CsqaRunConfig> = {
  async estimate(x, cfg, files, limits) {
    return (await csqaPrepare(x, cfg, files, limits)).estimate;
  },
  async prepare(x, cfg, files, limits) {
    const prepared = await csqaPrepare(x, cfg, files, limits);
    const { refusal } = prepared.estimate;
    if (refusal) return { refusal, config: cfg };
    return {
      refusal: null,
      config: prepared.estimate.csqa!.config, // capped at the questions there are
      store: (runId) => x.csqa.store(x.db, runId, files, prepared),
    };
  },
  async open(x, g, meta, cfg, emit, signal) {
    const runId = meta.id;
    emit({ kind: 'model', runId, state: 'loading', text: `Loading ${cfg.model}…` });
    const last = new Map<string, number>();
    const model = await x.csqa.load(x.db, runId, cfg, g.limits, signal, (p) => {
      const t = x.now();
      if (p.loaded < p.total && t - (last.get(p.file) ?? -Infinity) < PROGRESS_EVERY_MS) return;
      last.set(p.file, t);
      emit({ kind: 'download', runId, file: p.file, loaded: p.loaded, total: p.total, cached: p.cached });
    });
    emit({ kind: 'model', runId, state: 'ready', text: `${model.source}: ${describeModel(model.cfg, model.memory)}` });
    const engine = g.createCsqaEngine(cfg, model);
    const modelCfg = model.cfg; // not the model: its tensors (on the GPU now) may be collected
    return { engine, calibration: (r) => {
      const value = calibrateCsqa(cfg, modelCfg, r);
      return value && { key: csqaCalibrationKey(cfg), value };
    } };
  },
};

const WORKER_TASKS: { [K in TaskName]: WorkerTask<Extract<AnyRunConfig, { task: K }>> } = {
  arithmetic: ARITHMETIC,
  csqa: CSQA,
};

/** The worker's entry for a config's task (validated configs only: the registry refused unknown tasks). */
export function workerTask(cfg: AnyRunConfig): WorkerTask<AnyRunConfig> {
  return WORKER_TASKS[cfg.task] as unknown as WorkerTask<AnyRunConfig>;
}
