// Shipped base models: every one registered is the file it claims to be and fits its preset; a run starts
// from it at iteration 1 (the page's worker fetches it, checks it and stores it before the loop), and a file
// that changed since a run began is refused.

import 'fake-indexeddb/auto';
import { readFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { fromHfConfig } from '../../src/hub/hf_config';
import { parseSafetensors } from '../../src/hub/safetensors';
import { presetConfig } from '../../src/model/config';
import { layoutParams } from '../../src/model/params';
import { RUN_PRESETS, runConfig } from '../../src/star/run_config';
import { loadShipped, SHIPPED_BASES, sha256Hex, shippedRef } from '../../src/star/shipped';
import type { SeedOutput } from '../../src/star/types';
import { openDb } from '../../src/storage/db';
import { IdbRunStore } from '../../src/storage/run_store';
import type { GpuInfo } from '../../src/worker/api';
import { createEngineApi } from '../../src/worker/engine';
import { fakeEngine, microConfig, microWeights } from '../storage/fixtures';

const readUrl = async (url: URL) => new Uint8Array(await readFile(url));

describe('the shipped base models', () => {
  it('each is the file its SHA-256 names, a model of its preset, referenced by that preset', async () => {
    for (const [name, entry] of Object.entries(SHIPPED_BASES)) {
      const bytes = await readUrl(entry.url);
      expect(await sha256Hex(bytes), name).toBe(entry.sha256);
      const preset = RUN_PRESETS[name as keyof typeof RUN_PRESETS];
      expect(preset.base, name).toEqual({ shipped: name, sha256: entry.sha256 });
      const cfg = presetConfig(preset.model);
      const file = parseSafetensors(bytes);
      for (const e of layoutParams(cfg).entries) expect(file.header[e.name]?.shape, `${name}: ${e.name}`).toEqual(e.shape);
      const hf = JSON.parse(await readFile(new URL('config.json', entry.url), 'utf8'));
      expect(fromHfConfig(hf)).toMatchObject({ dModel: cfg.dModel, nLayers: cfg.nLayers, nHeads: cfg.nHeads, nKvHeads: cfg.nKvHeads, dFF: cfg.dFF });
    }
  });

  it('the default preset ships one, and --from-scratch trains it instead', () => {
    const cfg = runConfig('demo');
    expect(cfg.base).toEqual(shippedRef('demo'));
    expect(runConfig('demo', { fromScratch: true }).base).toBe('scratch');
  });
});

describe('loading a shipped base model', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const k of Object.keys(SHIPPED_BASES)) if (k.startsWith('test-')) delete SHIPPED_BASES[k];
  });

  const register = async (name: string, bytes: Uint8Array) => {
    const dir = await mkdtemp(join(tmpdir(), 'shipped-'));
    dirs.push(dir);
    const file = join(dir, 'model.safetensors');
    await writeFile(file, bytes);
    SHIPPED_BASES[name] = { url: pathToFileURL(file), sha256: await sha256Hex(bytes) };
    return { shipped: name, sha256: SHIPPED_BASES[name].sha256 };
  };

  it('checks the bytes against the SHA-256 the run recorded, and names an unknown one', async () => {
    const ref = await register('test-check', microWeights(2));
    expect(await loadShipped(ref, readUrl)).toEqual(microWeights(2));
    await writeFile(SHIPPED_BASES['test-check'].url, microWeights(3)); // the file changed since the run began
    await expect(loadShipped(ref, readUrl)).rejects.toThrow(/not the one this run started from.*Start a new run, or train the base model from scratch/);
    await expect(loadShipped({ shipped: 'nope', sha256: ref.sha256 }, readUrl)).rejects.toThrow(/No base model named "nope" ships/);
  });

  it('the page starts a run from it at iteration 1: fetched once, checked, stored as the base', async () => {
    const bytes = microWeights(5);
    const ref = await register('test-page', bytes);
    const fetched: string[] = [];
    const db = openDb('test-shipped-page');
    const info: GpuInfo = { description: 'fake GPU', vendor: 'test', architecture: '', backend: 'fake', f16: false, maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 1 << 27 };
    const engines: ReturnType<typeof fakeEngine>[] = [];
    const api = createEngineApi({
      db,
      connectGpu: async () => ({
        info, limits: info, lost: new Promise(() => {}),
        createEngine: () => {
          const e = fakeEngine();
          engines.push(e);
          return e;
        },
        createCsqaEngine: () => {
          throw new Error('arithmetic only');
        },
      }),
      fetchBytes: async (url) => {
        fetched.push(url.href);
        return readUrl(url);
      },
    });
    const events: { kind: string; text?: string }[] = [];
    const id = await api.start({ ...microConfig(), base: ref }, 'shipped', (e) => void events.push(e));
    await api.settled();
    const run = (await api.getRun(id))!;
    expect(run.status).toBe('done');
    expect(fetched).toEqual([SHIPPED_BASES['test-page'].url.href]);
    const store = new IdbRunStore(db, id);
    expect(await store.getWeights('base')).toEqual(bytes);
    expect(await store.getPhase<SeedOutput>(0, 'seed')).toMatchObject({ reused: true, steps: 0 });
    expect(engines[0].calls).not.toContain('initRandom'); // never trained from random weights
    expect(events.some((e) => e.kind === 'model' && /Base model test-page: trained ahead of time, checked/.test(e.text ?? ''))).toBe(true);
  });
});
