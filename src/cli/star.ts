// The headless runner: the STaR loop in Node on Dawn, with the same kernels as the browser.
//
//   npm run star -- --task arithmetic --preset micro --mode star --iterations 2 --seed 1 --out runs/a
//   npm run star -- eval --model runs/a --file problems.jsonl
//   npm run star -- compare --out runs/base,runs/direct,runs/star
//
// Bad input exits with code 2 and writes nothing; running the same command on an existing folder resumes.

import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requestGpu } from '../gpu/device';
import { presetConfig } from '../model/config';
import { createGpuEngine } from '../star/gpu_engine';
import { runStar } from '../star/loop';
import { comparisonTable } from '../star/report';
import { runConfig, type RunConfig } from '../star/run_config';
import { FolderStore, writeFileAtomic } from '../star/stores/files';
import { isCorrect, parseProblemLine, problemPrompt, type Problem } from '../star/tasks/arithmetic';
import { arithmeticEnd, arithmeticTask } from '../star/tasks/arithmetic_task';
import { arithmeticTokenizer } from '../star/tasks/char_tokenizer';
import { MODES, type Mode, type StarEvent, type StarSummary } from '../star/types';
import { type FlagSpec, parseArgs, UsageError, usage } from './args';
import { readModelDir, TOKENIZERS, writeModelDir } from './model_dir';
import { type Bar, progressBar } from './progress';

const FLAGS: Record<string, FlagSpec> = {
  task: { type: 'string', help: 'arithmetic (default)' },
  preset: { type: 'string', help: 'micro | quick | paper-like (default quick)' },
  mode: { type: 'string', help: `${MODES.join(' | ')} (default star)` },
  iterations: { type: 'int', help: 'STaR iterations (default: the preset\'s)' },
  seed: { type: 'int', help: 'seed of the run (default: the preset\'s)' },
  out: { type: 'string', help: 'run folder (created; an existing one is resumed); compare: a comma-separated list' },
  model: { type: 'string', help: 'eval: a model folder (config.json + model.safetensors)' },
  file: { type: 'string', help: 'eval: problems, one {"a": 123, "b": 456} per line' },
  help: { type: 'bool', help: 'print this help' },
};

function need(flags: Record<string, unknown>, name: string): string {
  const v = flags[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`Missing --${name}.`);
  return v;
}

async function runCommand(flags: Record<string, string | number | boolean>): Promise<void> {
  const task = (flags.task as string | undefined) ?? 'arithmetic';
  if (task !== 'arithmetic') throw new UsageError(`Unknown task "${task}". Known tasks: arithmetic.`);
  const mode = flags.mode as Mode | undefined;
  if (mode !== undefined && !MODES.includes(mode)) throw new UsageError(`Unknown mode "${mode}". Modes: ${MODES.join(', ')}.`);
  const out = need(flags, 'out');
  let cfg: RunConfig;
  try {
    cfg = runConfig((flags.preset as string | undefined) ?? 'quick', { mode, iterations: flags.iterations as number | undefined, seed: flags.seed as number | undefined });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const runFile = join(out, 'run.json');
  if (existsSync(runFile)) {
    const old = JSON.parse(await readFile(runFile, 'utf8')) as RunConfig;
    const strip = (c: RunConfig) => JSON.stringify({ ...c, star: { ...c.star, iterations: 0, patience: 0 } });
    if (strip(old) !== strip(cfg)) throw new UsageError(`${out} holds a run with another configuration; use a new --out folder.`);
  }

  const gpu = await requestGpu();
  const model = presetConfig(cfg.model);
  process.stderr.write(`device: ${gpu.adapter.description || gpu.adapter.device} (${gpu.adapter.backend}); model ${cfg.model}; ${cfg.star.mode}, ${cfg.star.iterations} iterations -> ${out}\n`);
  await mkdir(out, { recursive: true });
  await writeFileAtomic(runFile, JSON.stringify(cfg, null, 2) + '\n');
  const engine = createGpuEngine(gpu, model, arithmeticTokenizer, { trainBatch: cfg.trainBatch, genBatch: cfg.genBatch, optim: cfg.optim });
  const store = new FolderStore(out);
  let bar: Bar | null = null;
  let barKey = '';
  const onProgress = (e: StarEvent) => {
    if (e.kind !== 'progress') return;
    const key = `${e.iteration}:${e.phase}`;
    if (key !== barKey) {
      bar?.end();
      bar = progressBar(`iter ${e.iteration} ${e.phase}`);
      barKey = key;
    }
    bar!.update(e.done, e.total, e.message);
  };
  const t0 = performance.now();
  const summary: StarSummary = await runStar(cfg.star, { task: arithmeticTask(cfg.star), engine, store, onProgress });
  (bar as Bar | null)?.end();
  const weights = (await store.getWeights('latest')) ?? (await store.getWeights('base'));
  if (weights) await writeModelDir(out, model, weights, 'arithmetic-char');
  const full = { config: cfg, device: gpu.adapter, wallSeconds: (performance.now() - t0) / 1000, ...summary };
  await writeFileAtomic(join(out, 'summary.json'), JSON.stringify(full, null, 2) + '\n');
  process.stdout.write(comparisonTable([{ mode: cfg.star.mode, summary }]) + '\n');
}

async function readProblems(file: string): Promise<Problem[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new UsageError(`Cannot read ${file}.`);
  }
  const problems: Problem[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      problems.push(parseProblemLine(line, i + 1));
    } catch (e) {
      throw new UsageError(`${file}: ${(e as Error).message}`);
    }
  });
  if (problems.length === 0) throw new UsageError(`${file} holds no problems.`);
  return problems;
}

async function evalCommand(flags: Record<string, string | number | boolean>): Promise<void> {
  const dir = need(flags, 'model');
  const problems = await readProblems(need(flags, 'file'));
  const { cfg, weights, tokenizer } = await readModelDir(dir);
  const gpu = await requestGpu();
  const engine = createGpuEngine(gpu, cfg, TOKENIZERS[tokenizer], { trainBatch: 1, genBatch: Math.min(64, problems.length) });
  try {
    await engine.loadWeights(weights);
  } catch (e) {
    throw new UsageError(`${dir}: the weights do not match config.json: ${(e as Error).message}`);
  }
  const maxDigits = Math.max(...problems.map((p) => p.digits));
  const task = arithmeticTask({ minDigits: 1, maxDigits, seedMinDigits: 1, seedMaxDigits: 1 });
  const outs = await engine.generate(problems.map((p) => problemPrompt(p)), {
    temperature: 0, maxNewTokens: Math.max(...problems.map((p) => task.maxNewTokens(p))), stop: [], end: arithmeticEnd, seed: 0,
  });
  const byDigits: Record<string, { correct: number; total: number; accuracy: number }> = {};
  let correct = 0;
  problems.forEach((p, i) => {
    const ok = isCorrect(p, outs[i].text);
    correct += ok ? 1 : 0;
    const d = (byDigits[p.digits] ??= { correct: 0, total: 0, accuracy: 0 });
    d.total++;
    d.correct += ok ? 1 : 0;
    d.accuracy = d.correct / d.total;
  });
  process.stdout.write(JSON.stringify({ n: problems.length, accuracy: correct / problems.length, byDigits }) + '\n');
}

async function compareCommand(flags: Record<string, string | number | boolean>): Promise<void> {
  const dirs = need(flags, 'out').split(',');
  const rows = await Promise.all(
    dirs.map(async (d) => {
      const s = JSON.parse(await readFile(join(d, 'summary.json'), 'utf8').catch(() => {
        throw new UsageError(`${d}/summary.json is missing: run that folder to the end first.`);
      })) as StarSummary;
      return { mode: s.mode, summary: s };
    }),
  );
  process.stdout.write(comparisonTable(rows) + '\n');
}

export async function main(argv: string[]): Promise<number> {
  try {
    const { command, flags } = parseArgs(argv, FLAGS, ['run', 'eval', 'compare']);
    if (flags.help) {
      process.stdout.write(usage('npm run star -- [run|eval|compare] [flags]', FLAGS) + '\n');
      return 0;
    }
    if (command === 'eval') await evalCommand(flags);
    else if (command === 'compare') await compareCommand(flags);
    else await runCommand(flags);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n(npm run star -- --help lists the flags)\n`);
      return 2;
    }
    process.stderr.write(`error: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}
