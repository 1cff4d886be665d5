// The EngineApi (./api.ts) over its two dependencies: a GPU (acquired on first use, again after a loss)
// and the IndexedDB database. engine.worker.ts gives it the real GPU; tests give it a scripted engine
// on fake-indexeddb. One run is live at a time; a stored 'running' run that is not the live one was
// cut off (the page reloaded or Stop ended the worker) and is listed as 'interrupted'.

import { type RunConfig, validateRunConfig } from '../star/run_config';
import { MemoryStore } from '../star/stores/memory';
import type { StarEngine, StarSummary } from '../star/types';
import { ImportError, readRunArchive, unzipRun, writeRunArchive, zipRun } from '../storage/archive';
import { type Db, keys, read } from '../storage/db';
import { IdbRunStore } from '../storage/run_store';
import { deleteRun, getRun, listRuns, newRunId, newRunMeta, putRun, type RunMeta } from '../storage/runs';
import type { EngineApi, EngineEvent, GpuInfo, RunInfo } from './api';
import { type Calibration, calibrationKey, estimateRun, type Limits } from './estimate';
import { completedRecords, rationaleRows } from './records';
import { type Session, startSession } from './session';

/** An acquired GPU, as the API needs it. */
export interface GpuBackend {
  info: GpuInfo;
  limits: Limits;
  /** Resolves when the device is lost. */
  lost: Promise<Error>;
  createEngine(cfg: RunConfig): StarEngine;
}

export interface EngineDeps {
  db: Db;
  connectGpu(): Promise<GpuBackend>;
  now?(): number;
}

export function createEngineApi(deps: EngineDeps): EngineApi & { /** Tests: the live session's end. */ settled(): Promise<void> } {
  const { db } = deps;
  let gpu: Promise<GpuBackend> | null = null;
  let live: { runId: string; session: Promise<Session> } | null = null;

  const connect = (): Promise<GpuBackend> => {
    if (!gpu) {
      const g = deps.connectGpu();
      gpu = g;
      g.then((b) => b.lost.then(() => gpu === g && (gpu = null))).catch(() => gpu === g && (gpu = null));
    }
    return gpu;
  };

  const info = (m: RunMeta): RunInfo => {
    const { version: _v, ...rest } = m;
    return m.status === 'running' && m.id !== live?.runId ? { ...rest, status: 'interrupted' } : rest;
  };

  const launch = (meta: RunMeta, onEvent: (e: EngineEvent) => void): Promise<void> => {
    const session = (async () => {
      const g = await connect();
      return startSession(meta, { db, engine: g.createEngine(meta.config), lost: g.lost, device: g.info.description || g.info.vendor, emit: onEvent, now: deps.now });
    })();
    live = { runId: meta.id, session };
    const entry = live;
    const end = () => live === entry && (live = null);
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

    async estimate(config) {
      validateRunConfig(config);
      const limits = gpu ? (await gpu.catch(() => null))?.limits ?? null : null;
      const calib = (await read<Calibration>(db, keys.calib(calibrationKey(config)))) ?? null;
      return estimateRun(config, limits, calib);
    },

    async start(config, name, onEvent) {
      needIdle();
      validateRunConfig(config);
      const g = await connect();
      const { refusal } = estimateRun(config, g.limits, null);
      if (refusal) throw new Error(refusal);
      needIdle();
      const meta = newRunMeta(newRunId(), name.trim() || `${config.model} ${config.star.mode}`, config, 'browser');
      await putRun(db, meta);
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
      return (await listRuns(db)).map(info);
    },

    async getRun(runId) {
      const m = await getRun(db, runId);
      return m && info(m);
    },

    async deleteRun(runId) {
      if (live?.runId === runId) throw new Error('This run is going: pause or stop it before deleting it.');
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
      const zip = zipRun(info(meta) as RunMeta, archive);
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
