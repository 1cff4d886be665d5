// Run archives: the browser's export is the CLI's folder layout zipped; an export imports back to the
// same run; a folder the CLI's FolderStore wrote imports too; malformed and other-version archives are
// refused with a message naming the problem, and leave the database exactly as it was.

import 'fake-indexeddb/auto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { strFromU8, strToU8, unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { FolderStore } from '../../src/star/stores/files';
import { ImportError, readRunArchive, unzipRun, writeRunArchive, zipRun } from '../../src/storage/archive';
import { type Db, openDb, readPrefix } from '../../src/storage/db';
import { fakeArchive, fakeRun, microConfig } from './fixtures';

let n = 0;
const freshDb = (): Db => openDb(`test-archive-${++n}`);

/** Unzips to { path: text-or-bytes } for easy edits, and zips back. */
const files = (zip: Uint8Array) => unzipSync(zip);
const rezip = (f: Record<string, Uint8Array>) => zipSync(f);
const edit = (zip: Uint8Array, change: (f: Record<string, Uint8Array>) => void) => {
  const f = files(zip);
  change(f);
  return rezip(f);
};
const setJSON = (f: Record<string, Uint8Array>, path: string, change: (v: any) => unknown) => {
  f[path] = strToU8(JSON.stringify(change(JSON.parse(strFromU8(f[path])))));
};

describe('export', () => {
  it('writes the CLI folder layout', async () => {
    const { meta, archive } = await fakeArchive('my run');
    const names = Object.keys(files(zipRun(meta, archive))).sort();
    expect(names).toEqual(
      [
        'base.safetensors', 'config.json', 'latest.safetensors', 'model.safetensors', 'run.json', 'star-config.json', 'star-webgpu.json', 'summary.json',
        'iteration-0/evaluate.json', 'iteration-0/seed.json',
        ...[1, 2].flatMap((i) => ['evaluate', 'filter', 'finetune', 'generate', 'rationales', 'rationalize'].map((p) => `iteration-${i}/${p}.${p === 'rationales' ? 'jsonl' : 'json'}`)),
      ].map((p) => `my-run/${p}`).sort(),
    );
    const f = files(zipRun(meta, archive));
    const summary = JSON.parse(strFromU8(f['my-run/summary.json']));
    expect(summary).toMatchObject({ config: meta.config, mode: 'star', iterations: meta.iterations });
    const lines = strFromU8(f['my-run/iteration-1/rationales.jsonl']).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ source: 'generated' });
    expect(lines.at(-1)).toMatchObject({ source: 'rationalized' });
    expect(JSON.parse(strFromU8(f['my-run/config.json']))).toMatchObject({ model_type: 'llama', hidden_size: 16, star_tokenizer: 'arithmetic-char' });
  });

  it('round-trips: export, import, export again gives the same run', async () => {
    const db = freshDb();
    const { meta, archive } = await fakeArchive('round trip');
    const parsed = unzipRun(zipRun(meta, archive));
    expect(parsed.config).toEqual(archive.config);
    expect(parsed.phases).toEqual(archive.phases);
    expect(parsed.weights).toEqual(archive.weights);
    expect(parsed.docs).toEqual(archive.docs);
    expect(parsed.name).toBe('round trip');

    await writeRunArchive(db, { ...meta, id: 'imported' }, parsed);
    const back = await readRunArchive(db, 'imported');
    expect(back.archive.phases).toEqual(archive.phases);
    expect(back.archive.weights).toEqual(archive.weights);
    expect(back.archive.docs).toEqual(archive.docs);
    expect(back.meta).toMatchObject({ name: 'round trip', status: 'done', iterations: meta.iterations });
  });

  it('imports a run folder the CLI wrote (FolderStore + run.json + summary.json), zipped with or without its folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'star-cli-'));
    try {
      const cfg = microConfig();
      const summary = await fakeRun(cfg, new FolderStore(dir));
      await writeFile(join(dir, 'run.json'), JSON.stringify(cfg, null, 2));
      await writeFile(join(dir, 'summary.json'), JSON.stringify({ config: cfg, device: { vendor: 'x' }, wallSeconds: 3, ...summary }));
      const zipped: Record<string, Uint8Array> = {};
      const walk = async (d: string): Promise<void> => {
        for (const e of await readdir(d)) {
          const p = join(d, e);
          if ((await stat(p)).isDirectory()) await walk(p);
          else zipped[relative(dir, p)] = new Uint8Array(await readFile(p));
        }
      };
      await walk(dir);
      for (const zip of [zipSync(zipped), zipSync(Object.fromEntries(Object.entries(zipped).map(([k, v]) => [`runs/a/${k}`, v])))]) {
        const run = unzipRun(zip);
        expect(run.config).toEqual(cfg);
        expect(run.docs.summary).toEqual(summary);
        expect(run.phases.map((p) => `${p.iteration}/${p.phase}`)).toEqual([
          '0/seed', '0/evaluate', ...[1, 2].flatMap((i) => ['generate', 'filter', 'rationalize', 'finetune', 'evaluate'].map((p) => `${i}/${p}`)),
        ]);
        expect(run.weights.base!.byteLength).toBeGreaterThan(0);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('import refuses bad archives and changes nothing', async () => {
  const { meta, archive } = await fakeArchive('good');
  const good = zipRun(meta, archive);
  const cases: [string, Uint8Array, RegExp][] = [
    ['not a zip', strToU8('hello, not a zip'), /not a zip archive/],
    ['no run.json', edit(good, (f) => delete f['good/run.json']), /holds no run\.json/],
    ['two runs', edit(good, (f) => (f['other/run.json'] = f['good/run.json'])), /holds 2 runs/],
    ['run.json not JSON', edit(good, (f) => (f['good/run.json'] = strToU8('{oops'))), /run\.json is not valid JSON/],
    ['unknown model', edit(good, (f) => setJSON(f, 'good/run.json', (c) => ({ ...c, model: 'gpt-9' }))), /run\.json is not a run configuration.*gpt-9/],
    ['a field from another version', edit(good, (f) => setJSON(f, 'good/run.json', (c) => ({ ...c, star: { ...c.star, lookahead: 3 } }))), /unknown field "lookahead"/],
    ['archive version 2', edit(good, (f) => setJSON(f, 'good/star-webgpu.json', (m) => ({ ...m, version: 2 }))), /archive version 2; this version reads version 1/],
    ['a phase of the wrong shape', edit(good, (f) => setJSON(f, 'good/iteration-1/filter.json', (p) => ({ ...p, kept: 'all' }))), /iteration-1\/filter\.json\.kept must be a list/],
    ['a rationale that is not text', edit(good, (f) => setJSON(f, 'good/iteration-2/rationalize.json', (p) => ({ ...p, kept: [{ ...p.kept[0], rationale: 5 }] }))), /kept\[0\]\.rationale must be text/],
    ['too few completions', edit(good, (f) => setJSON(f, 'good/iteration-1/generate.json', (p) => ({ ...p, completions: p.completions.slice(1) }))), /11 completions.*12 problems/],
    ['an iteration past the run', edit(good, (f) => (f['good/iteration-9/evaluate.json'] = f['good/iteration-1/evaluate.json'])), /iteration 9 is beyond/],
    ['an unknown phase', edit(good, (f) => (f['good/iteration-1/dream.json'] = f['good/iteration-1/evaluate.json'])), /"dream" is not a phase/],
    ['corrupt weights', edit(good, (f) => (f['good/latest.safetensors'] = f['good/latest.safetensors'].slice(0, 100))), /latest\.safetensors/],
    ['weights of another model', edit(good, (f) => setJSON(f, 'good/run.json', (c) => ({ ...c, model: 'arithmetic-small' }))), /base\.safetensors.*arithmetic-small/],
    ['missing base weights', edit(good, (f) => delete f['good/base.safetensors']), /no base\.safetensors/],
    ['a summary of the wrong shape', edit(good, (f) => setJSON(f, 'good/summary.json', (s) => ({ ...s, iterations: 3 }))), /summary\.json\.iterations must be a list/],
  ];
  it.each(cases)('%s', async (_, zip, message) => {
    const db = freshDb();
    await writeRunArchive(db, { ...meta, id: 'existing' }, archive);
    const before = await readPrefix(db, []);
    let err: unknown;
    try {
      await writeRunArchive(db, { ...meta, id: 'new' }, unzipRun(zip));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ImportError);
    expect((err as Error).message).toMatch(/^Cannot import this file: /);
    expect((err as Error).message).toMatch(message);
    expect(await readPrefix(db, [])).toEqual(before);
  });
});
