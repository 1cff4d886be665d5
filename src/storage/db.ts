// The browser's one database: a single IndexedDB object store (idb-keyval's), with array keys so a run's
// records sort together and a run is deleted or exported by one key range.
//
//   ['meta', id]                       RunMeta (./runs.ts)
//   ['r', id, 'doc', key]              run documents: 'star-config', 'summary'; CommonsenseQA also
//                                      'csqa-questions' (what it draws from) and 'hf-config' (config.json)
//   ['r', id, 'phase', it, phase]      each completed phase's output (rationale sets included)
//   ['r', id, 'mark']                  the last phase written (written with it, in the same transaction)
//   ['r', id, 'w', name]               weights manifest { size, chunks }
//   ['r', id, 'wc', name, i]           weights chunk i (CHUNK bytes each, the last shorter); besides 'base'
//                                      and 'latest', 'model-file:<file>' holds a picked local model's files
//   ['calib', key]                     this device's measured speed (../worker/estimate.ts)
//
// Every write is one transaction that commits whole or aborts whole; a full disk surfaces as
// StorageFullError with a message a person can act on.

import { createStore, get, promisifyRequest, type UseStore } from 'idb-keyval';

export const DB_NAME = 'star-webgpu';

/** The layout version of what this module stores (and of exported archives). */
export const STORAGE_VERSION = 1;

export interface Db {
  use: UseStore;
}

export function openDb(name = DB_NAME): Db {
  return { use: createStore(name, 'kv') };
}

/** The browser refused a write because its storage quota is used up. Nothing of that write was stored. */
export class StorageFullError extends Error {
  override name = 'StorageFullError';
  constructor(
    /** What could not be saved ("iteration 2's finetune phase"). */
    readonly what: string,
  ) {
    super(
      `Browser storage is full: ${what} could not be saved. Nothing already stored was changed. ` +
        'Free space or delete old runs (Export keeps a copy of a run first), then try again.',
    );
  }
}

function isQuota(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: string }).name === 'QuotaExceededError';
}

/** Turns a failed write into an error that says what was being written. */
function writeError(what: string, e: unknown): Error {
  if (isQuota(e)) return new StorageFullError(what);
  if (e instanceof Error) return new Error(`Could not save ${what}: ${e.message}`, { cause: e });
  const name = (e as { name?: string } | null)?.name;
  return new Error(`Could not save ${what}: the write was aborted${name ? ` (${name})` : ''}. Nothing of it was stored.`);
}

/** Wraps a request's event handler so that what it throws aborts the write and is reported as its cause. */
export type Guard = <A extends unknown[]>(handler: (...args: A) => void) => (...args: A) => void;

/**
 * Runs `body` in ONE readwrite transaction and resolves once it has committed. If `body` throws (or a
 * handler wrapped in `guard` throws, or a request fails, or the quota runs out) the transaction is
 * aborted, so nothing `body` did is stored, and the error names `what` was being saved.
 */
export function write(db: Db, what: string, body: (s: IDBObjectStore, guard: Guard) => void): Promise<void> {
  return db.use('readwrite', async (s) => {
    const tx = s.transaction;
    const thrown: unknown[] = []; // the first error a guarded handler threw
    const abort = (error: unknown) => {
      thrown.push(error);
      try {
        tx.abort();
      } catch {
        // already finished or aborted
      }
    };
    const guard: Guard = (handler) => (...args) => {
      try {
        handler(...args);
      } catch (e) {
        abort(e);
      }
    };
    try {
      body(s, guard);
    } catch (e) {
      abort(e);
      throw writeError(what, e);
    }
    try {
      await promisifyRequest(tx);
    } catch (e) {
      throw writeError(what, thrown.length > 0 ? thrown[0] : tx.error ?? e);
    }
  });
}

export function read<T>(db: Db, key: IDBValidKey): Promise<T | undefined> {
  return get<T>(key, db.use);
}

/** Every key under `prefix` (keys that start with its elements), in key order. */
export function prefixRange(prefix: IDBValidKey[]): IDBKeyRange {
  // Arrays sort after every other key type, so [...prefix, []] is above every key that extends prefix.
  return IDBKeyRange.bound(prefix, [...prefix, []]);
}

/** Keys and values under `prefix`, read in one transaction (a consistent snapshot). */
export function readPrefix<T>(db: Db, prefix: IDBValidKey[]): Promise<{ key: IDBValidKey[]; value: T }[]> {
  return db.use('readonly', async (s) => {
    const range = prefixRange(prefix);
    const [keys, values] = await Promise.all([promisifyRequest(s.getAllKeys(range)), promisifyRequest(s.getAll(range))]);
    return keys.map((key, i) => ({ key: key as IDBValidKey[], value: values[i] as T }));
  });
}

export const keys = {
  meta: (id: string) => ['meta', id],
  run: (id: string) => ['r', id],
  doc: (id: string, key: string) => ['r', id, 'doc', key],
  phase: (id: string, iteration: number, phase: string) => ['r', id, 'phase', iteration, phase],
  phases: (id: string) => ['r', id, 'phase'],
  mark: (id: string) => ['r', id, 'mark'],
  weights: (id: string, name: string) => ['r', id, 'w', name],
  chunks: (id: string, name: string) => ['r', id, 'wc', name],
  chunk: (id: string, name: string, i: number) => ['r', id, 'wc', name, i],
  calib: (key: string) => ['calib', key],
};
