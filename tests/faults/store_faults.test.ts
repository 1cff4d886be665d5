// Every write of a run, faulted in turn. A STaR run on the folder store (a scripted engine, so a whole run
// takes milliseconds) is killed, or hits a full disk, at each of its file operations: inside each file
// write, between the files of a phase and its manifest, and between the manifest and the renames. Each time:
// what manifest.json lists is intact and is exactly what some point of the fault-free run committed, no
// file that was there before changed unless a commit replaced it, a full disk is reported with the path and
// what to do, and running again finishes with the very folder an uninterrupted run writes.
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STAR_PRESETS, type StarConfig } from '../../src/star/config';
import { runStar } from '../../src/star/loop';
import { FolderStore, RunFolderError } from '../../src/star/stores/files';
import { arithmeticTask } from '../../src/star/tasks/arithmetic_task';
import { committed, FakeEngine, type FaultKind, hasStack, injectFault, isLeftover, snapshot } from './helpers';

const CFG: StarConfig = { ...STAR_PRESETS.micro, iterations: 2 };
/** From an empty folder the first commits matter (the configuration, then the seed phase with its base model). */
const BASE: StarConfig = { ...CFG, mode: 'base', rationalize: false };

function run(dir: string, cfg: StarConfig) {
  let t = 0;
  return runStar(cfg, { task: arithmeticTask(cfg), engine: new FakeEngine(), store: new FolderStore(dir), now: () => (t += 1000) });
}

let root: string;
let whole: string; // the uninterrupted run
let half: string; // iteration 1 only: the folder the faulted runs continue
let base: string; // mode base (seed and evaluate) from an empty folder
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'star-faults-'));
  [whole, half, base] = [join(root, 'whole'), join(root, 'half'), join(root, 'base')];
  await run(whole, CFG);
  await run(half, { ...CFG, iterations: 1 });
  await run(base, BASE);
});
afterAll(() => rm(root, { recursive: true, force: true }));

/** The fault-free run from `start`: how many write operations it makes, and what manifest.json lists after each commit. */
async function reference(start: string | null) {
  const dir = join(root, `reference-${start ? 'half' : 'empty'}`);
  if (start) await cp(start, dir, { recursive: true });
  const views = [JSON.stringify(await committed(dir))];
  const inj = injectFault('kill', () => false, (op, path) => {
    if (op === 'rename' && path.endsWith('manifest.json.tmp') === false && path.includes('manifest.json')) {
      const files = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).files as Record<string, { sha256: string }>;
      views.push(JSON.stringify(Object.fromEntries(Object.entries(files).map(([r, e]) => [r, e.sha256]).sort(([a], [b]) => a.localeCompare(b)))));
    }
  });
  try {
    await run(dir, start ? CFG : BASE);
  } finally {
    inj.restore();
  }
  return { count: inj.ops.length, views: new Set(views) };
}

async function faultAt(start: string | null, n: number, kind: FaultKind, views: Set<string>) {
  const cfg = start ? CFG : BASE;
  const dir = join(root, `${kind}-${start ? 'half' : 'empty'}-${n}`);
  if (start) await cp(start, dir, { recursive: true });
  const before = await snapshot(dir);
  const inj = injectFault(kind, (i) => i === n);
  const err = await run(dir, cfg).then(() => null, (e: unknown) => e as Error);
  inj.restore();
  const where = `${kind} at operation ${n}: ${inj.ops[n - 1]}`;
  expect(inj.fired, where).toBe(true);
  expect(err, where).toBeInstanceOf(Error);
  if (kind === 'ENOSPC') {
    expect(err, where).toBeInstanceOf(RunFolderError);
    expect(err!.message, where).toMatch(new RegExp(`^Cannot [a-z ]+ ${dir}.*no space left on the device \\(ENOSPC\\); free some space, then run the same command again`));
    expect(hasStack(err!.message)).toBe(false);
  }

  const after = await snapshot(dir);
  const listed = await committed(dir);
  expect(views.has(JSON.stringify(listed)), `${where}: manifest.json lists a state no commit made`).toBe(true);
  for (const [rel, sha] of Object.entries(listed)) {
    expect(after[rel] === sha || after[`${rel}.pending`] === sha, `${where}: ${rel} is not what manifest.json lists`).toBe(true);
  }
  // A phase's record reaches its name last, so a reader without the manifest never sees it before its files.
  const entries = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8').catch(() => '{"files": {}}')).files as Record<string, { sha256: string; commit: string }>;
  for (const [rel, e] of Object.entries(entries)) {
    if (!/^iteration-\d+\/[a-z]+\.json$/.test(rel) || after[rel] !== e.sha256) continue;
    for (const [other, o] of Object.entries(entries)) if (o.commit === e.commit) expect(after[other], `${where}: ${rel} is in place before ${other}`).toBe(o.sha256);
  }
  for (const [rel, sha] of Object.entries(before)) {
    if (rel === 'manifest.json' || listed[rel] !== sha) continue; // replaced by a commit
    expect(after[rel], `${where}: ${rel} changed`).toBe(sha);
  }
  if (kind !== 'kill') {
    for (const rel of Object.keys(after).filter(isLeftover)) {
      expect(listed[rel.slice(0, -'.pending'.length)], `${where}: ${rel} left behind`).toBe(after[rel]);
    }
  }

  const again = injectFault('kill'); // no fault: the same unflushed writes, for speed
  await run(dir, cfg).finally(() => again.restore());
  expect(await snapshot(dir), `${where}: the resumed run differs from an uninterrupted one`).toEqual(await snapshot(start ? whole : base));
  await rm(dir, { recursive: true });
}

describe('a run folder under faults at every write', () => {
  it('continuing a run: a kill at each write operation, then a resume, gives the uninterrupted folder', async () => {
    const { count, views } = await reference(half);
    expect(count).toBeGreaterThan(50);
    for (let n = 1; n <= count; n++) await faultAt(half, n, 'kill', views);
  });

  it('continuing a run: a full disk at each write operation is reported, changes nothing committed, and resumes', async () => {
    const { count, views } = await reference(half);
    for (let n = 1; n <= count; n++) await faultAt(half, n, 'ENOSPC', views);
  });

  it('from an empty folder: a kill at each write operation never leaves base.safetensors without iteration-0/seed.json', async () => {
    const { count, views } = await reference(null);
    for (let n = 1; n <= count; n++) await faultAt(null, n, 'kill', views);
  });
});
