import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/hub/safetensors';
import { FolderStore, remedy, RunFolderError } from '../../src/star/stores/files';
import { ioFailure } from '../../src/star/stores/folder_fs';
import { MemoryStore } from '../../src/star/stores/memory';
import type { FilterOutput, KeptExample, RationalizeOutput } from '../../src/star/types';
import { injectFault } from '../faults/helpers';

const kept = (prompt: string, source: KeptExample['source']): KeptExample => ({
  prompt, rationale: `<scratch>\n...\n</scratch>\n${prompt}\n`, answer: prompt, source, problem: { a: 1, b: 2 },
});
const weights = (x: number) => writeSafetensors([{ name: 'w', data: new Float32Array([x, x + 1]), shape: [2] }]);
const gen = { completions: ['a'], tokensGenerated: 1, seconds: 1 };
const ev = { accuracy: 0.5, byCategory: {}, tokensGenerated: 2, seconds: 1 };
const ft = { examples: 1, steps: 1, losses: [1], tokensTrained: 3, seconds: 1 };

let dir: string;
let store: FolderStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'star-store-'));
  store = new FolderStore(dir);
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

/** Two iterations of phases, as the loop commits them. */
async function twoIterations(s: FolderStore): Promise<void> {
  await s.putJSON('star-config', { seed: 1 });
  await s.putWeights('base', weights(0));
  await s.putPhase(0, 'seed', { reused: false, examples: 1, steps: 1, losses: [1], tokensTrained: 1, seconds: 1 });
  await s.putPhase(0, 'evaluate', ev);
  for (const it of [1, 2]) {
    await s.putPhase(it, 'generate', gen);
    await s.putPhase(it, 'filter', { kept: [kept(`${it}`, 'generated')], failures: [], seconds: 1 });
    await s.putWeights('latest', weights(it));
    await s.putPhase(it, 'finetune', ft);
    await s.putPhase(it, 'evaluate', ev);
  }
}

describe('FolderStore', () => {
  it('round-trips documents, phases and weights in the documented layout, each listed in manifest.json with its length and SHA-256', async () => {
    expect(await store.getJSON('config')).toBeUndefined();
    expect(await store.getPhase(0, 'seed')).toBeUndefined();
    expect(await store.getWeights('base')).toBeUndefined();

    await store.putJSON('config', { mode: 'star', steps: { kind: 'add', start: 1, increment: 2 } });
    const bytes = weights(7);
    await store.putWeights('base', bytes);
    await store.putPhase(0, 'seed', { reused: false, seconds: 1 });
    await store.putPhase(3, 'evaluate', { accuracy: 0.5, byCategory: { 2: { correct: 1, total: 2 } } });

    const again = new FolderStore(dir);
    expect(await again.getJSON('config')).toEqual({ mode: 'star', steps: { kind: 'add', start: 1, increment: 2 } });
    expect(await again.getPhase(3, 'evaluate')).toEqual({ accuracy: 0.5, byCategory: { 2: { correct: 1, total: 2 } } });
    expect(await again.getWeights('base')).toEqual(bytes);
    expect(await files()).toEqual(['base.safetensors', 'config.json', join('iteration-0', 'seed.json'), join('iteration-3', 'evaluate.json'), 'manifest.json']);
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.files['base.safetensors']).toEqual({
      bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex'), commit: 'iteration-0/seed',
    });
    expect(Object.keys(manifest.files).sort()).toEqual(['base.safetensors', 'config.json', 'iteration-0/seed.json', 'iteration-3/evaluate.json']);
    expect(await again.completedPhases()).toEqual(['iteration-0/seed', 'iteration-3/evaluate']);
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

  it('commits weights with the phase that produced them: base.safetensors never appears without iteration-0/seed.json', async () => {
    await store.putWeights('base', weights(1));
    expect(await store.getWeights('base')).toEqual(weights(1)); // this store sees what it staged...
    expect(await new FolderStore(dir).getWeights('base')).toBeUndefined(); // ...a reader of the folder does not
    expect(await files()).toEqual(['base.safetensors.pending']);
    await store.putJSON('star-config', {}); // a document does not commit staged weights
    expect(await new FolderStore(dir).getWeights('base')).toBeUndefined();
    await store.putPhase(0, 'seed', { reused: false });
    expect(await new FolderStore(dir).getWeights('base')).toEqual(weights(1));
    expect(await files()).toEqual(['base.safetensors', join('iteration-0', 'seed.json'), 'manifest.json', 'star-config.json']);
  });

  it('leaves the old files whole and no temp file when any write of a commit fails', async () => {
    await twoIterations(store);
    const before = await files();
    const contents = await Promise.all(before.map((f) => readFile(join(dir, f))));
    for (let n = 1; ; n++) {
      const s = new FolderStore(dir);
      const inj = injectFault('EACCES', (i) => i === n);
      await s.putWeights('latest', weights(9)).then(() => s.putPhase(2, 'finetune', { ...ft, steps: 99 })).catch(() => {});
      inj.restore();
      if (!inj.fired) break;
      const manifestChanged = !(await readFile(join(dir, 'manifest.json'))).equals(contents[before.indexOf('manifest.json')]);
      if (manifestChanged) break; // the commit went through: only the renames after it were left to fail
      expect(await files()).toEqual(before);
      expect(await Promise.all(before.map((f) => readFile(join(dir, f))))).toEqual(contents);
    }
  });

  it('finishes a commit that was killed after its manifest: reads use the .pending file, the next writer renames it', async () => {
    await twoIterations(store);
    const inj = injectFault('kill', (_, op, path) => op === 'rename' && path.endsWith('latest.safetensors.pending'));
    const s = new FolderStore(dir);
    await expect(s.putWeights('latest', weights(3)).then(() => s.putPhase(3, 'finetune', ft))).rejects.toThrow(/killed/);
    inj.restore();
    expect(await readFile(join(dir, 'latest.safetensors'))).toEqual(Buffer.from(weights(2)));
    expect(await new FolderStore(dir).getWeights('latest')).toEqual(weights(3)); // committed with iteration-3/finetune
    const next = new FolderStore(dir);
    await next.recover();
    expect(await readFile(join(dir, 'latest.safetensors'))).toEqual(Buffer.from(weights(3)));
    expect((await files()).filter((f) => f.endsWith('.pending') || f.endsWith('.tmp'))).toEqual([]);
    expect(await next.completedPhases()).toContain('iteration-3/finetune');
  });

  it('drops what a killed commit left before its manifest: the phase is absent, not half there', async () => {
    await twoIterations(store);
    const inj = injectFault('kill', (_, op, path) => op === 'rename' && path.includes('manifest.json'));
    const s = new FolderStore(dir);
    await expect(s.putWeights('latest', weights(3)).then(() => s.putPhase(3, 'finetune', ft))).rejects.toThrow(/killed/);
    inj.restore();
    const next = new FolderStore(dir);
    expect(await next.getPhase(3, 'finetune')).toBeUndefined();
    expect(await next.getWeights('latest')).toEqual(weights(2));
    await next.recover();
    expect((await files()).filter((f) => f.includes('pending') || f.endsWith('.tmp') || f.startsWith('iteration-3'))).toEqual([]);
  });

  describe('a damaged file is named, with what to delete, and never used or rewritten', () => {
    const cases: [string, string, (b: Buffer) => Buffer, RegExp][] = [
      ['a truncated phase', 'iteration-2/finetune.json', (b) => b.subarray(0, 10), /iteration-2\/finetune\.json is damaged \(10 bytes where manifest\.json lists \d+\): in .*, delete iteration-2\/finetune\.json, iteration-2\/evaluate\.json and every iteration folder after iteration-2, then run the same command again to redo them\.$/],
      ['a phase changed in place', 'iteration-2/generate.json', (b) => Buffer.from(b.toString().replace('"a"', '"b"')), /generate\.json is damaged \(its SHA-256 differs from manifest\.json's\): in .*, delete iteration-1\/finetune\.json, iteration-1\/evaluate\.json and every iteration folder after iteration-1/],
      ['rationales of iteration 1', 'iteration-1/rationales.jsonl', (b) => b.subarray(1), /delete every iteration-<n> folder but iteration-0/],
      ['the base model', 'base.safetensors', (b) => b.subarray(0, b.length - 4), /base\.safetensors is damaged .*delete base\.safetensors and every iteration-<n> folder, then run the same command again to train the base model anew/],
      ['the latest weights', 'latest.safetensors', (b) => Buffer.concat([b, Buffer.from([0])]), /latest\.safetensors is damaged .*delete iteration-2\/finetune\.json, iteration-2\/evaluate\.json/],
      ['the loop\'s configuration', 'star-config.json', () => Buffer.from('{'), /star-config\.json is damaged .*cannot be rebuilt: restore the file from a copy, or start a new --out folder/],
      ['iteration 0\'s evaluation', 'iteration-0/evaluate.json', () => Buffer.from('{}'), /delete iteration-0\/evaluate\.json, then run the same command again to redo it/],
    ];
    for (const [what, rel, damage, message] of cases) {
      it(what, async () => {
        await twoIterations(store);
        const path = join(dir, rel);
        const bad = damage(await readFile(path));
        await writeFile(path, bad);
        const s = new FolderStore(dir);
        const err = await s.recover().then(() => null, (e: Error) => e);
        expect(err).toBeInstanceOf(RunFolderError);
        expect(err!.message).toMatch(message);
        expect(err!.message).not.toMatch(/\n/);
        await expect(s.putPhase(3, 'generate', gen)).rejects.toThrow(RunFolderError); // no writes into a damaged folder
        expect(await readFile(path)).toEqual(bad);
        expect((await files()).some((f) => f.startsWith('iteration-3'))).toBe(false);
      });
    }

    it('a reader (no recover) refuses the damaged file too', async () => {
      await twoIterations(store);
      await writeFile(join(dir, 'iteration-1', 'generate.json'), '{"completions": [');
      await expect(new FolderStore(dir).getPhase(1, 'generate')).rejects.toThrow(/iteration-1\/generate\.json is damaged/);
      await writeFile(join(dir, 'latest.safetensors'), 'x');
      await expect(new FolderStore(dir).getWeights('latest')).rejects.toThrow(/latest\.safetensors is damaged \(1 bytes/);
    });
  });

  it('redoes phases deleted as the message says; refuses a hole, and weights whose phase is gone', async () => {
    await twoIterations(store);
    await rm(join(dir, 'iteration-1', 'generate.json'));
    await expect(new FolderStore(dir).recover()).rejects.toThrow(/generate\.json is missing, though manifest\.json lists it and what it feeds is still there: in .*, delete every iteration-<n> folder but iteration-0/);

    await rm(join(dir, 'iteration-1'), { recursive: true, force: true });
    await rm(join(dir, 'iteration-2'), { recursive: true, force: true });
    const s = new FolderStore(dir);
    await s.recover();
    expect(await s.completedPhases()).toEqual(['iteration-0/seed', 'iteration-0/evaluate']);
    // latest.safetensors came from iteration-2/finetune, which is gone: it must not stand in for M_1.
    await expect(s.getWeights('latest')).rejects.toThrow(/latest\.safetensors was saved by iteration-2\/finetune, which is no longer in the folder/);
    await s.putPhase(1, 'generate', gen);
    await s.putWeights('latest', weights(5));
    await s.putPhase(1, 'finetune', ft);
    expect(await new FolderStore(dir).getWeights('latest')).toEqual(weights(5));
  });

  it('adopts a folder without manifest.json (an older version, or an export of the app) and checks its files', async () => {
    await mkdir(join(dir, 'iteration-0'));
    await writeFile(join(dir, 'base.safetensors'), weights(4));
    await writeFile(join(dir, 'iteration-0', 'seed.json'), JSON.stringify({ reused: false }));
    await writeFile(join(dir, 'summary.json.4242-1.tmp'), '{"ok": fal'); // a killed older version's temp file
    expect(await store.getWeights('base')).toEqual(weights(4)); // read as it is
    await store.putPhase(0, 'evaluate', ev);
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    expect(Object.keys(manifest.files).sort()).toEqual(['base.safetensors', 'iteration-0/evaluate.json', 'iteration-0/seed.json']);
    expect(await files()).not.toContain('summary.json.4242-1.tmp');

    const legacy = await mkdtemp(join(tmpdir(), 'star-store-'));
    try {
      await writeFile(join(legacy, 'base.safetensors'), weights(4).subarray(0, 20));
      await expect(new FolderStore(legacy).recover()).rejects.toThrow(/base\.safetensors is damaged \(base\.safetensors: .*\): in .*, delete base\.safetensors/);
      await expect(new FolderStore(legacy).putJSON('x', 1)).rejects.toThrow(RunFolderError);
    } finally {
      await rm(legacy, { recursive: true, force: true });
    }
  });

  it('rejects names that are not plain file names, and a damaged manifest.json', async () => {
    await expect(store.putJSON('../escape', {})).rejects.toThrow(/not a plain file name/);
    await expect(store.putJSON('manifest', {})).rejects.toThrow(/not a plain file name/);
    await expect(store.putWeights('a/b', new Uint8Array())).rejects.toThrow(/not a plain file name/);
    await expect(store.getPhase(-1, 'seed')).rejects.toThrow(/iteration must be an integer >= 0/);
    await writeFile(join(dir, 'manifest.json'), '{"format": ');
    await expect(new FolderStore(dir).getJSON('config')).rejects.toThrow(/manifest\.json is damaged \(not valid JSON.*\); delete it to have the folder's files checked and listed anew/);
    await writeFile(join(dir, 'manifest.json'), '{"name": "a web app"}');
    await expect(new FolderStore(dir).getJSON('config')).rejects.toThrow(/manifest\.json is not a run folder's manifest \(its "format" is undefined\); give a folder written by npm run star/);
  });
});

describe('what a failed write says', () => {
  it('names the path, what failed and what to do, for a full disk, a read-only disk and a permission', () => {
    const err = (code: string) => Object.assign(new Error('x'), { code });
    expect((ioFailure('write', '/r/a.json', err('ENOSPC'), 'saving iteration-1/finetune') as Error).message).toBe(
      'Cannot write /r/a.json (saving iteration-1/finetune): no space left on the device (ENOSPC); free some space, then run the same command again: it resumes after the last completed phase.',
    );
    expect((ioFailure('write', '/r/a.json', err('EROFS')) as Error).message).toMatch(/read-only \(EROFS\); copy the folder to a writable disk/);
    expect((ioFailure('write', '/r/a.json', err('EACCES')) as Error).message).toMatch(/permission denied \(EACCES\); make the folder and its files yours and writable/);
    const bug = new Error('not an I/O error');
    expect(ioFailure('write', '/r/a.json', bug)).toBe(bug);
  });

  it('says what to delete for each kind of file', () => {
    expect(remedy('summary.json', 'summary', 2)).toBe('delete summary.json, then run the same command again to write it anew');
    expect(remedy('run.json', 'run', 2)).toMatch(/cannot be rebuilt/);
    expect(remedy('iteration-3/rationalize.json', '', 2)).toMatch(/^delete iteration-2\/finetune\.json, iteration-2\/evaluate\.json and every iteration folder after iteration-2/);
    expect(remedy('latest.safetensors', 'adopted', 4)).toMatch(/^delete iteration-4\/finetune\.json/);
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
