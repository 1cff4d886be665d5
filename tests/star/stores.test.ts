import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FolderStore } from '../../src/star/stores/files';
import { MemoryStore } from '../../src/star/stores/memory';
import type { FilterOutput, KeptExample, RationalizeOutput } from '../../src/star/types';

// Crashes on demand inside node:fs/promises, to show what a failed write leaves behind.
const crash = vi.hoisted(() => ({ rename: false, midWrite: false }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    rename: async (from: string, to: string) => {
      if (crash.rename) throw new Error('simulated crash before rename');
      return real.rename(from, to);
    },
    open: async (...args: Parameters<typeof real.open>) => {
      const fh = await real.open(...args);
      if (!crash.midWrite) return fh;
      return {
        writeFile: async (data: string | Uint8Array) => {
          await fh.writeFile(data.slice(0, Math.floor(data.length / 2)));
          throw new Error('simulated crash mid-write');
        },
        sync: () => fh.sync(),
        close: () => fh.close(),
      };
    },
  };
});

const kept = (prompt: string, source: KeptExample['source']): KeptExample => ({
  prompt, rationale: `<scratch>\n...\n</scratch>\n${prompt}\n`, answer: prompt, source, problem: { a: 1, b: 2 },
});

let dir: string;
let store: FolderStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'star-store-'));
  store = new FolderStore(dir);
  crash.rename = crash.midWrite = false;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every file under dir, relative, sorted. */
async function files(): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('FolderStore', () => {
  it('round-trips documents, phases and weights, in the documented layout', async () => {
    expect(await store.getJSON('config')).toBeUndefined();
    expect(await store.getPhase(0, 'seed')).toBeUndefined();
    expect(await store.getWeights('base')).toBeUndefined();

    await store.putJSON('config', { mode: 'star', steps: { kind: 'add', start: 1, increment: 2 } });
    await store.putPhase(3, 'evaluate', { accuracy: 0.5, byCategory: { 2: { correct: 1, total: 2 } } });
    const bytes = new Uint8Array(1000).map((_, i) => (i * 37) & 255);
    await store.putWeights('base', bytes);

    expect(await store.getJSON('config')).toEqual({ mode: 'star', steps: { kind: 'add', start: 1, increment: 2 } });
    expect(await store.getPhase(3, 'evaluate')).toEqual({ accuracy: 0.5, byCategory: { 2: { correct: 1, total: 2 } } });
    expect(await store.getWeights('base')).toEqual(bytes);
    expect(await files()).toEqual(['base.safetensors', 'config.json', join('iteration-3', 'evaluate.json')]);
    expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).mode).toBe('star');
  });

  it('writes rationales.jsonl after filter and again after rationalize', async () => {
    const filter: FilterOutput = { kept: [kept('1', 'generated'), kept('2', 'generated')], failures: [2, 3], seconds: 1 };
    await store.putPhase(1, 'filter', filter);
    const path = join(dir, 'iteration-1', 'rationales.jsonl');
    const read = async () => (await readFile(path, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l));
    expect((await read()).map((r) => r.prompt)).toEqual(['1', '2']);

    const rationalize: RationalizeOutput = { kept: [kept('3', 'rationalized')], tokensGenerated: 9, seconds: 1 };
    await store.putPhase(1, 'rationalize', rationalize);
    const rows = await read();
    expect(rows.map((r) => [r.prompt, r.source])).toEqual([['1', 'generated'], ['2', 'generated'], ['3', 'rationalized']]);
    expect(Object.keys(rows[0])).toEqual(['prompt', 'rationale', 'answer', 'source', 'problem']);
    expect(rows[2].rationale).toBe(rationalize.kept[0].rationale);
  });

  it('leaves the old file whole and no temp file when a write dies midway', async () => {
    await store.putJSON('summary', { version: 1 });
    await store.putWeights('latest', new Uint8Array([1, 2, 3, 4]));
    crash.midWrite = true;
    await expect(store.putJSON('summary', { version: 2, padding: 'x'.repeat(1000) })).rejects.toThrow(/mid-write/);
    await expect(store.putWeights('latest', new Uint8Array(64).fill(9))).rejects.toThrow(/mid-write/);
    crash.midWrite = false;
    crash.rename = true;
    await expect(store.putJSON('summary', { version: 3 })).rejects.toThrow(/before rename/);
    crash.rename = false;

    expect(await store.getJSON('summary')).toEqual({ version: 1 });
    expect(await store.getWeights('latest')).toEqual(new Uint8Array([1, 2, 3, 4]));
    expect(await files()).toEqual(['latest.safetensors', 'summary.json']);
  });

  it('leaves a phase absent (not half-there) when its write fails', async () => {
    crash.rename = true;
    await expect(store.putPhase(2, 'generate', { completions: ['a'], tokensGenerated: 1, seconds: 1 })).rejects.toThrow();
    crash.rename = false;
    expect(await store.getPhase(2, 'generate')).toBeUndefined();
    expect(await files()).toEqual([]);
  });

  it('ignores the temp file a killed process left behind', async () => {
    await store.putJSON('summary', { ok: true });
    await writeFile(join(dir, 'summary.json.4242-1.tmp'), '{"ok": fal');
    expect(await store.getJSON('summary')).toEqual({ ok: true });
  });

  it('rejects names that are not plain file names and reports corrupt JSON with its path', async () => {
    await expect(store.putJSON('../escape', {})).rejects.toThrow(/not a plain file name/);
    await expect(store.putWeights('a/b', new Uint8Array())).rejects.toThrow(/not a plain file name/);
    await expect(store.getPhase(-1, 'seed')).rejects.toThrow(/iteration must be an integer >= 0/);
    await writeFile(join(dir, 'config.json'), '{"mode": ');
    await expect(store.getJSON('config')).rejects.toThrow(/config\.json is not valid JSON/);
  });
});

describe('MemoryStore', () => {
  it('keeps its own copies, as a serializing store would', async () => {
    const mem = new MemoryStore();
    const value = { kept: [kept('1', 'generated')] };
    const bytes = new Uint8Array([1, 2, 3]);
    await mem.putPhase(1, 'filter', value);
    await mem.putWeights('base', bytes);
    value.kept.length = 0;
    bytes[0] = 99;
    expect((await mem.getPhase<typeof value>(1, 'filter'))!.kept).toHaveLength(1);
    expect(await mem.getWeights('base')).toEqual(new Uint8Array([1, 2, 3]));
    (await mem.getWeights('base'))![1] = 99;
    expect(await mem.getWeights('base')).toEqual(new Uint8Array([1, 2, 3]));
    expect(mem.phaseKeys()).toEqual(['1/filter']);
  });
});
