// The worker's EngineApi without a GPU: a scripted engine on fake-indexeddb. Runs end done, paused
// (asked, device lost, storage full) or interrupted (the worker went away), and every paused or
// interrupted run resumes to the same records an uninterrupted run has.

import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GpuError } from '../../src/gpu/device';
import type { IterationRecord } from '../../src/star/types';
import { openDb } from '../../src/storage/db';
import { IdbRunStore } from '../../src/storage/run_store';
import type { EngineEvent, GpuInfo } from '../../src/worker/api';
import { createEngineApi, type GpuBackend } from '../../src/worker/engine';
import { memoryLocks } from '../../src/worker/locks';
import { type FakeEngineOptions, fakeEngine, microConfig } from '../storage/fixtures';

let n = 0;
const INFO: GpuInfo = { description: 'fake GPU', vendor: 'test', architecture: '', backend: 'fake', f16: false, maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 1 << 27 };

/** A GPU that never exists: each connect gives a fresh fake engine; `loseAfter` ticks, the device is lost. */
function fakeGpu(opts: FakeEngineOptions & { loseAfter?: number } = {}) {
  const gpus: { lose(): void }[] = [];
  const connectGpu = async (): Promise<GpuBackend> => {
    let lose!: (e: Error) => void;
    const lost = new Promise<Error>((r) => (lose = r));
    let ticks = 0;
    const tick = async () => {
      await opts.tick?.();
      if (opts.loseAfter !== undefined && gpus.length === 1 && ++ticks === opts.loseAfter) {
        lose(new GpuError('device-lost', 'The GPU device was lost (unknown): test', 'Resume the run.'));
        await new Promise(() => {}); // a GPU call that never returns
      }
    };
    gpus.push({ lose: () => lose(new Error('lost')) });
    const createCsqaEngine = () => {
      throw new Error('this fake GPU runs arithmetic only (tests/worker/csqa.test.ts fakes CommonsenseQA)');
    };
    return { info: INFO, limits: INFO, lost, createEngine: () => fakeEngine({ ...opts, tick }), createCsqaEngine };
  };
  return { connectGpu, gpus };
}

function setup(opts: Parameters<typeof fakeGpu>[0] = {}) {
  const db = openDb(`test-engine-${++n}`);
  const gpu = fakeGpu(opts);
  const events: EngineEvent[] = [];
  const api = createEngineApi({ db, connectGpu: gpu.connectGpu });
  return { db, gpu, api, events, onEvent: (e: EngineEvent) => void events.push(e) };
}

/** Records without wall times (those differ between sessions). */
const timeless = (rs: IterationRecord[]) => rs.map(({ seconds: _s, tokensPerSecond: _t, ...r }) => r);

const waitFor = async (ok: () => boolean, ms = 5000) => {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 1));
  }
};

afterEach(() => vi.restoreAllMocks());

describe('EngineApi', async () => {
  // The reference: one uninterrupted run.
  const ref = setup();
  const refId = await ref.api.start(microConfig(), 'reference', ref.onEvent);
  await ref.api.settled();
  const refRun = (await ref.api.getRun(refId))!;

  it('runs micro to done, streaming phases, losses, samples and iteration records', async () => {
    expect(refRun).toMatchObject({ name: 'reference', status: 'done', device: 'fake GPU' });
    expect(refRun.iterations.map((r) => r.iteration)).toEqual([0, 1, 2]);
    expect(refRun.finalAccuracy).toBe(refRun.iterations[2].evalAccuracy);
    const kinds = new Set(ref.events.map((e) => e.kind));
    expect([...kinds].sort()).toEqual(['iteration', 'loss', 'phase', 'sample', 'status', 'throughput']);
    const phases = new Set(ref.events.flatMap((e) => (e.kind === 'phase' ? [`${e.iteration}/${e.phase}`] : [])));
    expect(phases).toEqual(new Set(['0/seed', '0/evaluate', ...[1, 2].flatMap((i) => ['generate', 'rationalize', 'finetune', 'evaluate'].map((p) => `${i}/${p}`))]));
    expect(ref.events.filter((e) => e.kind === 'iteration').map((e) => (e as { record: IterationRecord }).record)).toEqual(refRun.iterations);
    expect(ref.events.find((e) => e.kind === 'loss')).toMatchObject({ phase: 'seed', iteration: 0, step: 1, total: 4, loss: 2 });
    expect(ref.events.filter((e) => e.kind === 'status').map((e) => (e as { status: string }).status)).toEqual(['running', 'done']);
    const samples = ref.events.filter((e) => e.kind === 'sample');
    expect(samples.some((s) => s.kind === 'sample' && s.hinted && s.correct)).toBe(true);
    expect(samples.some((s) => s.kind === 'sample' && !s.hinted && s.correct === false)).toBe(true);
  });

  it('lists every rationale of a finished iteration: generated right and wrong, and rationalized', async () => {
    const rows = await ref.api.rationales(refId, 1);
    const gen = rows.filter((r) => r.source === 'generated');
    const rat = rows.filter((r) => r.source === 'rationalized');
    expect(gen).toHaveLength(12);
    expect(gen.filter((r) => !r.correct).length).toBe(refRun.iterations[1].generated - refRun.iterations[1].correct);
    expect(rat).toHaveLength(refRun.iterations[1].rationalized);
    for (const r of rows) {
      expect(r.prompt).toMatch(/^Input:\n[\d ]+ \+ [\d ]+\nTarget:\n$/);
      expect(['1', '2']).toContain(r.category);
      if (r.correct) expect(r.answer).toBe(r.expected);
      else expect(r.answer).not.toBe(r.expected);
    }
    expect(await ref.api.rationales(refId, 0)).toEqual([]);
  });

  it('pauses after the current step and resumes to the same records', async () => {
    const s = setup({ tick: () => new Promise((r) => setTimeout(r, 1)) });
    const id = await s.api.start(microConfig(), 'paused', s.onEvent);
    await waitFor(() => s.events.some((e) => e.kind === 'iteration' && e.record.iteration === 1));
    await s.api.pause();
    const paused = (await s.api.getRun(id))!;
    expect(paused.status).toBe('paused');
    expect(paused.iterations.length).toBeGreaterThanOrEqual(2);
    await s.api.resume(id, s.onEvent);
    await s.api.settled();
    const done = (await s.api.getRun(id))!;
    expect(done.status).toBe('done');
    expect(timeless(done.iterations)).toEqual(timeless(refRun.iterations));
  });

  it('shows a run whose worker went away as interrupted, and resumes it in a new worker', async () => {
    let stall = false;
    const s = setup({ tick: () => (stall ? new Promise(() => {}) : Promise.resolve()) });
    const id = await s.api.start(microConfig(), 'cut off', s.onEvent);
    await waitFor(() => s.events.some((e) => e.kind === 'phase' && e.iteration === 2));
    stall = true; // the old worker is frozen mid-phase, as if terminated
    const fresh = createEngineApi({ db: s.db, connectGpu: fakeGpu().connectGpu });
    expect((await fresh.listRuns()).find((r) => r.id === id)!.status).toBe('interrupted');
    await fresh.resume(id, () => {});
    await fresh.settled();
    const done = (await fresh.getRun(id))!;
    expect(done.status).toBe('done');
    expect(timeless(done.iterations)).toEqual(timeless(refRun.iterations));
  });

  it('keeps a run to the tab running it: another tab sees it going and can neither resume nor delete it', async () => {
    const locks = memoryLocks(); // the origin's locks, as two tabs' workers share them
    let stall = false;
    const s = setup({ tick: () => (stall ? new Promise(() => {}) : Promise.resolve()) });
    const tabA = createEngineApi({ db: s.db, connectGpu: fakeGpu({ tick: () => (stall ? new Promise(() => {}) : Promise.resolve()) }).connectGpu, locks });
    const id = await tabA.start(microConfig(), 'two tabs', s.onEvent);
    await waitFor(() => s.events.some((e) => e.kind === 'phase' && e.iteration === 1));
    stall = true; // tab A is busy mid-phase
    const tabB = createEngineApi({ db: s.db, connectGpu: fakeGpu().connectGpu, locks });
    const seen = (await tabB.listRuns()).find((r) => r.id === id)!;
    expect(seen).toMatchObject({ status: 'running', elsewhere: true });
    expect(await tabB.getRun(id)).toMatchObject({ status: 'running', elsewhere: true });
    await expect(tabB.resume(id, () => {})).rejects.toThrow(/going in another tab or window.*close that tab and resume it here/);
    await expect(tabB.deleteRun(id)).rejects.toThrow(/going in another tab/);
    expect(await tabB.getRun(id)).toBeDefined();
    // Tab A is closed (its worker ends and the browser drops its lock): tab B lists it interrupted and resumes it.
    const tabC = createEngineApi({ db: s.db, connectGpu: fakeGpu().connectGpu, locks: memoryLocks() });
    expect((await tabC.getRun(id))!.status).toBe('interrupted');
    await tabC.resume(id, () => {});
    await tabC.settled();
    expect((await tabC.getRun(id))!.status).toBe('done');
    expect(timeless((await tabC.getRun(id))!.iterations)).toEqual(timeless(refRun.iterations));
  });

  it('releases the lock when a run pauses, so another tab may resume it', async () => {
    const locks = memoryLocks();
    const s = setup({ tick: () => new Promise((r) => setTimeout(r, 1)) });
    const tabA = createEngineApi({ db: s.db, connectGpu: fakeGpu({ tick: () => new Promise((r) => setTimeout(r, 1)) }).connectGpu, locks });
    const id = await tabA.start(microConfig(), 'handed over', s.onEvent);
    await waitFor(() => s.events.some((e) => e.kind === 'phase' && e.iteration === 1));
    expect(await locks.held()).toEqual(new Set([id]));
    await tabA.pause();
    expect(await locks.held()).toEqual(new Set());
    const tabB = createEngineApi({ db: s.db, connectGpu: fakeGpu().connectGpu, locks });
    await tabB.resume(id, () => {});
    await tabB.settled();
    expect((await tabB.getRun(id))!.status).toBe('done');
    expect(await locks.held()).toEqual(new Set());
  });

  it('pauses on a lost device with the reason, and resumes on a new device', async () => {
    const s = setup({ loseAfter: 12 });
    const id = await s.api.start(microConfig(), 'lost', s.onEvent);
    await s.api.settled();
    const paused = (await s.api.getRun(id))!;
    expect(paused.status).toBe('paused');
    expect(paused.error).toMatch(/GPU device was lost.*\n.*resume it/s);
    expect(s.events.at(-1)).toMatchObject({ kind: 'status', status: 'paused' });
    await s.api.resume(id, s.onEvent);
    await s.api.settled();
    expect(s.gpu.gpus).toHaveLength(2); // the GPU was acquired again
    const done = (await s.api.getRun(id))!;
    expect(done).toMatchObject({ status: 'done' });
    expect(timeless(done.iterations)).toEqual(timeless(refRun.iterations));
  });

  it('pauses with a clear message when storage is full, keeping everything stored', async () => {
    const s = setup();
    const real = IDBObjectStore.prototype.put;
    vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (this: IDBObjectStore, value: unknown, key?: IDBValidKey) {
      if (Array.isArray(key) && key[2] === 'phase' && key[3] === 2 && key[4] === 'finetune') {
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      }
      return real.call(this, value, key);
    });
    const id = await s.api.start(microConfig(), 'full', s.onEvent);
    await s.api.settled();
    const paused = (await s.api.getRun(id))!;
    expect(paused.status).toBe('paused');
    expect(paused.error).toMatch(/storage is full: iteration 2's finetune phase could not be saved/i);
    const store = new IdbRunStore(s.db, id);
    expect(await store.getPhase(2, 'rationalize')).toBeDefined();
    expect(await store.getPhase(2, 'finetune')).toBeUndefined();
    vi.restoreAllMocks(); // space was freed
    await s.api.resume(id, s.onEvent);
    await s.api.settled();
    expect(timeless((await s.api.getRun(id))!.iterations)).toEqual(timeless(refRun.iterations));
  });

  it('exports a run and imports it back as a new, finished run', async () => {
    const zip = await ref.api.exportRun(refId);
    const id = await ref.api.importRun(zip);
    expect(id).not.toBe(refId);
    const run = (await ref.api.getRun(id))!;
    expect(run).toMatchObject({ name: 'reference', status: 'done', origin: 'import', finalAccuracy: refRun.finalAccuracy });
    expect(run.iterations).toEqual(refRun.iterations);
    expect(await ref.api.rationales(id, 2)).toEqual(await ref.api.rationales(refId, 2));
    await expect(ref.api.importRun(new Uint8Array([1, 2, 3]).buffer)).rejects.toThrow(/not a zip/);
  });

  it('estimates memory and time, and refuses a run that cannot fit', async () => {
    const ok = await ref.api.estimate(microConfig());
    expect(ok.refusal).toBeNull();
    expect(ok.memory.total).toBeGreaterThan(0);
    expect(ok.calibrated).toBe(true); // the reference run measured this "device"
    const long = await ref.api.estimate(microConfig({ maxDigits: 12 }));
    expect(long.refusal).toMatch(/12-digit problem.*tokens.*reads at most 128/);
    await expect(ref.api.start(microConfig({ maxDigits: 12 }), 'too long', () => {})).rejects.toThrow(/reads at most 128/);
  });

  it('deletes a run with everything stored for it', async () => {
    await ref.api.deleteRun(refId);
    expect(await ref.api.getRun(refId)).toBeUndefined();
  });
});
