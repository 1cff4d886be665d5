// The IndexedDB RunStore on fake-indexeddb: the loop's store contract, all-or-nothing writes (a write that
// fails midway leaves the old data whole), a full disk surfacing as StorageFullError, and a running run's
// weights stored with their phase (a phase cut off after saving them leaves no trace).

import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runStar } from '../../src/star/loop';
import { arithmeticTask } from '../../src/star/tasks/arithmetic_task';
import type { RunStore } from '../../src/star/types';
import { type Db, openDb, prefixRange, readPrefix, StorageFullError } from '../../src/storage/db';
import { IdbRunStore } from '../../src/storage/run_store';
import { deleteRun, getRun, listRuns, newRunMeta, putRun, updateRun } from '../../src/storage/runs';
import { fakeEngine, fakeRun, microConfig } from './fixtures';

const CHUNK = 1000; // small weight chunks: the same code path as 8 MiB ones, at test speed
let n = 0;
const freshDb = (): Db => openDb(`test-store-${++n}`);

/** Everything in the database, for "nothing changed" checks. */
async function snapshot(db: Db) {
  return readPrefix(db, []);
}

/** Makes the k-th put (1-based) from now on throw `error`, as a write failing midway would. */
function failPut(k: number, error: () => Error) {
  const real = IDBObjectStore.prototype.put;
  let calls = 0;
  return vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
    if (++calls === k) throw error();
    return real.apply(this, args);
  });
}

const quota = () => new DOMException('The quota has been exceeded.', 'QuotaExceededError');

afterEach(() => vi.restoreAllMocks());

describe('IdbRunStore', () => {
  it('keeps phases, documents and weights; a fresh store object reads them back', async () => {
    const db = freshDb();
    const store = new IdbRunStore(db, 'a');
    const summary = await fakeRun(microConfig(), store);
    expect(summary.iterations.map((r) => r.iteration)).toEqual([0, 1, 2]);
    const again = new IdbRunStore(db, 'a');
    expect(await again.getPhase(0, 'seed')).toMatchObject({ reused: false, steps: 4 });
    expect((await again.getPhase<{ kept: unknown[] }>(1, 'filter'))!.kept.length).toBeGreaterThan(0);
    expect(await again.getJSON('summary')).toEqual(summary);
    expect((await again.getWeights('latest'))!.byteLength).toBeGreaterThan(0);
    expect(await again.getPhase(3, 'generate')).toBeUndefined();
    expect(await new IdbRunStore(db, 'b').getPhase(0, 'seed')).toBeUndefined(); // runs do not see each other
  });

  it('chunks large weights and replaces them whole', async () => {
    const db = freshDb();
    const store = new IdbRunStore(db, 'a', CHUNK);
    const big = new Uint8Array(2 * CHUNK + 123).map((_, i) => i * 7);
    await store.putWeights('latest', big);
    expect((await readPrefix(db, ['r', 'a', 'wc', 'latest'])).length).toBe(3);
    expect(await store.getWeights('latest')).toEqual(big);
    const small = new Uint8Array([1, 2, 3]);
    await store.putWeights('latest', small);
    expect((await readPrefix(db, ['r', 'a', 'wc', 'latest'])).length).toBe(1); // old chunks gone
    expect(await store.getWeights('latest')).toEqual(small);
  });

  it('a phase write that fails midway leaves the phase absent and older data intact', async () => {
    const db = freshDb();
    const store = new IdbRunStore(db, 'a');
    await store.putPhase(1, 'generate', { completions: ['old'], tokensGenerated: 3, seconds: 1 });
    const before = await snapshot(db);
    // putPhase writes the phase, then its completion mark: fail the second put.
    failPut(2, () => new Error('simulated crash'));
    await expect(store.putPhase(1, 'filter', { kept: [], failures: [0], seconds: 1 })).rejects.toThrow(/filter phase.*simulated crash/);
    vi.restoreAllMocks();
    expect(await store.getPhase(1, 'filter')).toBeUndefined();
    expect(await snapshot(db)).toEqual(before);
  });

  it('a weights write that fails at a middle chunk leaves the previous weights whole', async () => {
    const db = freshDb();
    const store = new IdbRunStore(db, 'a', CHUNK);
    const old = new Uint8Array(CHUNK + 5).fill(1);
    await store.putWeights('base', old);
    failPut(2, () => new Error('simulated crash'));
    await expect(store.putWeights('base', new Uint8Array(3 * CHUNK).fill(2))).rejects.toThrow(/base weights/);
    vi.restoreAllMocks();
    expect(await store.getWeights('base')).toEqual(old);
  });

  it('a full disk surfaces as StorageFullError with a clear message, and nothing is corrupted', async () => {
    const db = freshDb();
    const store = new IdbRunStore(db, 'a');
    await store.putJSON('star-config', { a: 1 });
    const before = await snapshot(db);
    failPut(1, quota);
    const err = await store.putPhase(2, 'evaluate', { accuracy: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(StorageFullError);
    expect(err.message).toMatch(/storage is full: iteration 2's evaluate phase could not be saved.*Nothing already stored was changed/i);
    failPut(2, quota);
    await expect(store.putWeights('latest', new Uint8Array(10))).rejects.toBeInstanceOf(StorageFullError);
    vi.restoreAllMocks();
    expect(await snapshot(db)).toEqual(before);
  });
});

describe('a running run\'s store (weights written with their phase)', () => {
  const cfg = microConfig();
  it.each(['base', 'latest'])('a phase cut off between saving the %s weights and its record leaves neither, and the run resumes to the same summary', async (name) => {
    const db = freshDb();
    const idb = new IdbRunStore(db, 'a', CHUNK, true);
    const stop = new AbortController();
    // A pause (or Stop, or a lost device) lands right after the phase saved its weights.
    const store: RunStore = {
      getPhase: (it, phase) => idb.getPhase(it, phase),
      putPhase: (it, phase, value) => idb.putPhase(it, phase, value),
      getWeights: (n) => idb.getWeights(n),
      putWeights: async (n, bytes) => {
        await idb.putWeights(n, bytes);
        if (n === name) stop.abort(new Error('paused here'));
      },
      getJSON: (key) => idb.getJSON(key),
      putJSON: (key, value) => idb.putJSON(key, value),
    };
    const run = runStar(cfg.star, { task: arithmeticTask(cfg.star), engine: fakeEngine(), store, signal: stop.signal, now: () => 0 });
    await expect(run).rejects.toThrow('paused here');
    const phase = name === 'base' ? 'seed' : 'finetune';
    expect(await idb.getPhase(name === 'base' ? 0 : 1, phase)).toBeUndefined();
    expect(await new IdbRunStore(db, 'a').getWeights(name)).toBeUndefined();

    const resumed = await fakeRun(cfg, new IdbRunStore(db, 'a', CHUNK, true));
    expect(resumed).toEqual(await fakeRun(cfg, new IdbRunStore(freshDb(), 'reference', CHUNK, true)));
    expect(await idb.getPhase(0, 'seed')).toMatchObject({ reused: false, steps: 4 }); // trained here, not "shared from another run"
  });
});

describe('runs list', () => {
  it('lists newest first, updates in place and deletes a run with all its data', async () => {
    const db = freshDb();
    const cfg = microConfig();
    await putRun(db, newRunMeta('old', 'first', cfg, 'browser', 1000));
    await putRun(db, newRunMeta('new', 'second', cfg, 'browser', 2000));
    await fakeRun(cfg, new IdbRunStore(db, 'old'));
    await fakeRun(cfg, new IdbRunStore(db, 'new'));
    expect((await listRuns(db)).map((r) => r.name)).toEqual(['second', 'first']);
    const m = await updateRun(db, 'old', () => ({ status: 'done', finalAccuracy: 0.5 }));
    expect(m).toMatchObject({ status: 'done', finalAccuracy: 0.5, name: 'first' });
    expect(await getRun(db, 'old')).toEqual(m);

    await deleteRun(db, 'old');
    expect(await getRun(db, 'old')).toBeUndefined();
    expect(await readPrefix(db, ['r', 'old'])).toEqual([]);
    expect((await readPrefix(db, ['r', 'new'])).length).toBeGreaterThan(5); // the other run is untouched
    expect(prefixRange(['r', 'x']).includes(['r', 'x', 'phase', 1, 'seed'])).toBe(true);
    expect(prefixRange(['r', 'x']).includes(['r', 'xy'])).toBe(false);
  });
});
