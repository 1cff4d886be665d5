// The runs list: one small record per run (what the page shows without reading any phase), beside the
// run's own data under ['r', id] (./db.ts). Deleting a run removes both in one transaction.

import type { AnyRunConfig } from '../star/run_configs';
import type { IterationRecord } from '../star/types';
import { type Db, keys, prefixRange, read, readPrefix, STORAGE_VERSION, write } from './db';

/** What the page shows of a run. 'interrupted': it was running when its worker or page went away. */
export type RunStatus = 'idle' | 'running' | 'paused' | 'interrupted' | 'done' | 'error';

export interface RunMeta {
  /** STORAGE_VERSION of the code that wrote it. */
  version: number;
  id: string;
  name: string;
  config: AnyRunConfig;
  /** As stored: 'running' here means "was running"; listings turn it into 'interrupted' unless it is live. */
  status: RunStatus;
  createdAt: number;
  updatedAt: number;
  /** Records of the completed iterations 0..n. */
  iterations: IterationRecord[];
  /** Final eval accuracy once done. */
  finalAccuracy: number | null;
  /** Why the run is paused or failed (a device loss, a full disk, a bug). */
  error?: string;
  /** The GPU it last ran on. */
  device?: string;
  /** Seconds spent running, over all sessions. */
  wallSeconds: number;
  origin: 'browser' | 'import';
}

export function newRunId(): string {
  const rand = crypto.getRandomValues(new Uint32Array(2));
  return `${Date.now().toString(36)}-${rand[0].toString(36)}${rand[1].toString(36)}`;
}

export function newRunMeta(id: string, name: string, config: AnyRunConfig, origin: RunMeta['origin'], now = Date.now()): RunMeta {
  return {
    version: STORAGE_VERSION, id, name, config, status: 'idle', createdAt: now, updatedAt: now,
    iterations: [], finalAccuracy: null, wallSeconds: 0, origin,
  };
}

export function putRun(db: Db, meta: RunMeta): Promise<void> {
  return write(db, `run "${meta.name}"`, (s) => s.put(meta, keys.meta(meta.id)));
}

export function getRun(db: Db, id: string): Promise<RunMeta | undefined> {
  return read<RunMeta>(db, keys.meta(id));
}

/** Every run, newest first. */
export async function listRuns(db: Db): Promise<RunMeta[]> {
  const rows = await readPrefix<RunMeta>(db, ['meta']);
  return rows.map((r) => r.value).sort((a, b) => b.createdAt - a.createdAt);
}

/** Reads, changes and writes a run's record in one transaction; returns the new record. */
export async function updateRun(db: Db, id: string, change: (m: RunMeta) => Partial<RunMeta>): Promise<RunMeta> {
  let next: RunMeta | undefined;
  await write(db, `run ${id}'s status`, (s, guard) => {
    const req = s.get(keys.meta(id));
    req.onsuccess = guard(() => {
      const old = req.result as RunMeta | undefined;
      if (old === undefined) return; // nothing to change: the transaction commits nothing
      next = { ...old, ...change(old), updatedAt: Date.now() };
      s.put(next, keys.meta(id));
    });
  });
  if (next === undefined) throw new Error(`There is no run ${id}.`);
  return next;
}

/** Removes a run and everything stored for it. */
export function deleteRun(db: Db, id: string): Promise<void> {
  return write(db, `the deletion of run ${id}`, (s) => {
    s.delete(keys.meta(id));
    s.delete(prefixRange(keys.run(id)));
  });
}
