// The headless runner: the STaR loop in Node on Dawn, with the same kernels as the browser.
//
//   npm run star -- --task arithmetic --preset micro --mode star --iterations 2 --seed 1 --out runs/a
//   npm run star -- eval --model runs/a --file problems.jsonl
//   npm run star -- compare --out runs/base,runs/direct,runs/star
//   npm run star -- --task csqa --model HuggingFaceTB/SmolLM2-135M-Instruct --preset micro --out runs/csqa
//   npm run star -- logits --model DIR --text "The capital of France is"
//
// Bad input exits with code 2 and writes nothing; running the same command on an existing folder resumes.

import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requestGpu } from '../gpu/device';
import { describeModel, type HubModel } from '../hub/load';
import { exportPeft } from '../hub/peft';
import { presetConfig } from '../model/config';
import { createGpuEngine, type GpuEngine } from '../star/gpu_engine';
import { runStar } from '../star/loop';
import { comparisonTable, curveTable } from '../star/report';
import { runConfig, type RunConfig } from '../star/run_config';
import { FolderStore, writeFileAtomic } from '../star/stores/files';
import { isCorrect, parseProblemsFile, problemPrompt, type Problem } from '../star/tasks/arithmetic';
import { arithmeticEnd, arithmeticTask } from '../star/tasks/arithmetic_task';
import { arithmeticTokenizer } from '../star/tasks/char_tokenizer';
import { csqaTask } from '../star/tasks/csqa';
import { createCsqaEngine, csqaRunConfig, prepareCsqaRun } from '../star/tasks/csqa_run';
import { MODES, type Mode, type StarEvent, type StarSummary } from '../star/types';
import { type FlagSpec, parseArgs, UsageError, usage } from './args';
import { logitsCommand } from './logits';
import { readModelDir, TOKENIZERS, writeModelDir } from './model_dir';
import { type Bar, progressBar } from './progress';

const FLAGS: Record<string, FlagSpec> = {
  task: { type: 'string', help: 'arithmetic (default) | csqa' },
  preset: { type: 'string', help: 'micro | quick | paper-like (default quick); csqa: micro | quick' },
  mode: { type: 'string', help: `${MODES.join(' | ')} (default star)` },
  iterations: { type: 'int', help: 'STaR iterations (default: the preset\'s)' },
  patience: { type: 'int', help: 'stop after this many iterations without a new best accuracy; 0 never stops early (default: the preset\'s)' },
  seed: { type: 'int', help: 'seed of the run (default: the preset\'s)' },
  out: { type: 'string', help: 'run folder (created; an existing one is resumed); compare: a comma-separated list' },
  base: { type: 'string', help: 'arithmetic: reuse the base model of this run folder (same model and seed training), e.g. to compare modes on one base' },
  model: { type: 'string', help: 'eval, logits: a model folder; --task csqa: a Hub repo id, preset or folder' },
  data: { type: 'string', help: 'csqa: questions as official JSONL (default: the Hub dataset tau/commonsense_qa)' },
  'eval-data': { type: 'string', help: 'csqa: held-out questions as JSONL (default: validation, or a held-out part of --data)' },
  lora: { type: 'int', help: 'csqa: LoRA rank (default 8 on q,v for quick; 0 = full fine-tuning)' },
  'lora-targets': { type: 'string', help: 'csqa: comma-separated LoRA targets among q,k,v,o,gate,up,down' },
  merged: { type: 'bool', help: 'csqa with LoRA: also write the merged model (model.safetensors + config.json)' },
  'few-shot-in-training': { type: 'bool', help: 'csqa: train under the few-shot prompt too (default: the bare question)' },
  text: { type: 'string', help: 'logits: the text whose last-position logits to print' },
  file: { type: 'string', help: 'eval: problems, one {"a": 123, "b": 456} per line' },
  help: { type: 'bool', help: 'print this help' },
};

function need(flags: Record<string, unknown>, name: string): string {
  const v = flags[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`Missing --${name}.`);
  return v;
}

/** One progress bar per (iteration, phase) on stderr. */
function phaseBars(): { onProgress(e: StarEvent): void; end(): void } {
  let bar: Bar | null = null;
  let barKey = '';
  return {
    onProgress(e) {
      if (e.kind !== 'progress') return;
      const key = `${e.iteration}:${e.phase}`;
      if (key !== barKey) {
        bar?.end();
        bar = progressBar(`iter ${e.iteration} ${e.phase}`);
        barKey = key;
      }
      bar!.update(e.done, e.total, e.message);
    },
    end: () => bar?.end(),
  };
}

async function runCommand(flags: Record<string, string | number | boolean>): Promise<void> {
  const task = (flags.task as string | undefined) ?? 'arithmetic';
  if (task === 'csqa') return csqaCommand(flags);
  if (task !== 'arithmetic') throw new UsageError(`Unknown task "${task}". Known tasks: arithmetic, csqa.`);
  const mode = flags.mode as Mode | undefined;
  if (mode !== undefined && !MODES.includes(mode)) throw new UsageError(`Unknown mode "${mode}". Modes: ${MODES.join(', ')}.`);
  const out = need(flags, 'out');
  let cfg: RunConfig;
  try {
    cfg = runConfig((flags.preset as string | undefined) ?? 'quick', {
      mode, iterations: flags.iterations as number | undefined, patience: flags.patience as number | undefined, seed: flags.seed as number | undefined,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const runFile = join(out, 'run.json');
  if (existsSync(runFile)) {
    const old = JSON.parse(await readFile(runFile, 'utf8')) as RunConfig;
    const strip = (c: RunConfig) => JSON.stringify({ ...c, star: { ...c.star, iterations: 0, patience: 0 } });
    if (strip(old) !== strip(cfg)) throw new UsageError(`${out} holds a run with another configuration; use a new --out folder.`);
  }

  const baseWeights = typeof flags.base === 'string' ? await readBaseFrom(flags.base, cfg) : undefined;

  const gpu = await requestGpu();
  const model = presetConfig(cfg.model);
  process.stderr.write(`device: ${gpu.adapter.description || gpu.adapter.device} (${gpu.adapter.backend}); model ${cfg.model}; ${cfg.star.mode}, ${cfg.star.iterations} iterations -> ${out}\n`);
  await mkdir(out, { recursive: true });
  await writeFileAtomic(runFile, JSON.stringify(cfg, null, 2) + '\n');
  const engine = createGpuEngine(gpu, model, arithmeticTokenizer, { trainBatch: cfg.trainBatch, genBatch: cfg.genBatch, optim: cfg.optim });
  const store = new FolderStore(out);
  if (baseWeights && (await store.getWeights('base')) === undefined) await store.putWeights('base', baseWeights);
  const bars = phaseBars();
  const t0 = performance.now();
  const summary: StarSummary = await runStar(cfg.star, { task: arithmeticTask(cfg.star), engine, store, onProgress: bars.onProgress });
  bars.end();
  const weights = (await store.getWeights('latest')) ?? (await store.getWeights('base'));
  if (weights) await writeModelDir(out, model, weights, 'arithmetic-char');
  const full = { config: cfg, device: gpu.adapter, wallSeconds: (performance.now() - t0) / 1000, ...summary };
  await writeFileAtomic(join(out, 'summary.json'), JSON.stringify(full, null, 2) + '\n');
  process.stdout.write(comparisonTable([{ mode: cfg.star.mode, summary }]) + '\n');
}

/** What shapes a run's base model: two runs that agree on these train the same base model. */
function baseRecipe(c: RunConfig): Record<string, unknown> {
  const { seed, seedSize, seedSteps, seedMinDigits, seedMaxDigits } = c.star;
  return { task: c.task, model: c.model, optim: c.optim, trainBatch: c.trainBatch, seed, seedSize, seedSteps, seedMinDigits, seedMaxDigits };
}

/** The base model of another run folder, checked to be the one this config would train. */
async function readBaseFrom(dir: string, cfg: RunConfig): Promise<Uint8Array> {
  const run = await readFile(join(dir, 'run.json'), 'utf8').catch(() => {
    throw new UsageError(`--base ${dir}: no run.json there; give a folder written by a run.`);
  });
  const theirs = baseRecipe(JSON.parse(run) as RunConfig);
  const ours = baseRecipe(cfg);
  const differ = Object.keys(ours).filter((k) => JSON.stringify(ours[k]) !== JSON.stringify(theirs[k]));
  if (differ.length > 0) throw new UsageError(`--base ${dir}: that run trained its base model differently (${differ.join(', ')}); use the same preset and seed.`);
  return new Uint8Array(
    await readFile(join(dir, 'base.safetensors')).catch(() => {
      throw new UsageError(`--base ${dir}: no base.safetensors yet; let that run finish its seed phase first.`);
    }),
  );
}

/** CommonsenseQA on a pretrained Hub model: everything is loaded and checked (exit 2 on bad input) before the loop. */
async function csqaCommand(flags: Record<string, string | number | boolean>): Promise<void> {
  const out = need(flags, 'out');
  const gpu = await requestGpu();
  let cfg;
  let inputs;
  try {
    cfg = csqaRunConfig((flags.preset as string | undefined) ?? 'quick', {
      model: flags.model as string | undefined, data: flags.data as string | undefined, evalData: flags['eval-data'] as string | undefined,
      mode: flags.mode as Mode | undefined, iterations: flags.iterations as number | undefined, patience: flags.patience as number | undefined,
      seed: flags.seed as number | undefined, loraRank: flags.lora as number | undefined,
      loraTargets: typeof flags['lora-targets'] === 'string' ? flags['lora-targets'].split(',').map((t) => t.trim()) : undefined,
      fewShotInTraining: flags['few-shot-in-training'] === true ? true : undefined,
    });
    if (flags.merged === true && !cfg.lora) throw new Error('--merged needs LoRA adapters to merge; this run fine-tunes fully.');
    const bars = new Map<string, Bar>();
    inputs = await prepareCsqaRun(cfg, {
      readText: (path) => readFile(path, 'utf8').catch(() => Promise.reject(new Error(`Cannot read ${path}.`))),
      maxBindingBytes: gpu.limits.maxStorageBufferBindingSize,
      onProgress: (e) => {
        if (e.kind !== 'file' || e.cached || e.total < 1 << 20) return; // bars for real downloads only
        if (!bars.has(e.file)) bars.set(e.file, progressBar(e.file.split('/').pop()!));
        bars.get(e.file)!.update(e.loaded, e.total || e.loaded);
        if (e.loaded === e.total) bars.get(e.file)!.end();
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const runFile = join(out, 'run.json');
  if (existsSync(runFile)) {
    const strip = (c: object) => JSON.stringify({ ...c, star: { ...(c as typeof cfg).star, iterations: 0, patience: 0 } });
    if (strip(JSON.parse(await readFile(runFile, 'utf8'))) !== strip(cfg)) throw new UsageError(`${out} holds a run with another configuration; use a new --out folder.`);
  }
  const { model } = inputs;
  process.stderr.write(`${model.source}: ${describeModel(model.cfg, model.memory)}\n`);
  process.stderr.write(`${inputs.train.length} training / ${inputs.eval.length} held-out questions; ${cfg.star.mode}, ${cfg.star.iterations} iterations -> ${out}\n`);
  await mkdir(out, { recursive: true });
  await writeFileAtomic(runFile, JSON.stringify(cfg, null, 2) + '\n');
  const engine = createCsqaEngine(gpu, cfg, model);
  const task = csqaTask({ train: inputs.train, eval: inputs.eval, fewShot: cfg.fewShot, fewShotInTraining: cfg.fewShotInTraining, maxNewTokens: cfg.maxNewTokens });
  const store = new FolderStore(out);
  const bars = phaseBars();
  const summary = await runStar(cfg.star, { task, engine, store, onProgress: bars.onProgress });
  bars.end();
  const latest = await store.getWeights('latest');
  if (latest) await writeFinalModel(out, engine, model, cfg.model, latest, flags.merged === true);
  await writeFileAtomic(join(out, 'summary.json'), JSON.stringify({ config: cfg, device: gpu.adapter, ...summary }, null, 2) + '\n');
  process.stdout.write(comparisonTable([{ mode: cfg.star.mode, summary }]) + '\n');
}

/**
 * The last model, as Hugging Face tooling reads it: with LoRA a PEFT adapter folder (adapter_model.safetensors,
 * adapter_config.json) and, when asked, the merged weights; otherwise model.safetensors. config.json is the
 * base model's own.
 */
async function writeFinalModel(out: string, engine: GpuEngine, model: HubModel, baseModel: string, latest: Uint8Array, merged: boolean): Promise<void> {
  const files = new Map<string, Uint8Array>();
  if (engine.lora) {
    await engine.loadWeights(latest); // the adapters the last fine-tune trained
    // Merged into the base the adapters were trained against: the engine's stored copy (f16-rounded
    // matrices unless the run kept the base in f32), so the merged model is the one that was evaluated.
    const base = merged ? await engine.readParams() : undefined;
    const peft = exportPeft(model.cfg, engine.lora, await engine.readAdapters(), { baseModel, base });
    for (const [name, bytes] of peft) files.set(name, bytes);
  } else {
    files.set('model.safetensors', latest);
  }
  if (files.has('model.safetensors')) files.set('config.json', new TextEncoder().encode(JSON.stringify(model.hfConfig, null, 2) + '\n'));
  for (const [name, bytes] of files) await writeFileAtomic(join(out, name), bytes);
}

/** Streamed: a file of any size is read in chunks, never as one string. */
async function readProblems(file: string): Promise<Problem[]> {
  try {
    return await parseProblemsFile(createReadStream(file, { encoding: 'utf8' }), file);
  } catch (e) {
    throw new UsageError((e as NodeJS.ErrnoException).code !== undefined ? `Cannot read ${file}.` : (e as Error).message);
  }
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
  const maxDigits = problems.reduce((m, p) => Math.max(m, p.digits), 1); // reduce: a spread of a million problems overflows the stack
  const task = arithmeticTask({ minDigits: 1, maxDigits, seedMinDigits: 1, seedMaxDigits: 1 });
  const outs = await engine.generate(problems.map((p) => problemPrompt(p)), {
    temperature: 0, maxNewTokens: problems.reduce((m, p) => Math.max(m, task.maxNewTokens(p)), 1), stop: [], end: arithmeticEnd, seed: 0,
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
  process.stdout.write(comparisonTable(rows) + '\n' + curveTable(rows) + '\n');
}

export async function main(argv: string[]): Promise<number> {
  try {
    const { command, flags } = parseArgs(argv, FLAGS, ['run', 'eval', 'compare', 'logits']);
    if (flags.help) {
      process.stdout.write(usage('npm run star -- [run|eval|compare|logits] [flags]', FLAGS) + '\n');
      return 0;
    }
    if (command === 'eval') await evalCommand(flags);
    else if (command === 'logits') await logitsCommand(flags);
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
