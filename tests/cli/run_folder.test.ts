// The runner's bad inputs that need no GPU: a wrong --out, a held lock, a wrong --base, out-of-range
// numbers, and what each subcommand prints for an error (one paragraph, exit 2 for what the user can fix,
// exit 1 with the stack only under --verbose for the rest). Every refusal leaves the folders as they were.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseArgs } from '../../src/cli/args';
import { modelFiles } from '../../src/cli/model_dir';
import { checkOutFolder, lockRunFolder } from '../../src/cli/run_folder';
import { FLAGS, reportError } from '../../src/cli/star';
import { GpuError } from '../../src/gpu/device';
import { presetConfig } from '../../src/model/config';
import { writeSafetensors } from '../../src/hub/safetensors';
import { runConfig } from '../../src/star/run_config';
import { FolderStore, RunFolderError } from '../../src/star/stores/files';
import { hasStack, injectFault, snapshot } from '../faults/helpers';
import { cli } from './helpers';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'star-runner-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

let n = 0;
const fresh = async () => {
  const d = join(root, `d${++n}`);
  await mkdir(d);
  return d;
};
const onePara = (stderr: string) => stderr.trim().split('\n').length <= 2 && !hasStack(stderr);

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => p.once('exit', r));
  return p.pid!;
}

describe('--out', () => {
  it('refuses a folder that holds other things (a mistyped --out ~/Documents), writing nothing', async () => {
    const dir = await fresh();
    await writeFile(join(dir, 'thesis.tex'), 'mine');
    const before = await snapshot(dir);
    const r = await cli('--preset', 'micro', '--out', dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--out .* is not empty and holds no run \(no run\.json\); give a new or empty folder/);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('refuses a file', async () => {
    const file = join(await fresh(), 'f');
    await writeFile(file, 'x');
    const r = await cli('--preset', 'micro', '--out', file);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/--out .* is a file; give a folder/)]);
  });

  it('accepts a new folder, an empty one, one a killed run left with only its lock and temp files, and a run folder', async () => {
    const dir = await fresh();
    expect(await checkOutFolder(join(dir, 'new'))).toBe('new');
    expect(await checkOutFolder(dir)).toBe('existing');
    await writeFile(join(dir, '.lock'), '{}');
    await writeFile(join(dir, 'run.json.pending'), '{');
    await writeFile(join(dir, 'manifest.json.123-4.tmp'), '{');
    expect(await checkOutFolder(dir)).toBe('existing');
    await writeFile(join(dir, 'manifest.json'), '{"name": "a web app"}'); // not ours: no run.json
    await expect(checkOutFolder(dir)).rejects.toThrow(/not empty/);
    await writeFile(join(dir, 'run.json'), '{}');
    expect(await checkOutFolder(dir)).toBe('existing');
  });
});

describe('the run folder lock', () => {
  it('a second runner on the same folder exits 2 at once, naming the pid that holds it', async () => {
    const dir = await fresh();
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const lock = JSON.stringify({ pid: holder.pid, host: hostname(), started: '2026-12-07T10:00:00.000Z' });
      await writeFile(join(dir, '.lock'), lock);
      const t0 = performance.now();
      const r = await cli('--preset', 'micro', '--out', dir);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`is in use by process ${holder.pid} on ${hostname()} \\(since 2026-12-07T10:00:00.000Z\\); wait for that run to end or stop it\\. If it is not running, delete .*\\.lock\\.`));
      expect(performance.now() - t0).toBeLessThan(2000); // before any GPU work
      expect(await readFile(join(dir, '.lock'), 'utf8')).toBe(lock);
    } finally {
      holder.kill();
    }
  });

  it('takes over a lock whose process is no longer running, and releases it', async () => {
    const dir = await fresh();
    const dead = await deadPid();
    await writeFile(join(dir, '.lock'), JSON.stringify({ pid: dead, host: hostname(), started: 'x' }));
    const lines: string[] = [];
    const release = await lockRunFolder(dir, (l) => lines.push(l));
    expect(lines).toEqual([`${dir}: taking over the lock of process ${dead}, which is no longer running`]);
    expect(JSON.parse(await readFile(join(dir, '.lock'), 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    await release();
    expect(existsSync(join(dir, '.lock'))).toBe(false);
  });

  it('takes over a lock left empty (killed while writing it), but never one of another machine', async () => {
    const dir = await fresh();
    await writeFile(join(dir, '.lock'), '');
    const release = await lockRunFolder(dir, () => {});
    await release();
    await writeFile(join(dir, '.lock'), JSON.stringify({ pid: await deadPid(), host: 'elsewhere', started: 'x' }));
    await expect(lockRunFolder(dir, () => {})).rejects.toThrow(/in use by process \d+ on elsewhere/);
  });

  it('two runners racing to take over one stale lock: exactly one gets it', async () => {
    const dir = await fresh();
    await writeFile(join(dir, '.lock'), JSON.stringify({ pid: await deadPid(), host: hostname(), started: 'x' }));
    const results = await Promise.allSettled([lockRunFolder(dir, () => {}), lockRunFolder(dir, () => {})]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(RunFolderError);
    await (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<() => Promise<void>>).value();
  });

  it('is released when the run fails: a folder holding another run, and a damaged file', async () => {
    const dir = await fresh();
    const store = new FolderStore(dir);
    await store.putJSON('run', runConfig('micro', { seed: 5 }));
    const r = await cli('--preset', 'micro', '--out', dir);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/holds a run with another configuration/)]);
    expect(existsSync(join(dir, '.lock'))).toBe(false);
    await writeFile(join(dir, 'run.json'), '{');
    const d = await cli('--preset', 'micro', '--seed', '5', '--out', dir);
    expect([d.code, d.stderr]).toEqual([2, expect.stringMatching(/run\.json is damaged \(1 bytes where manifest\.json lists \d+\): in .*, the run's configuration cannot be rebuilt/)]);
    expect(existsSync(join(dir, '.lock'))).toBe(false);
  });
});

describe('--base', () => {
  const cfg = runConfig('micro', {});
  const base = writeSafetensors([{ name: 'w', data: new Float32Array(8), shape: [8] }]);
  const cases: [string, (dir: string) => Promise<void>, RegExp][] = [
    ['a folder that is not a run folder (a model folder)', (d) => writeFile(join(d, 'config.json'), '{}'), /--base .*: is not a run folder \(no run\.json\)|is not a run folder \(no run\.json\)/],
    ['a run.json that is not JSON', (d) => writeFile(join(d, 'run.json'), '{"task": '), /run\.json is damaged \(not valid JSON/],
    ['a run.json that is not a run configuration', (d) => writeFile(join(d, 'run.json'), '{}'), /run\.json is not a run configuration/],
    ['a run folder whose seed phase has not finished', (d) => writeFile(join(d, 'run.json'), JSON.stringify(cfg)), /no base model there yet/],
    ['a truncated base.safetensors (a folder without manifest.json)', async (d) => {
      await writeFile(join(d, 'run.json'), JSON.stringify(cfg));
      await writeFile(join(d, 'base.safetensors'), base.subarray(0, 30));
    }, /--base: .*base\.safetensors: .*; that base model is damaged/],
    ['a damaged base.safetensors (checked against manifest.json)', async (d) => {
      const s = new FolderStore(d);
      await s.putJSON('run', cfg);
      await s.putWeights('base', base);
      await s.putPhase(0, 'seed', { reused: false });
      await writeFile(join(d, 'base.safetensors'), base.subarray(0, base.length - 1));
    }, /base\.safetensors is damaged \(\d+ bytes where manifest\.json lists \d+\): in .*, delete base\.safetensors and every iteration-<n> folder/],
  ];
  for (const [what, make, message] of cases) {
    it(`refuses ${what}: exit 2, one line, nothing written`, async () => {
      const from = await fresh();
      await make(from);
      const before = await snapshot(from);
      const out = join(root, `out-${++n}`);
      const r = await cli('--preset', 'micro', '--base', from, '--out', out);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(onePara(r.stderr)).toBe(true);
      expect(existsSync(out)).toBe(false);
      expect(await snapshot(from)).toEqual(before);
    });
  }
});

describe('numeric flags', () => {
  const cases: [string, string, string][] = [
    ['iterations', '1e20', '0 to 1000'], ['iterations', '100000000000000000000', '0 to 1000'], ['iterations', '1001', '0 to 1000'],
    ['iterations', '-1', '0 to 1000'], ['iterations', '2.5', '0 to 1000'], ['patience', '1001', '0 to 1000'],
    ['seed', '4294967296', '0 to 4294967295'], ['lora', '1025', '0 to 1024'],
  ];
  for (const [flag, value, range] of cases) {
    it(`--${flag} ${value} is refused with the allowed range`, async () => {
      const out = join(root, `num-${++n}`);
      const r = await cli('--preset', 'micro', `--${flag}`, value, '--out', out);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`Flag --${flag} takes a whole number from ${range}, got "${value}".`);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('accepts the ends of each range, and every int flag of the runner states its range', () => {
    expect(parseArgs(['--seed', '4294967295', '--iterations', '1000', '--lora=1024'], FLAGS, []).flags).toEqual({ seed: 4294967295, iterations: 1000, lora: 1024 });
    for (const [name, spec] of Object.entries(FLAGS)) if (spec.type === 'int') expect(spec.max, `--${name}`).toBeLessThanOrEqual(2 ** 32);
    for (const [name, spec] of Object.entries(FLAGS)) if (spec.type === 'int') expect(spec.max, `--${name}`).toBeDefined();
  });

  it('a bool flag takes no value but =true or =false', async () => {
    const r = await cli('--merged=maybe', '--out', join(root, 'x'));
    expect([r.code, r.stderr]).toEqual([2, expect.stringContaining('Flag --merged takes no value (or =true, =false), got "maybe".')]);
  });
});

describe('errors at the top level, for every subcommand', () => {
  it('run: an unexpected error is one paragraph and exit 1; --verbose adds the stack', async () => {
    for (const verbose of [false, true]) {
      const out = join(root, `bug-${++n}`);
      const inj = injectFault('bug', (_, op) => op === 'mkdir');
      const r = await cli('--preset', 'micro', '--out', out, ...(verbose ? ['--verbose'] : []));
      inj.restore();
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: injected bug at mkdir .*\n/);
      if (verbose) expect(hasStack(r.stderr)).toBe(true);
      else expect(r.stderr).toMatch(/\(an unexpected failure: the finished phases are kept, and the same command resumes; --verbose prints where it happened\)\n$/);
      if (!verbose) expect(onePara(r.stderr)).toBe(true);
    }
  });

  it('eval: a missing --model, a missing problems file, and a run folder whose model.safetensors is damaged', async () => {
    expect((await cli('eval', '--file', 'x.jsonl')).stderr).toMatch(/Missing --model/);
    const dir = await fresh();
    const store = new FolderStore(dir);
    const weights = writeSafetensors([{ name: 'model.norm.weight', data: new Float32Array(4), shape: [4] }]);
    await store.putFiles(modelFiles(presetConfig('micro'), weights, 'arithmetic-char'), 'model');
    const problems = join(dir, 'p.jsonl');
    await writeFile(problems, '{"a": 1, "b": 2}\n');
    const missing = await cli('eval', '--model', dir, '--file', join(dir, 'none.jsonl'));
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringMatching(/Cannot read .*none\.jsonl/)]);
    await writeFile(join(dir, 'model.safetensors'), weights.subarray(0, 9));
    const r = await cli('eval', '--model', dir, '--file', problems);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model\.safetensors is damaged \(9 bytes where manifest\.json lists \d+\): in .*, delete model\.safetensors, then run the same command again/);
    expect(onePara(r.stderr)).toBe(true);
  });

  it('compare: a summary that is not JSON, one that is not a summary, a missing one, and one that cannot be read', async () => {
    const [a, b, c, d] = [await fresh(), await fresh(), await fresh(), await fresh()];
    await writeFile(join(a, 'summary.json'), '{"mode": "st');
    await writeFile(join(b, 'summary.json'), '{"mode": "star"}');
    await mkdir(join(d, 'summary.json'));
    const cases: [string, number, RegExp][] = [
      [a, 2, /summary\.json is damaged \(not valid JSON/],
      [b, 2, /summary\.json is not a run summary/],
      [c, 2, /summary\.json is missing: run that folder to the end first/],
      [d, 1, /EISDIR/],
    ];
    for (const [dir, code, message] of cases) {
      const r = await cli('compare', '--out', dir);
      expect([r.code, r.stderr]).toEqual([code, expect.stringMatching(message)]);
      expect(onePara(r.stderr), r.stderr).toBe(true);
    }
  });

  it('exit 2 for what the user can fix (no GPU adapter among it), 1 for a GPU failing mid-run', () => {
    const codes = [new GpuError('no-adapter', 'No adapter.', 'Install a driver.'), new GpuError('device-lost', 'Lost.', 'Resume.'), new RunFolderError('x')].map((e) => {
      const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      try {
        return reportError(e, false);
      } finally {
        err.mockRestore();
      }
    });
    expect(codes).toEqual([2, 1, 2]);
  });

  it('a rejection that escapes main is reported by the entry point as one paragraph, exit 1', async () => {
    const child = spawn(join('node_modules', '.bin', 'vite-node'), [join('tests', 'cli', 'fixtures', 'escaped_rejection.ts')]);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    const code = await new Promise((r) => child.once('exit', r));
    expect(code, stderr).toBe(1);
    expect(stderr).toMatch(/^error: escaped the runner\n\(an unexpected failure: .*--verbose prints where it happened\)\n$/);
  });

  it('logits and unknown commands: exit 2 with the message', async () => {
    expect(await cli('logits', '--text', 'hi')).toMatchObject({ code: 2, stderr: expect.stringMatching(/Missing --model/) });
    expect(await cli('logits', '--model', 'x')).toMatchObject({ code: 2, stderr: expect.stringMatching(/Missing --text/) });
    expect(await cli('train')).toMatchObject({ code: 2, stderr: expect.stringMatching(/Unknown command "train"/) });
  });
});
