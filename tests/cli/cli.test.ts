// The headless runner end to end on the real engine (micro preset, SwiftShader): outputs, resume,
// eval on a user's file, and bad input (exit code 2, nothing written).
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSafetensors } from '../../src/hub/safetensors';
import { SHIPPED_BASES, shippedRef } from '../../src/star/shipped';
import { cli } from './helpers';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'star-cli-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('npm run star', () => {
  it('runs two real STaR iterations of the micro preset and writes the documented layout', async () => {
    const out = join(root, 'star');
    const r = await cli('--task', 'arithmetic', '--preset', 'micro', '--mode', 'star', '--iterations', '2', '--seed', '3', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/iter 1 generate/);
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    expect(summary.config.star.seed).toBe(3);
    expect(summary.device.backend).toMatch(/dawn/);
    expect(summary.iterations).toHaveLength(3); // the base model, then iterations 1 and 2
    for (const rec of summary.iterations.slice(1)) {
      for (const k of ['generated', 'correct', 'rationalized', 'failed', 'trainExamples', 'trainSteps', 'evalAccuracy', 'evalAccuracyByDigits']) {
        expect(rec, k).toHaveProperty(k);
      }
      expect(rec.generated).toBe(12);
      expect(rec.correct + rec.rationalized + rec.failed).toBe(rec.generated);
    }
    for (const it of [1, 2]) {
      const lines = (await readFile(join(out, `iteration-${it}`, 'rationales.jsonl'), 'utf8')).split('\n').filter(Boolean);
      for (const l of lines) expect(Object.keys(JSON.parse(l))).toEqual(expect.arrayContaining(['prompt', 'rationale', 'answer', 'source']));
    }
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config.model_type).toBe('llama');
    const weights = parseSafetensors(new Uint8Array(await readFile(join(out, 'model.safetensors'))));
    expect(weights.header['model.embed_tokens.weight'].shape).toEqual([config.vocab_size, config.hidden_size]);
    expect(r.stdout).toMatch(/star/);
    expect(existsSync(join(out, '.lock'))).toBe(false); // released
  });

  it('resumes: the same command on a finished folder redoes nothing and keeps the summary', async () => {
    const out = join(root, 'star');
    const before = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    const gen = await stat(join(out, 'iteration-1', 'generate.json'));
    const r = await cli('--task', 'arithmetic', '--preset', 'micro', '--mode', 'star', '--iterations', '2', '--seed', '3', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/iter 1 generate.*completed earlier/);
    expect(r.stderr).not.toMatch(/iter 1 generate +\[#*\.+\]/);
    expect((await stat(join(out, 'iteration-1', 'generate.json'))).mtimeMs).toBe(gen.mtimeMs);
    const after = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    expect(after.iterations.map((i: { evalAccuracy: number }) => i.evalAccuracy)).toEqual(before.iterations.map((i: { evalAccuracy: number }) => i.evalAccuracy));
  });

  it('runs a finished folder further: more --iterations (and --patience) continue it, redoing nothing', async () => {
    const out = join(root, 'star');
    const gen = await stat(join(out, 'iteration-2', 'generate.json'));
    const r = await cli('--task', 'arithmetic', '--preset', 'micro', '--mode', 'star', '--iterations', '3', '--patience', '0', '--seed', '3', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/iter 3 generate/);
    expect((await stat(join(out, 'iteration-2', 'generate.json'))).mtimeMs).toBe(gen.mtimeMs);
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    expect(summary.iterations).toHaveLength(4);
    expect(summary.config.star).toMatchObject({ iterations: 3, patience: 0 });
  });

  it('fine-tunes for real in direct mode, then scores the saved model on a user file', async () => {
    const out = join(root, 'direct');
    const r = await cli('--preset', 'micro', '--mode', 'direct', '--iterations', '1', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    const it1 = summary.iterations[1];
    expect(it1.trainExamples).toBe(12);
    expect(it1.trainSteps).toBeGreaterThan(0);
    expect(Number.isFinite(it1.finalLoss)).toBe(true);
    const file = join(root, 'problems.jsonl');
    await writeFile(file, '{"a": 12, "b": 34}\n\n{"a": 5, "b": 7}\n{"a": 99, "b": 11}\n');
    const e = await cli('eval', '--model', out, '--file', file);
    expect(e.code, e.stderr).toBe(0);
    const result = JSON.parse(e.stdout);
    expect(result.n).toBe(3);
    expect(result.accuracy).toBeGreaterThanOrEqual(0);
    expect(Object.keys(result.byDigits).sort()).toEqual(['1', '2']);
    expect(result.byDigits['2'].total).toBe(2);
  });

  it('--base reuses another run\'s base model: no seed training, the same iteration-0 accuracy', async () => {
    const out = join(root, 'no-rat');
    const star = join(root, 'star');
    const r = await cli('--preset', 'micro', '--mode', 'star-no-rationalization', '--iterations', '1', '--seed', '3', '--base', star, '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/iter 0 seed +\[#*\.+\] \d+\/4/); // no seed steps
    expect(Buffer.compare(await readFile(join(out, 'base.safetensors')), await readFile(join(star, 'base.safetensors')))).toBe(0);
    const seed = JSON.parse(await readFile(join(out, 'iteration-0', 'seed.json'), 'utf8'));
    expect(seed).toMatchObject({ reused: true, steps: 0 });
    const [ours, theirs] = await Promise.all([out, star].map(async (d) => JSON.parse(await readFile(join(d, 'summary.json'), 'utf8'))));
    expect(ours.iterations[0].evalAccuracy).toBe(theirs.iterations[0].evalAccuracy);
    expect(ours.iterations[1].rationalized).toBe(0);
  });

  it('starts the default preset from its shipped base model: checked, stored as the base, no seed training', async () => {
    const out = join(root, 'shipped');
    const r = await cli('--mode', 'base', '--out', out); // the default preset: demo
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
    expect(run.base).toEqual(shippedRef('demo'));
    expect(JSON.parse(await readFile(join(out, 'iteration-0', 'seed.json'), 'utf8'))).toMatchObject({ reused: true, steps: 0 });
    const shipped = await readFile(SHIPPED_BASES.demo.url);
    expect(await readFile(join(out, 'base.safetensors'))).toEqual(shipped);
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    expect(summary.iterations[0].evalAccuracyByDigits).toMatchObject({ 1: 1, 2: 0, 3: 0 }); // adds single digits only
    const both = await cli('--from-scratch', '--base', out, '--out', join(root, 'both'));
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--base and --from-scratch contradict each other/);
  });

  describe('bad input: exit code 2 and nothing written', () => {
    const cases: [string, string[], RegExp][] = [
      ['an unknown flag', ['--preset', 'micro', '--frobnicate', '1', '--out', 'X'], /Unknown flag --frobnicate/],
      ['an unknown preset', ['--preset', 'huge', '--out', 'X'], /Unknown preset "huge"/],
      ['an unknown mode', ['--preset', 'micro', '--mode', 'magic', '--out', 'X'], /Unknown mode/],
      ['an unknown task', ['--task', 'chess', '--out', 'X'], /Unknown task/],
      ['a non-numeric iteration count', ['--iterations', 'many', '--out', 'X'], /--iterations takes a whole number from 0 to 1000, got "many"/],
      ['a missing --out', ['--preset', 'micro'], /Missing --out/],
    ];
    for (const [what, args, message] of cases) {
      it(what, async () => {
        const dir = join(root, `bad-${what.replace(/\W+/g, '-')}`);
        const r = await cli(...args.map((a) => (a === 'X' ? dir : a)));
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(message);
        expect(existsSync(dir)).toBe(false);
      });
    }

    it('--base from a run that trained its base model differently, or from no run', async () => {
      const dir = join(root, 'bad-base');
      const r = await cli('--preset', 'micro', '--mode', 'direct', '--seed', '4', '--base', join(root, 'star'), '--out', dir);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/trained its base model differently \(seed\)/);
      const none = await cli('--preset', 'micro', '--base', join(root, 'nowhere'), '--out', dir);
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/--base .*nowhere: no such folder/);
      expect(existsSync(dir)).toBe(false);
    });

    it('a malformed problems line, named by its line number', async () => {
      const file = join(root, 'bad.jsonl');
      await writeFile(file, '{"a": 1, "b": 2}\n{"a": 1, "b": \n');
      const r = await cli('eval', '--model', join(root, 'direct'), '--file', file);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/line 2/);
    });

    it('operands with different digit counts', async () => {
      const file = join(root, 'digits.jsonl');
      await writeFile(file, '{"a": 123, "b": 45}\n');
      const r = await cli('eval', '--model', join(root, 'direct'), '--file', file);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/line 1/);
      expect(r.stderr).toMatch(/digit/);
    });

    it('a model folder whose config does not match its weights', async () => {
      const src = join(root, 'direct');
      const dir = join(root, 'mismatch');
      await rm(dir, { recursive: true, force: true });
      await cp(src, dir, { recursive: true });
      await rm(join(dir, 'manifest.json')); // a plain model folder, not a run folder (whose files are checked against it)
      const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
      await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, intermediate_size: config.intermediate_size + 8 }));
      const file = join(root, 'ok.jsonl');
      await writeFile(file, '{"a": 1, "b": 2}\n');
      const before = (await readdir(dir)).sort();
      const r = await cli('eval', '--model', dir, '--file', file);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/do not match config\.json/);
      expect((await readdir(dir)).sort()).toEqual(before);
    });

    it('a run folder holding another configuration', async () => {
      const r = await cli('--preset', 'micro', '--mode', 'star', '--seed', '99', '--out', join(root, 'star'));
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/another configuration/);
    });
  });
});
