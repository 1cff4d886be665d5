// One session of one run inside the worker: runStar over the run's IndexedDB store, with the loop's
// progress turned into the page's events (throttled, so a fast run never floods the page), iteration
// records and this device's measured speed saved as iterations finish, and every way a session ends
// turned into a stored status: done; paused (asked to, the GPU was lost, or storage is full; resumable);
// or error (a bug, or a model that would not load; the message says what happened). The engine is opened
// once the run is marked running, so a CommonsenseQA model's download shows as part of the run.

import type { GpuError } from '../gpu/device';
import { runStar } from '../star/loop';
import type { FinetuneOptions, GenOptions, IterationRecord, RunStore, StarEngine, StarEvent } from '../star/types';
import { type Db, keys, StorageFullError, write } from '../storage/db';
import { CHUNK, IdbRunStore } from '../storage/run_store';
import { type RunMeta, updateRun } from '../storage/runs';
import type { EngineEvent } from './api';
import type { Calibration } from './estimate';
import { completedRecords, taskFor } from './records';

/** The reason a paused session's signal carries. */
export class PauseRequest extends Error {
  override name = 'PauseRequest';
  constructor() {
    super('Paused.');
  }
}

/** The engine a session runs, and how its iterations measure this device's speed. */
export interface OpenedEngine {
  engine: StarEngine;
  calibration(r: IterationRecord): { key: string; value: Calibration } | null;
  /** The run's base model when it comes with the app (a shipped one, checked): stored before the loop starts. */
  base?: Uint8Array;
}

export interface SessionDeps {
  db: Db;
  /** Called once the run is marked running (a CommonsenseQA model loads here, emitting its own events; a pause aborts it). */
  open(signal: AbortSignal): Promise<OpenedEngine>;
  /** Resolves when the GPU is lost (never, for a fake one). */
  lost: Promise<Error>;
  device: string;
  emit(e: EngineEvent): void;
  now?(): number;
}

export interface Session {
  runId: string;
  /** Asks the run to stop after the current batch or step; `done` settles once it has. */
  pause(): void;
  /** The run's record once the session has ended (never rejects). */
  done: Promise<RunMeta>;
}

const PROGRESS_EVERY_MS = 100;
const SAMPLES_PER_SECOND = 30;

/** Forwards the loop's events: progress at most every 100 ms per phase (but always its end), finished samples at 30/s. */
function eventPump(runId: string, emit: (e: EngineEvent) => void, now: () => number) {
  let lastKey = '';
  let lastAt = -Infinity;
  let budget = SAMPLES_PER_SECOND;
  let budgetAt = now();
  return (e: StarEvent) => {
    const t = now();
    if (e.kind === 'progress') {
      const key = `${e.iteration}/${e.phase}`;
      if (key === lastKey && e.done < e.total && t - lastAt < PROGRESS_EVERY_MS) return;
      lastKey = key;
      lastAt = t;
      emit({ kind: 'phase', runId, iteration: e.iteration, phase: e.phase, done: e.done, total: e.total, message: e.message, ...(e.stored && { stored: true }) });
      return;
    }
    if (!e.done) return;
    budget = Math.min(SAMPLES_PER_SECOND, budget + ((t - budgetAt) / 1000) * SAMPLES_PER_SECOND);
    budgetAt = t;
    if (budget < 1) return;
    budget--;
    emit({ kind: 'sample', runId, iteration: e.iteration, phase: e.phase, prompt: e.prompt, text: e.text, correct: e.correct, hinted: e.hinted });
  };
}

/** Why a run paused on a full disk, and what to do: what failed to save is absent, everything before it is stored whole. */
export function storageFull(e: StorageFullError): string {
  return `Browser storage is full: ${e.what} could not be saved, so the run is paused after its last completed phase ` +
    '(everything before it is stored whole). Free space or delete old runs (Export keeps a copy of a run first), then Resume.';
}

export function startSession(meta: RunMeta, deps: SessionDeps): Session {
  const { db, emit } = deps;
  const now = deps.now ?? (() => performance.now());
  const runId = meta.id;
  const cfg = meta.config;
  const controller = new AbortController();
  const started = now();
  const wall = () => meta.wallSeconds + (now() - started) / 1000;
  const pump = eventPump(runId, emit, now);

  // The engine, watched: each fine-tune step's loss and each call's tokens per second reach the page.
  let lastLoss: { step: number; loss: number; keyLoss?: number } | null = null;
  const rate = (tokens: number, t0: number) => {
    const s = (now() - t0) / 1000;
    if (s > 0 && tokens > 0) emit({ kind: 'throughput', runId, tokensPerSecond: tokens / s });
  };
  let opened: OpenedEngine | null = null;
  const inner = () => opened!.engine;
  const engine: StarEngine = {
    get trainBatch() {
      return opened?.engine.trainBatch;
    },
    initRandom: (seed) => inner().initRandom(seed),
    saveWeights: () => inner().saveWeights(),
    loadWeights: (bytes) => inner().loadWeights(bytes),
    async generate(prompts: string[], opts: GenOptions) {
      const t0 = now();
      const out = await inner().generate(prompts, opts);
      rate(out.reduce((a, o) => a + o.tokens, 0), t0);
      return out;
    },
    async finetune(examples, opts: FinetuneOptions) {
      const t0 = now();
      const out = await inner().finetune(examples, {
        ...opts,
        onStep: (step, loss, keyLoss) => {
          lastLoss = { step, loss, keyLoss };
          opts.onStep?.(step, loss, keyLoss);
        },
      });
      rate(out.tokens, t0);
      return out;
    },
  };

  // The store, watched: once an iteration's evaluation is stored, its record is final.
  const idb = new IdbRunStore(db, runId, CHUNK, true); // a phase's weights are stored with its record
  let emitted = 0;
  const iterationDone = async () => {
    const records = await completedRecords(cfg, idb);
    for (const record of records.slice(emitted)) emit({ kind: 'iteration', runId, record });
    emitted = records.length;
    await updateRun(db, runId, () => ({ iterations: records, wallSeconds: wall() }));
    const last = records[records.length - 1];
    const calib = last && last.iteration > 0 && opened ? opened.calibration(last) : null;
    if (calib) await write(db, 'the speed of this device', (s) => s.put(calib.value, keys.calib(calib.key)));
  };
  const store: RunStore = {
    getPhase: (iteration, phase) => idb.getPhase(iteration, phase),
    async putPhase(iteration, phase, value) {
      await idb.putPhase(iteration, phase, value);
      if (phase === 'evaluate') await iterationDone();
    },
    getWeights: (name) => idb.getWeights(name),
    putWeights: (name, bytes) => idb.putWeights(name, bytes),
    getJSON: (key) => idb.getJSON(key),
    putJSON: (key, value) => idb.putJSON(key, value),
  };

  const onProgress = (e: StarEvent) => {
    if (e.kind === 'progress' && (e.phase === 'seed' || e.phase === 'finetune') && lastLoss?.step === e.done) {
      const { loss, keyLoss } = lastLoss;
      emit({ kind: 'loss', runId, iteration: e.iteration, phase: e.phase, step: e.done, total: e.total, loss, ...(keyLoss !== undefined && { keyLoss }) });
      lastLoss = null;
    }
    pump(e);
  };

  // The run's end, stored and then told to the page. When storage refuses even this write, the page still
  // hears it (the stored status stays what it was: a reload lists the run as idle or interrupted); a run that
  // finished but could not be marked done is told as paused on a full disk (its data is all stored, and
  // Resume marks it done).
  const finish = async (change: Partial<RunMeta>): Promise<RunMeta> => {
    let end: RunMeta;
    try {
      end = await updateRun(db, runId, () => ({ ...change, wallSeconds: wall() }));
    } catch (e) {
      end = { ...meta, ...(e instanceof StorageFullError && change.status === 'done' ? { status: 'paused', error: storageFull(e) } : change) };
    }
    emit({ kind: 'status', runId, status: end.status, error: end.error });
    return end;
  };

  const run = async (): Promise<RunMeta> => {
    try {
      await updateRun(db, runId, () => ({ status: 'running', error: undefined, device: deps.device }));
      emit({ kind: 'status', runId, status: 'running' });
      emitted = (await completedRecords(cfg, idb)).length;
      // A lost device may leave a GPU call pending forever: stop waiting for the loop (it stores nothing more,
      // its signal being aborted) and pause.
      const lost = new Promise<never>((_, reject) =>
        deps.lost.then((e) => {
          controller.abort(e);
          reject(e);
        }),
      );
      lost.catch(() => {}); // handled by the race below, or moot once the session is over
      const t = await taskFor(cfg, idb);
      if (!t) throw new Error('This run\'s questions are not stored with it (it was imported without csqa-questions.json), so it cannot go on; start a new run instead.');
      opened = await Promise.race([deps.open(controller.signal), lost]);
      controller.signal.throwIfAborted();
      if (opened.base && (await idb.getWeights('base')) === undefined) await idb.putWeights('base', opened.base);
      const summary = await Promise.race([runStar(cfg.star, { task: t.task, engine, store, onProgress, signal: controller.signal }), lost]);
      return await finish({ status: 'done', iterations: summary.iterations, finalAccuracy: summary.finalAccuracy });
    } catch (e) {
      const reason = controller.signal.aborted ? controller.signal.reason : e;
      if (reason instanceof PauseRequest) return finish({ status: 'paused' });
      const full = e instanceof StorageFullError ? e : reason instanceof StorageFullError ? reason : null;
      if (full) return finish({ status: 'paused', error: storageFull(full) });
      // A lost device or an exhausted one can be resumed (on a new device); a validation error is a bug.
      const kind = (reason as Partial<GpuError> | undefined)?.kind;
      if ((reason as Error)?.name === 'GpuError' && (kind === 'device-lost' || kind === 'out-of-memory')) {
        return finish({ status: 'paused', error: `${(reason as Error).message}\nThe run is paused at its last completed phase; resume it to go on.` });
      }
      return finish({ status: 'error', error: (e as Error)?.message ?? String(e) });
    }
  };

  return {
    runId,
    pause: () => controller.abort(new PauseRequest()),
    done: run(),
  };
}
