// The headless runner: the STaR loop in Node on Dawn, with the same kernels as the browser.
//
//   npm run star -- --task arithmetic --preset micro --mode star --iterations 2 --seed 1 --out runs/a
//   npm run star -- eval --model runs/a --file problems.jsonl
//   npm run star -- compare --out runs/base,runs/direct,runs/star
//   npm run star -- --task csqa --model HuggingFaceTB/SmolLM2-135M-Instruct --preset micro --out runs/csqa
//   npm run star -- logits --model DIR --text "The capital of France is"
//
// Exit codes: 0 done; 2 bad input, or a folder or disk the user must fix (the message says how; nothing was
// lost, and the same command resumes); 1 anything else, a bug or the GPU failing mid-run. Running the same
// command on an existing folder resumes it (./run_folder.ts, ../star/stores/files.ts).

import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GpuError, requestGpu } from '../gpu/device';
import { describeModel, type HubModel } from '../hub/load';
import { exportPeft } from '../hub/peft';
import { presetConfig } from '../model/config';
import { createGpuEngine, type GpuEngine } from '../star/gpu_engine';
import { runStar } from '../star/loop';
import { comparisonTable, curveTable } from '../star/report';
import { DEFAULT_PRESET, runConfig, type RunConfig } from '../star/run_config';
import { loadShipped } from '../star/shipped';
import { createRunEngine } from '../star/run_engine';
import { FolderStore, RunFolderError } from '../star/stores/files';
import { isCorrect, parseProblemsFile, problemPrompt, type Problem } from '../star/tasks/arithmetic';
import { arithmeticEnd, arithmeticTask } from '../star/tasks/arithmetic_task';
import { csqaTask } from '../star/tasks/csqa';
import { TASK_NAMES } from '../star/tasks/registry';
import { createCsqaEngine, csqaRunConfig, prepareCsqaRun } from '../star/tasks/csqa_run';
import { MODES, type Mode, type StarEvent, type StarSummary } from '../star/types';
import { type FlagSpec, parseArgs, UsageError, usage } from './args';
import { logitsCommand } from './logits';
import { modelFiles, readModelDir, TOKENIZERS } from './model_dir';
import { type Bar, progressBar } from './progress';
import { checkOutFolder, openRunFolder, readBaseFrom } from './run_folder';

export const FLAGS: Record<string, FlagSpec> = {
  task: { type: 'string', help: 'arithmetic (default) | csqa' },
  preset: { type: 'string', help: 'demo | micro | five | paper-like (default demo: its base model ships, so the run starts at iteration 1); csqa: micro | quick' },
  mode: { type: 'string', help: `${MODES.join(' | ')} (default star)` },
  iterations: { type: 'int', min: 0, max: 1000, help: 'STaR iterations (default: the preset\'s)' },
  patience: { type: 'int', min: 0, max: 1000, help: 'stop after this many iterations without a new best accuracy; 0 never stops early (default: the preset\'s)' },
  seed: { type: 'int', min: 0, max: 2 ** 32 - 1, help: 'seed of the run (default: the preset\'s)' },
  out: { type: 'string', help: 'run folder: a new or empty one, or a run folder to resume (locked while a run writes it); compare: a comma-separated list' },
  base: { type: 'string', help: 'arithmetic: start from the base model of this run folder (the same one it started from), e.g. to compare modes on one base' },
  'from-scratch': { type: 'bool', help: 'arithmetic: train the base model in the seed phase, even where the preset ships one (see --help presets)' },
  model: { type: 'string', help: 'eval, logits: a model folder; --task csqa: a Hub repo id, preset or folder' },
  data: { type: 'string', help: 'csqa: questions as official JSONL (default: the Hub dataset tau/commonsense_qa)' },
  'eval-data': { type: 'string', help: 'csqa: held-out questions as JSONL (default: validation, or a held-out part of --data)' },
  lora: { type: 'int', min: 0, max: 1024, help: 'csqa: LoRA rank (default 8 on q,v for quick; 0 = full fine-tuning)' },
  'lora-targets': { type: 'string', help: 'csqa: comma-separated LoRA targets among q,k,v,o,gate,up,down' },
  merged: { type: 'bool', help: 'csqa with LoRA: also write the merged model (model.safetensors + config.json)' },
  'few-shot-in-training': { type: 'bool', help: 'csqa: train under the few-shot prompt too (default: the bare question)' },
  text: { type: 'string', help: 'logits: the text whose last-position logits to print' },
  file: { type: 'string', help: 'eval: problems, one {"a": 123, "b": 456} per line' },
  verbose: { type: 'bool', help: 'on an unexpected error, print where it happened (the stack trace)' },
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
  if (task !== 'arithmetic') throw new UsageError(`Unknown task "${task}". Known tasks: ${TASK_NAMES.join(', ')}.`);
  const mode = flags.mode as Mode | undefined;
  if (mode !== undefined && !MODES.includes(mode)) throw new UsageError(`Unknown mode "${mode}". Modes: ${MODES.join(', ')}.`);
  const out = need(flags, 'out');
  let cfg: RunConfig;
  try {
    cfg = runConfig((flags.preset as string | undefined) ?? DEFAULT_PRESET, {
      mode, iterations: flags.iterations as number | undefined, patience: flags.patience as number | undefined, seed: flags.seed as number | undefined,
      fromScratch: flags['from-scratch'] === true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (typeof flags.base === 'string' && flags['from-scratch'] === true) throw new UsageError('--base and --from-scratch contradict each other: give one.');
  const created = (await checkOutFolder(out)) === 'new';
  let baseWeights: Uint8Array | undefined;
  if (typeof flags.base === 'string') {
    const from = await readBaseFrom(flags.base, cfg);
    cfg = { ...cfg, base: from.base }; // the very base that run started from
    baseWeights = from.bytes;
  } else if (cfg.base !== 'scratch') {
    baseWeights = await loadShipped(cfg.base, async (url) => new Uint8Array(await readFile(url)));
  }
  const { store, release } = await openRunFolder(out, cfg, created, log);
  try {
    const gpu = await requestGpu();
    const model = presetConfig(cfg.model);
    log(`device: ${gpu.adapter.description || gpu.adapter.device} (${gpu.adapter.backend}); model ${cfg.model}; ${cfg.star.mode}, ${cfg.star.iterations} iterations -> ${out}`);
    await store.putJSON('run', cfg);
    const engine = createRunEngine(gpu, cfg);
    if (baseWeights && (await store.getWeights('base')) === undefined) await store.putWeights('base', baseWeights);
    const bars = phaseBars();
    const t0 = performance.now();
    const summary: StarSummary = await runStar(cfg.star, { task: arithmeticTask(cfg.star), engine, store, onProgress: bars.onProgress });
    bars.end();
    const weights = (await store.getWeights('latest')) ?? (await store.getWeights('base'));
    if (weights) await store.putFiles(modelFiles(model, weights, 'arithmetic-char'), 'model');
    await store.putJSON('summary', { config: cfg, device: gpu.adapter, wallSeconds: (performance.now() - t0) / 1000, ...summary });
    process.stdout.write(comparisonTable([{ mode: cfg.star.mode, summary }]) + '\n');
  } finally {
    await release();
  }
}

const log = (line: string) => void process.stderr.write(`${line}\n`);

/** CommonsenseQA on a pretrained Hub model: everything is loaded and checked (exit 2 on bad input) before the loop. */
async function csqaCommand(flags: Record<string, string | number | boolean>): Promise<void> {
  const out = need(flags, 'out');
  let cfg;
  try {
    cfg = csqaRunConfig((flags.preset as string | undefined) ?? 'quick', {
      model: flags.model as string | undefined, data: flags.data as string | undefined, evalData: flags['eval-data'] as string | undefined,
      mode: flags.mode as Mode | undefined, iterations: flags.iterations as number | undefined, patience: flags.patience as number | undefined,
      seed: flags.seed as number | undefined, loraRank: flags.lora as number | undefined,
      loraTargets: typeof flags['lora-targets'] === 'string' ? flags['lora-targets'].split(',').map((t) => t.trim()) : undefined,
      fewShotInTraining: flags['few-shot-in-training'] === true ? true : undefined,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (flags.merged === true && !cfg.lora) throw new UsageError('--merged needs LoRA adapters to merge; this run fine-tunes fully.');
  const created = (await checkOutFolder(out)) === 'new';
  const { store, release } = await openRunFolder(out, cfg, created, log);
  try {
    const gpu = await requestGpu();
    let inputs;
    try {
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
    const { model } = inputs;
    log(`${model.source}: ${describeModel(model.cfg, model.memory)}`);
    log(`${inputs.train.length} training / ${inputs.eval.length} held-out questions; ${cfg.star.mode}, ${cfg.star.iterations} iterations -> ${out}`);
    await store.putJSON('run', cfg);
    const engine = createCsqaEngine(gpu, cfg, model);
    const task = csqaTask({ train: inputs.train, eval: inputs.eval, fewShot: cfg.fewShot, fewShotInTraining: cfg.fewShotInTraining, maxNewTokens: cfg.maxNewTokens });
    const bars = phaseBars();
    const summary = await runStar(cfg.star, { task, engine, store, onProgress: bars.onProgress });
    bars.end();
    const latest = await store.getWeights('latest');
    if (latest) await store.putFiles(await finalModel(engine, model, cfg.model, latest, flags.merged === true), 'model');
    await store.putJSON('summary', { config: cfg, device: gpu.adapter, ...summary });
    process.stdout.write(comparisonTable([{ mode: cfg.star.mode, summary }]) + '\n');
  } finally {
    await release();
  }
}

/**
 * The last model, as Hugging Face tooling reads it: with LoRA a PEFT adapter folder (adapter_model.safetensors,
 * adapter_config.json) and, when asked, the merged weights; otherwise model.safetensors. config.json is the
 * base model's own.
 */
async function finalModel(engine: GpuEngine, model: HubModel, baseModel: string, latest: Uint8Array, merged: boolean): Promise<Map<string, Uint8Array>> {
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
  return files;
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

const isSummary = (s: StarSummary) =>
  typeof s === 'object' && s !== null && typeof s.mode === 'string' && Array.isArray(s.iterations) && s.iterations.length > 0 &&
  s.iterations.every((r) => typeof r?.iteration === 'number' && typeof r.evalAccuracy === 'number' && typeof r.evalAccuracyByDigits === 'object' && r.evalAccuracyByDigits !== null);

async function compareCommand(flags: Record<string, string | number | boolean>): Promise<void> {
  const dirs = need(flags, 'out').split(',');
  const rows = await Promise.all(
    dirs.map(async (d) => {
      const s = await new FolderStore(d).getJSON<StarSummary>('summary'); // checked against the folder's manifest.json
      if (s === undefined) throw new UsageError(`${join(d, 'summary.json')} is missing: run that folder to the end first.`);
      if (!isSummary(s)) throw new RunFolderError(`${join(d, 'summary.json')} is not a run summary (no mode, or no iterations with their accuracy); run that folder again to rewrite it.`);
      return { mode: s.mode, summary: s };
    }),
  );
  process.stdout.write(comparisonTable(rows) + '\n' + curveTable(rows) + '\n');
}

/** Errors the user can act on: bad flags or files, a run folder or disk to fix, no GPU adapter. */
function isInputError(e: unknown): boolean {
  return e instanceof UsageError || e instanceof RunFolderError || (e instanceof GpuError && (e.kind === 'no-adapter' || e.kind === 'no-webgpu'));
}

/**
 * Prints an error as one paragraph, the stack trace only with --verbose, and returns the exit code: 2 for an
 * error the user can act on, 1 for anything else.
 */
export function reportError(e: unknown, verbose: boolean): number {
  const err = e instanceof Error ? e : new Error(String(e));
  const code = isInputError(err) ? 2 : 1;
  let text = `error: ${err.message}`;
  if (err instanceof UsageError) text += '\n(npm run star -- --help lists the flags)';
  else if (code === 1 && !verbose) text += '\n(an unexpected failure: the finished phases are kept, and the same command resumes; --verbose prints where it happened)';
  if (verbose && err.stack) text += `\n${err.stack}`;
  process.stderr.write(`${text}\n`);
  return code;
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
    return reportError(e, argv.some((a) => a === '--verbose' || a === '--verbose=true'));
  }
}
