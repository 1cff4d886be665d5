// The runner under faults, on the real engine (micro preset, SwiftShader): a full or read-only disk, a
// denied lock file and a bug at chosen writes of a run; damaged files in a finished folder; and a real
// `npm run star` process killed with SIGKILL mid-run. Each asserts the exit code, a message without a stack
// that says what to do, that no file that was there before changed, and that the same command then finishes.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../cli/helpers';
import { committed, type FaultKind, hasStack, injectFault, type Op, snapshot } from './helpers';

const RUN = ['--preset', 'micro', '--mode', 'star', '--seed', '2'];
let root: string;
let first: string; // one finished iteration: the folder each fault continues
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'star-cli-faults-'));
  first = join(root, 'first');
  const r = await cli(...RUN, '--iterations', '1', '--out', first);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(() => rm(root, { recursive: true, force: true }));

let n = 0;
async function copyOfFirst(): Promise<string> {
  const dir = join(root, `run-${++n}`);
  await cp(first, dir, { recursive: true });
  return dir;
}

/** Runs iteration 2 on a copy of `first` with one fault; returns the copy, what was there before, and the result. */
async function faulted(kind: FaultKind, when: (op: Op, path: string) => boolean, ...extra: string[]) {
  const dir = await copyOfFirst();
  const before = await snapshot(dir);
  const inj = injectFault(kind, (_, op, path) => when(op, path));
  const r = await cli(...RUN, '--iterations', '2', '--out', dir, ...extra).finally(() => inj.restore());
  expect(inj.fired).toBe(true);
  return { dir, before, r: { ...r, error: r.stderr.slice(r.stderr.indexOf('error: ')) } };
}

/** Files that were there before are unchanged, but for the documents a continued run rewrites. */
async function expectKept(dir: string, before: Record<string, string>) {
  const after = await snapshot(dir);
  for (const [rel, sha] of Object.entries(before)) {
    if (['run.json', 'star-config.json', 'manifest.json'].includes(rel)) continue; // --iterations 2 is recorded
    expect(after[rel], `${rel} changed`).toBe(sha);
  }
  expect(existsSync(join(dir, '.lock')), 'the lock is released').toBe(false);
}

async function expectResumes(dir: string, done: RegExp) {
  const r = await cli(...RUN, '--iterations', '2', '--out', dir);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toMatch(done);
  const summary = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8'));
  expect(summary.iterations).toHaveLength(3);
  expect(existsSync(join(dir, '.lock'))).toBe(false);
}

describe('the runner under write faults', () => {
  it('a full disk while saving iteration 2\'s fine-tune: exit 2 naming the file and what to do; the same command resumes', async () => {
    const { dir, before, r } = await faulted('ENOSPC', (op, path) => op === 'writeFile' && path.endsWith('latest.safetensors.pending'));
    expect(r.code).toBe(2);
    expect(r.error).toMatch(/^error: Cannot write .*\/latest\.safetensors: no space left on the device \(ENOSPC\); free some space, then run the same command again: it resumes after the last completed phase\.\n$/);
    await expectKept(dir, before);
    expect(Object.keys(await committed(dir))).not.toContain('iteration-2/finetune.json');
    await expectResumes(dir, /resuming .*: completed iteration-0 seed evaluate; iteration-1 generate filter rationalize finetune evaluate; iteration-2 generate filter rationalize\n/);
  });

  it('a read-only disk while committing iteration 2\'s first phase: exit 2, nothing there before changed', async () => {
    const { dir, before, r } = await faulted('EROFS', (op, path) => op === 'writeFile' && path.includes('iteration-2/generate.json'));
    expect(r.code).toBe(2);
    expect(r.error).toMatch(/^error: Cannot write .*iteration-2\/generate\.json \(saving iteration-2\/generate\): the file system is read-only \(EROFS\); copy the folder to a writable disk and give that copy as --out\.\n$/);
    await expectKept(dir, before);
    await expectResumes(dir, /iteration-1 generate filter rationalize finetune evaluate\n/);
  });

  it('permission denied on the lock file: exit 2 naming it; a new folder is not left behind', async () => {
    const out = join(root, 'denied');
    const inj = injectFault('EACCES', (_, op, path) => op === 'writeFile' && path.endsWith('.lock'));
    const r = await cli(...RUN, '--out', out).finally(() => inj.restore());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: Cannot create the lock file .*denied\/\.lock: permission denied \(EACCES\); make the folder and its files yours and writable/);
    expect(existsSync(out)).toBe(false);
  });

  it('a bug mid-run: exit 1 with one paragraph (the stack only with --verbose); the folder resumes', async () => {
    const isFilter = (op: Op, path: string) => op === 'writeFile' && path.includes('iteration-2/filter.json');
    const { dir, before, r } = await faulted('bug', isFilter);
    expect(r.code).toBe(1);
    expect(r.error).toMatch(/^error: injected bug at writeFile .*filter\.json\.pending\n\(an unexpected failure: the finished phases are kept, and the same command resumes; --verbose prints where it happened\)\n$/);
    expect(hasStack(r.stderr)).toBe(false);
    await expectKept(dir, before);
    const verbose = await faulted('bug', isFilter, '--verbose');
    expect(verbose.r.code).toBe(1);
    expect(hasStack(verbose.r.stderr)).toBe(true);
    await expectResumes(dir, /iteration-2 generate\n/);
  });
});

describe('the runner on a finished folder with a damaged file', () => {
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['run.json', (b) => b.subarray(0, 40), /run\.json is damaged \(40 bytes where manifest\.json lists \d+\): in .*, the run's configuration cannot be rebuilt: restore the file from a copy, or start a new --out folder\./],
    ['star-config.json', (b) => Buffer.from(b.toString().replace('"seed": 2', '"seed": 3')), /star-config\.json is damaged \(its SHA-256 differs/],
    ['iteration-1/finetune.json', (b) => b.subarray(0, b.length >> 1), /iteration-1\/finetune\.json is damaged .*: in .*, delete iteration-1\/finetune\.json, iteration-1\/evaluate\.json and every iteration folder after iteration-1, then run the same command again to redo them\./],
    ['base.safetensors', (b) => b.subarray(0, 100), /base\.safetensors is damaged .*delete base\.safetensors and every iteration-<n> folder/],
    ['latest.safetensors', (b) => Buffer.from(b.map((x, i) => (i === b.length - 1 ? x ^ 1 : x))), /latest\.safetensors is damaged \(its SHA-256 differs from manifest\.json's\): in .*, delete iteration-1\/finetune\.json/],
    ['summary.json', (b) => b.subarray(0, 5), /summary\.json is damaged .*delete summary\.json, then run the same command again to write it anew/],
  ];
  for (const [rel, damage, message] of cases) {
    it(`${rel}: exit 2, one line saying what to delete, and the folder untouched`, async () => {
      const dir = await copyOfFirst();
      await writeFile(join(dir, rel), damage(await readFile(join(dir, rel))));
      const before = await snapshot(dir);
      const r = await cli(...RUN, '--iterations', '1', '--out', dir);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/SyntaxError/);
      expect(await snapshot(dir)).toEqual(before);
    });
  }

  it('deleting what the message says redoes exactly those phases', async () => {
    const dir = await copyOfFirst();
    await writeFile(join(dir, 'iteration-1', 'finetune.json'), '{');
    const before = await snapshot(dir);
    await rm(join(dir, 'iteration-1', 'finetune.json'));
    await rm(join(dir, 'iteration-1', 'evaluate.json'));
    const r = await cli(...RUN, '--iterations', '1', '--out', dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming .*: completed iteration-0 seed evaluate; iteration-1 generate filter rationalize\n/);
    const after = await snapshot(dir);
    for (const rel of ['base.safetensors', 'iteration-1/generate.json', 'iteration-1/filter.json', 'iteration-1/rationales.jsonl']) expect(after[rel], rel).toBe(before[rel]);
    expect(Object.keys(await committed(dir))).toContain('iteration-1/finetune.json');
  });
});

describe('a real runner process killed with SIGKILL', () => {
  it('holds its lock while it runs, prints no XDG_RUNTIME_DIR error, and a rerun takes the lock over and finishes', async () => {
    const dir = join(root, 'killed');
    const env = { ...process.env };
    delete env.XDG_RUNTIME_DIR;
    const child = spawn(join('node_modules', '.bin', 'vite-node'), ['src/cli/index.ts', '--', ...RUN, '--iterations', '1', '--out', dir], { env });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    const exited = new Promise((r) => child.once('exit', r));
    const listed = async (rel: string) => Object.keys(await committed(dir).catch(() => ({}))).includes(rel);
    const t0 = performance.now();
    while (!(await listed('iteration-0/seed.json'))) {
      if (child.exitCode !== null || performance.now() - t0 > 90_000) throw new Error(`the runner did not get to its seed phase:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const second = await cli(...RUN, '--iterations', '1', '--out', dir);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(new RegExp(`is in use by process ${child.pid} on `));
    while (!(await listed('iteration-0/evaluate.json'))) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await exited;
    expect(child.signalCode).toBe('SIGKILL');
    expect(stderr).not.toMatch(/XDG_RUNTIME_DIR/);
    expect(existsSync(join(dir, '.lock'))).toBe(true);

    const r = await cli(...RUN, '--iterations', '1', '--out', dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`taking over the lock of process ${child.pid}, which is no longer running`));
    expect(r.stderr).toMatch(/resuming .*: completed iteration-0 seed evaluate/);
    const [ours, reference] = await Promise.all([dir, first].map(async (d) => JSON.parse(await readFile(join(d, 'summary.json'), 'utf8'))));
    expect(ours.iterations.map((i: { evalAccuracy: number }) => i.evalAccuracy)).toEqual(reference.iterations.map((i: { evalAccuracy: number }) => i.evalAccuracy));
    expect(existsSync(join(dir, '.lock'))).toBe(false);
  });
});
