// Hostile and foreign archives, built here byte by byte: entries that climb out of their folder or name an
// absolute path, a name given twice, sizes declared past the limits (a zip bomb) or different from what the
// entry holds, too many entries, and files of the wrong type. Each import is refused with a message naming
// the entry and saying what to do, through the worker's own importRun, and the database is left exactly
// as it was.

import 'fake-indexeddb/auto';
import { strFromU8, strToU8, unzipSync, zipSync, type Zippable } from 'fflate';
import { describe, expect, it } from 'vitest';
import { unzipRun, zipRun } from '../../src/storage/archive';
import { IMPORT_LIMITS } from '../../src/storage/archive_zip';
import { openDb, readPrefix } from '../../src/storage/db';
import { createEngineApi } from '../../src/worker/engine';
import { memoryLocks } from '../../src/worker/locks';
import { fakeArchive } from './fixtures';

const MiB = 1 << 20;
const { meta, archive } = await fakeArchive('good');
const good = zipRun(meta, archive);
const goodFiles = unzipSync(good);

/** The good archive's files, changed by `change`, zipped again (JSON deflated, weights stored, as the app writes them). */
function rebuilt(change: (f: Record<string, Uint8Array>) => void = () => {}): Uint8Array {
  const f = { ...goodFiles };
  change(f);
  const z: Zippable = {};
  for (const [name, data] of Object.entries(f)) z[name] = [data, { level: name.endsWith('.safetensors') ? 0 : 6 }];
  return zipSync(z);
}

const indexOf = (hay: Uint8Array, needle: Uint8Array, from = 0) => {
  outer: for (let i = from; i <= hay.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
};

/** Renames entry `from` to `to` (same length) in the local and the central header, as a hand-made zip could. */
function renamed(zip: Uint8Array, from: string, to: string): Uint8Array {
  const out = zip.slice();
  const a = strToU8(from);
  expect(a.length).toBe(strToU8(to).length);
  let at = 0;
  let hits = 0;
  while ((at = indexOf(out, a, at)) >= 0) {
    out.set(strToU8(to), at);
    at += a.length;
    hits++;
  }
  expect(hits).toBe(2);
  return out;
}

/** Sets the uncompressed size that the central directory declares for entry `name`. */
function declared(zip: Uint8Array, name: string, size: number): Uint8Array {
  const out = zip.slice();
  const view = new DataView(out.buffer);
  const want = strToU8(name);
  for (let at = 0; (at = indexOf(out, new Uint8Array([0x50, 0x4b, 0x01, 0x02]), at)) >= 0; at += 4) {
    const n = view.getUint16(at + 28, true);
    if (strFromU8(out.subarray(at + 46, at + 46 + n)) !== strFromU8(want)) continue;
    view.setUint32(at + 24, size, true);
    return out;
  }
  throw new Error(`no central header for ${name}`);
}

const json = (v: unknown) => strToU8(JSON.stringify(v));
const REEXPORT = /export the run again from the app.*import that zip\.$/;

const cases: [string, () => Uint8Array, RegExp][] = [
  ['an entry that climbs out with ../', () => rebuilt((f) => (f['good/../../evil/iteration-1/evaluate.json'] = f['good/iteration-1/evaluate.json'])),
    /entry "good\/\.\.\/\.\.\/evil\/iteration-1\/evaluate\.json" climbs out of its folder with "\.\."/],
  ['a ../ entry outside the run folder', () => rebuilt((f) => (f['../outside.txt'] = strToU8('x'))), /entry "\.\.\/outside\.txt" climbs out/],
  ['a backslash ..\\ entry', () => rebuilt((f) => (f['good\\..\\..\\evil.json'] = strToU8('{}'))), /entry "good\\\\\.\.\\\\\.\.\\\\evil\.json" climbs out/],
  ['an absolute path', () => rebuilt((f) => (f['/etc/good/run.json'] = f['good/run.json'])), /entry "\/etc\/good\/run\.json" is an absolute path/],
  ['a drive-letter path', () => rebuilt((f) => (f['C:/good/summary.json'] = f['good/summary.json'])), /entry "C:\/good\/summary\.json" is an absolute path/],
  ['one name given twice (the second copy a different run)', () =>
    renamed(rebuilt((f) => (f['good/run.jsoX'] = json({ ...JSON.parse(strFromU8(f['good/run.json'])), model: 'arithmetic-small' }))), 'good/run.jsoX', 'good/run.json'),
  /entry "good\/run\.json" appears twice/],
  ['a JSON entry declaring more than the per-file limit', () => declared(rebuilt(), 'good/iteration-1/generate.json', 300 * MiB),
    /entry "good\/iteration-1\/generate\.json" declares 300 MiB uncompressed, more than the 256 MiB any JSON document of a run holds \(a zip bomb/],
  ['a weights entry declaring more than the per-file limit', () => declared(rebuilt(), 'good/latest.safetensors', 0xfffffff0),
    /entry "good\/latest\.safetensors" declares 4\.0 GiB uncompressed, more than the 2\.0 GiB any weights file/],
  ['entries declaring more than the total limit', () => {
    let z = rebuilt();
    for (const name of Object.keys(goodFiles).filter((n) => n.endsWith('.json'))) z = declared(z, name, 250 * MiB);
    return z;
  }, /its run files declare 4\.\d GiB uncompressed, more than the 4\.0 GiB an import reads/],
  ['a small archive declaring a thousand times its size', () => declared(rebuilt(), 'good/base.safetensors', 1024 * MiB),
    /its run files declare 1\.0 GiB uncompressed from a \d+ bytes archive, more than 100 times its size \(a zip bomb/],
  ['an entry declaring more bytes than it holds', () => {
    const size = goodFiles['good/iteration-2/filter.json'].length;
    return declared(rebuilt(), 'good/iteration-2/filter.json', size + 1000);
  }, /entry "good\/iteration-2\/filter\.json" is damaged: it declares \d+ bytes but holds \d+/],
  ['more entries than any run holds', () => rebuilt((f) => {
    for (let i = 0; i <= IMPORT_LIMITS.entries; i++) f[`good/extra/${i}.txt`] = new Uint8Array(0);
  }), /it holds more than 10000 entries/],
  ['a phase that is a list, not an object', () => rebuilt((f) => (f['good/iteration-1/generate.json'] = json([]))), /iteration-1\/generate\.json must be an object, got a list/],
  ['a summary that is text', () => rebuilt((f) => (f['good/summary.json'] = json('done'))), /summary\.json must be an object, got string/],
  ['a run.json that holds weights', () => rebuilt((f) => (f['good/run.json'] = f['good/base.safetensors'])), /run\.json is not valid JSON/],
  ['a manifest that is null', () => rebuilt((f) => (f['good/star-webgpu.json'] = json(null))), /star-webgpu\.json names format undefined/],
  ['weights that are JSON, not safetensors', () => rebuilt((f) => (f['good/base.safetensors'] = json({ not: 'weights' }))),
    /base\.safetensors is not a safetensors weights file/],
  ['weights that are empty', () => rebuilt((f) => (f['good/latest.safetensors'] = new Uint8Array(0))), /latest\.safetensors is not a safetensors weights file/],
];

describe('import refuses hostile archives, naming the entry and what to do, and stores nothing', async () => {
  const db = openDb('test-archive-hostile');
  const api = createEngineApi({ db, connectGpu: () => Promise.reject(new Error('no GPU in this test')), locks: memoryLocks() });
  const existing = await api.importRun(good.slice().buffer);
  const before = await readPrefix(db, []);

  it('the good archive itself imports', () => {
    expect(unzipRun(rebuilt()).phases.length).toBe(archive.phases.length);
    expect(existing).toBeTruthy();
  });

  it.each(cases)('%s', async (_, build, message) => {
    const zip = build();
    const err = await api.importRun(zip.slice().buffer).then(() => null, (e: Error) => e);
    expect(err?.name).toBe('ImportError');
    expect(err!.message).toMatch(/^Cannot import this file: /);
    expect(err!.message).toMatch(message);
    expect(err!.message).toMatch(REEXPORT);
    expect(await readPrefix(db, [])).toEqual(before);
  });
});
