// The EngineApi (./api.ts) over its two dependencies: a GPU (acquired on first use, again after a loss)
// and the IndexedDB database. engine.worker.ts gives it the real GPU; tests give it a scripted engine
// on fake-indexeddb. One run is live at a time, and the worker running it holds its lock (./locks.ts),
// so another tab can neither resume nor delete it. A stored 'running' run that is neither live here nor
// locked elsewhere was cut off (the page reloaded or Stop ended the worker) and is listed as
// 'interrupted'. What differs by task (estimating, preparing and opening a run) is in ./tasks.ts.

import type { HubModel } from '../hub/load';
import type { RunConfig } from '../star/run_config';
import { validateAnyRunConfig } from '../star/run_configs';
import { MemoryStore } from '../star/stores/memory';
import type { CsqaRunConfig } from '../star/tasks/csqa_run';
import type { StarEngine, StarSummary } from '../star/types';
import { ImportError, readRunArchive, unzipRun, writeRunArchive, zipRun } from '../storage/archive';
import { type Db, keys, read } from '../storage/db';
import { IdbRunStore } from '../storage/run_store';
import { deleteRun, getRun, listRuns, newRunId, newRunMeta, putRun, type RunMeta } from '../storage/runs';
import type { EngineApi, EngineEvent, GpuInfo, RunInfo } from './api';
import { createCsqaInputs, type HubDeps } from './csqa';
import type { Calibration, Limits } from './estimate';
import { defaultLocks, type RunLocks } from './locks';
import { completedRecords, rationaleRows } from './records';
import { type OpenedEngine, type Session, startSession } from './session';
import { type WorkerCtx, workerTask } from './tasks';

/** An acquired GPU, as the API needs it. */
export interface GpuBackend {
  info: GpuInfo;
  limits: Limits;
  /** Resolves when the device is lost. */
  lost: Promise<Error>;
  createEngine(cfg: RunConfig): StarEngine;
  /** A CommonsenseQA engine holding the loaded pretrained weights (with LoRA adapters when the config has them). */
  createCsqaEngine(cfg: CsqaRunConfig, model: HubModel): StarEngine;
}

export interface EngineDeps {
  db: Db;
  connectGpu(): Promise<GpuBackend>;
  /** Reads a shipped base model's file (default: fetch). */
  fetchBytes?(url: URL): Promise<Uint8Array>;
  /** Where CommonsenseQA downloads come from and are cached (default: fetch and the Cache API). */
  hub?: HubDeps;
  /** Who runs which run, across tabs (default: the Web Locks API where it exists). */
  locks?: RunLocks;
  now?(): number;
}

/** A file the app serves (a shipped base model), as bytes; a failed request says what to do. */
async function fetchBytes(url: URL): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`Could not load ${url.pathname} (${(e as Error).message}). Check the connection and Resume, or train the base model from scratch.`);
  }
  if (!res.ok) throw new Error(`Could not load ${url.pathname}: HTTP ${res.status}. Check the connection and Resume, or train the base model from scratch.`);
  return new Uint8Array(await res.arrayBuffer());
}

export function createEngineApi(deps: EngineDeps): EngineApi & { /** Tests: the live session's end. */ settled(): Promise<void> } {
  const { db } = deps;
  const locks = deps.locks ?? defaultLocks();
  let gpu: Promise<GpuBackend> | null = null;
  let live: { runId: string; session: Promise<Session> } | null = null;
  const csqa = createCsqaInputs(deps.hub);
  const now = deps.now ?? (() => performance.now());
  const calibFor = async (key: string) => (await read<Calibration>(db, keys.calib(key))) ?? null;

  const connect = (): Promise<GpuBackend> => {
    if (!gpu) {
      const g = deps.connectGpu();
      gpu = g;
      g.then((b) => b.lost.then(() => gpu === g && (gpu = null))).catch(() => gpu === g && (gpu = null));
    }
    return gpu;
  };

  /** A stored run as listed: 'running' stays so only where it is live here or locked by another tab. */
  const info = (m: RunMeta, lockedElsewhere: Set<string>): RunInfo => {
    const { version: _v, ...rest } = m;
    if (m.status !== 'running' || m.id === live?.runId) return rest;
    return lockedElsewhere.has(m.id) ? { ...rest, elsewhere: true } : { ...rest, status: 'interrupted' };
  };
  /** Runs locked by another tab or worker (not the one live here). */
  const elsewhere = async (): Promise<Set<string>> => {
    const held = await locks.held();
    if (live) held.delete(live.runId);
    return held;
  };
  const goingElsewhere = (name: string) =>
    new Error(`Run "${name}" is going in another tab or window of this page. Watch or stop it there, or close that tab and resume it here.`);

  const ctx: WorkerCtx = { db, calibFor, csqa, fetchBytes: deps.fetchBytes ?? fetchBytes, now };
  /** The engine of a run, as its task opens it (./tasks.ts): arithmetic's at once; CommonsenseQA's once its model has loaded. */
  const openEngine = (g: GpuBackend, meta: RunMeta, emit: (e: EngineEvent) => void, signal: AbortSignal): Promise<OpenedEngine> =>
    workerTask(meta.config).open(ctx, g, meta, meta.config, emit, signal);

  const launch = async (meta: RunMeta, onEvent: (e: EngineEvent) => void): Promise<void> => {
    const release = await locks.tryHold(meta.id);
    if (!release) throw goingElsewhere(meta.name);
    if (live) {
      release();
      needIdle(); // throws: a run started here while the lock was being taken
    }
    const session = (async () => {
      const g = await connect();
      return startSession(meta, { db, open: (signal) => openEngine(g, meta, onEvent, signal), lost: g.lost, device: g.info.description || g.info.vendor, emit: onEvent, now: deps.now });
    })();
    live = { runId: meta.id, session };
    const entry = live;
    const end = () => {
      if (live === entry) live = null;
      release();
    };
    session.then((s) => s.done.then(end), end);
    return session.then(() => undefined);
  };

  const needIdle = () => {
    if (live) throw new Error('A run is already going: pause or stop it first.');
  };

  const runMeta = async (runId: string): Promise<RunMeta> => {
    const m = await getRun(db, runId);
    if (!m) throw new Error(`There is no run ${runId}; it may have been deleted.`);
    return m;
  };

  return {
    async init() {
      return (await connect()).info;
    },

    async estimate(config, files) {
      validateAnyRunConfig(config);
      const limits = gpu ? (await gpu.catch(() => null))?.limits ?? null : null;
      return workerTask(config).estimate(ctx, config, files, limits);
    },

    async start(config, name, onEvent, files) {
      needIdle();
      validateAnyRunConfig(config);
      const g = await connect();
      const prepared = await workerTask(config).prepare(ctx, config, files, g.limits);
      if (prepared.refusal) throw new Error(prepared.refusal);
      const run = prepared.config;
      needIdle();
      const meta = newRunMeta(newRunId(), name.trim() || `${run.model} ${run.star.mode}`, run, 'browser');
      await putRun(db, meta);
      if (prepared.store) {
        try {
          await prepared.store(meta.id);
        } catch (e) {
          await deleteRun(db, meta.id).catch(() => {});
          throw e;
        }
      }
      await launch(meta, onEvent);
      return meta.id;
    },

    async resume(runId, onEvent) {
      needIdle();
      const meta = await runMeta(runId);
      if (meta.status === 'done') throw new Error(`Run "${meta.name}" is already done.`);
      await launch(meta, onEvent);
    },

    async pause() {
      const l = live;
      if (!l) return;
      const s = await l.session;
      s.pause();
      await s.done;
    },

    async listRuns() {
      const locked = await elsewhere();
      return (await listRuns(db)).map((m) => info(m, locked));
    },

    async getRun(runId) {
      const m = await getRun(db, runId);
      return m && info(m, await elsewhere());
    },

    async deleteRun(runId) {
      if (live?.runId === runId) throw new Error('This run is going: pause or stop it before deleting it.');
      const m = await getRun(db, runId);
      if (m && (await elsewhere()).has(runId)) throw goingElsewhere(m.name);
      await deleteRun(db, runId);
    },

    async rationales(runId, iteration) {
      const meta = await runMeta(runId);
      return rationaleRows(meta.config, new IdbRunStore(db, runId), iteration);
    },

    async summary(runId) {
      return new IdbRunStore(db, runId).getJSON<StarSummary>('summary');
    },

    async exportRun(runId) {
      const { meta, archive } = await readRunArchive(db, runId);
      const zip = zipRun(info(meta, new Set()) as RunMeta, archive); // a run going elsewhere is exported as it stands
      return zip.buffer.byteLength === zip.byteLength ? (zip.buffer as ArrayBuffer) : (zip.slice().buffer as ArrayBuffer);
    },

    async importRun(zip) {
      const archive = unzipRun(new Uint8Array(zip));
      // The records, by the loop's own replay over the archive's phases (in memory: nothing is stored yet).
      const mem = new MemoryStore();
      for (const [key, value] of Object.entries(archive.docs)) await mem.putJSON(key, value);
      for (const p of archive.phases) await mem.putPhase(p.iteration, p.phase, p.value);
      const records = await completedRecords(archive.config, mem);
      const summary = archive.docs.summary as StarSummary | undefined;
      const meta: RunMeta = {
        ...newRunMeta(newRunId(), archive.name, archive.config, 'import', archive.meta?.createdAt),
        status: summary ? 'done' : 'interrupted',
        iterations: summary && summary.iterations.length > records.length ? summary.iterations : records,
        finalAccuracy: summary?.finalAccuracy ?? null,
        wallSeconds: archive.meta?.wallSeconds ?? 0,
        device: archive.meta?.device,
      };
      if (!summary && records.length === 0 && archive.phases.length === 0 && !archive.weights.base) {
        throw new ImportError('it holds a configuration but no completed phase and no weights: start a new run with that configuration instead.');
      }
      await writeRunArchive(db, meta, archive);
      return meta.id;
    },

    async settled() {
      const l = live;
      if (l) await (await l.session).done;
    },
  };
}
