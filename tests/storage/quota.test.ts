// A full disk at every write of a run. From the n-th IndexedDB put on, every put fails with
// QuotaExceededError until space is freed, for each n a run makes: thrown by put itself, or, as browsers
// report it, failing the request and aborting its transaction. The store and the worker's session both
// end with a message saying what was not saved and what to do; what is stored is a prefix of the loop's
// phases, each whole; and once space is freed the run resumes to exactly the records and phases of a run
// that never hit a full disk.

import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { IterationRecord, PhaseName } from '../../src/star/types';
import { type Db, keys, openDb, readPrefix, StorageFullError } from '../../src/storage/db';
import { CHUNK, IdbRunStore } from '../../src/storage/run_store';
import type { EngineEvent, GpuInfo } from '../../src/worker/api';
import { createEngineApi, type GpuBackend } from '../../src/worker/engine';
import { memoryLocks } from '../../src/worker/locks';
import { fakeEngine, fakeRun, microConfig } from './fixtures';

type Mode = 'put throws' | 'transaction aborts';
const MODES: Mode[] = ['put throws', 'transaction aborts'];

/** Counts the puts made from now on; from the n-th on (n > 0), each fails as a full disk does, until free(). */
function disk(n = 0, mode: Mode = 'transaction aborts') {
  const real = IDBObjectStore.prototype.put;
  let puts = 0;
  let full = false;
  const spy = vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
    if (n > 0 && ++puts >= n) full = true;
    else if (n === 0) puts++;
    if (!full) return real.apply(this, args);
    const error = new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    if (mode === 'put throws') throw error;
    // fake-indexeddb's request queue: the request fails when it runs, and its error aborts the transaction.
    const tx = this.transaction as unknown as { _execRequestAsync(r: { operation: () => never; source: unknown }): IDBRequest };
    return tx._execRequestAsync({ operation: () => { throw error; }, source: this });
  });
  return {
    get puts() {
      return puts;
    },
    free: () => spy.mockRestore(),
  };
}

afterEach(() => vi.restoreAllMocks());

const cfg = microConfig();
let dbs = 0;
const freshDb = (): Db => openDb(`test-quota-${++dbs}`);

/** A run's stored phases in the order the loop writes them, with their values (less their wall times, which differ between sessions). */
async function phases(db: Db, runId: string) {
  const order: PhaseName[] = ['seed', 'generate', 'filter', 'rationalize', 'finetune', 'evaluate'];
  const rows = await readPrefix<{ seconds: number }>(db, keys.phases(runId));
  return rows
    .map(({ key, value: { seconds: _s, ...value } }) => ({ iteration: key[3] as number, phase: key[4] as PhaseName, value }))
    .sort((a, b) => a.iteration - b.iteration || order.indexOf(a.phase) - order.indexOf(b.phase));
}

/** What was stored is the reference's first phases, each whole; the last-written mark agrees; weights read back whole. */
async function expectConsistent(db: Db, runId: string, ref: Awaited<ReturnType<typeof phases>>) {
  const stored = await phases(db, runId);
  expect(stored).toEqual(ref.slice(0, stored.length));
  const mark = await readPrefix(db, keys.mark(runId));
  if (stored.length > 0) expect(mark[0]?.value).toMatchObject({ iteration: stored.at(-1)!.iteration, phase: stored.at(-1)!.phase });
  for (const name of ['base', 'latest']) await new IdbRunStore(db, runId).getWeights(name); // throws when chunks are missing
  return stored.length;
}

describe('a full disk under the IndexedDB RunStore', async () => {
  const refDb = freshDb();
  const count = disk();
  const refSummary = await fakeRun(cfg, new IdbRunStore(refDb, 'ref', CHUNK, true));
  const writes = count.puts;
  count.free();
  const ref = await phases(refDb, 'ref');

  it('a run makes a few dozen writes (every one is failed below)', () => {
    expect(writes).toBeGreaterThan(ref.length);
    expect(writes).toBeLessThan(100);
  });

  it.each(MODES)('%s: at every write the run stops with a clear StorageFullError, keeps a whole prefix and resumes to the same run', async (mode) => {
    const failedAt = new Set<string>();
    for (let n = 1; n <= writes; n++) {
      const db = freshDb();
      const d = disk(n, mode);
      const err = await fakeRun(cfg, new IdbRunStore(db, 'a', CHUNK, true)).then(() => null, (e: unknown) => e);
      d.free();
      expect(err, `write ${n}`).toBeInstanceOf(StorageFullError);
      expect((err as Error).message).toMatch(/^Browser storage is full: .+ could not be saved\. Nothing already stored was changed\. Free space or delete old runs .*then try again\.$/);
      failedAt.add((err as StorageFullError).what);
      const kept = await expectConsistent(db, 'a', ref);
      expect(await fakeRun(cfg, new IdbRunStore(db, 'a', CHUNK, true)), `resumed after write ${n} (${kept} phases kept)`).toEqual(refSummary);
      expect(await phases(db, 'a')).toEqual(ref);
    }
    // Every write was hit: the config, each phase (with the weights it saved), the summary.
    expect([...failedAt].sort()).toEqual(["the run's star-config", "the run's summary", ...ref.map((p) => `iteration ${p.iteration}'s ${p.phase} phase`)].sort());
  }, 120_000);
});

// ---- The worker's session: the run pauses with the message, and Resume finishes it ----

const INFO: GpuInfo = { description: 'fake GPU', vendor: 'test', architecture: '', backend: 'fake', f16: false, maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 1 << 27 };
const fakeGpu = async (): Promise<GpuBackend> => ({
  info: INFO, limits: INFO, lost: new Promise(() => {}), createEngine: () => fakeEngine(),
  createCsqaEngine: () => {
    throw new Error('this fake GPU runs arithmetic only');
  },
});

function setup() {
  const db = freshDb();
  const events: EngineEvent[] = [];
  const api = createEngineApi({ db, connectGpu: fakeGpu, locks: memoryLocks() });
  return { db, api, events, onEvent: (e: EngineEvent) => void events.push(e) };
}

const timeless = (rs: IterationRecord[]) => rs.map(({ seconds: _s, tokensPerSecond: _t, ...r }) => r);

describe('a full disk under a run in the worker', async () => {
  const ref = setup();
  const count = disk();
  const refId = await ref.api.start(cfg, 'reference', ref.onEvent);
  await ref.api.settled();
  const writes = count.puts;
  count.free();
  const refRun = (await ref.api.getRun(refId))!;
  const refPhases = await phases(ref.db, refId);

  it.each(MODES)('%s: at every write the run pauses with "storage is full … then Resume", keeps a whole prefix, and Resume finishes it', async (mode) => {
    expect(refRun.status).toBe('done');
    for (let n = 1; n <= writes; n++) {
      const s = setup();
      const d = disk(n, mode);
      const id = await s.api.start(cfg, 'full', s.onEvent).catch((e: Error) => e);
      if (id instanceof Error) {
        // The run's first record could not be written: nothing was stored, and the page shows why.
        d.free();
        expect(n).toBe(1);
        expect(id.message).toMatch(/^Browser storage is full: run "full" could not be saved\..*then try again\.$/);
        expect(await s.api.listRuns()).toEqual([]);
        continue;
      }
      await s.api.settled();
      d.free();
      const status = s.events.filter((e) => e.kind === 'status').at(-1) as Extract<EngineEvent, { kind: 'status' }>;
      expect(status, `write ${n}`).toMatchObject({ status: 'paused' });
      expect(status.error).toMatch(/^Browser storage is full: .+ could not be saved, so the run is paused after its last completed phase.*Free space or delete old runs .*then Resume\.$/);
      // Stored as paused with the message; or, when even that write was refused, as it last was: idle (not
      // started yet) or running (listed as interrupted). The page keeps the event's message (src/ui/main.ts).
      const run = (await s.api.getRun(id))!;
      if (run.status === 'paused') expect(run.error).toBe(status.error);
      else expect(['idle', 'interrupted']).toContain(run.status);
      await expectConsistent(s.db, id, refPhases);

      await s.api.resume(id, s.onEvent);
      await s.api.settled();
      const done = (await s.api.getRun(id))!;
      expect(done.status, `resumed after write ${n}`).toBe('done');
      expect(done.error).toBeUndefined();
      expect(timeless(done.iterations)).toEqual(timeless(refRun.iterations));
      expect(await phases(s.db, id)).toEqual(refPhases);
    }
  }, 240_000);
});
