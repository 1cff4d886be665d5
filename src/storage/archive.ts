// A run as a zip of the CLI's folder layout (src/cli/star.ts, src/star/stores/files.ts), so a run moves
// between the browser and `npm run star` both ways:
//
//   <name>/run.json                      the run config (arithmetic or CommonsenseQA)
//   <name>/star-config.json              the loop's StarConfig
//   <name>/summary.json                  { config, device, wallSeconds, ...StarSummary } once done
//   <name>/iteration-<n>/<phase>.json    each completed phase
//   <name>/iteration-<n>/rationales.jsonl  kept rationales (filter, then rationalize), one JSON per line
//   <name>/base.safetensors, latest.safetensors
//   <name>/config.json + model.safetensors  the final model, as Hugging Face tooling reads it (once done)
//   <name>/star-webgpu.json              { format, version, name, ... } (the browser's; optional on import)
//
// A CommonsenseQA run also holds csqa-questions.json (the questions it drew from, so its records and
// rationales can be read back), and its final model as the pretrained model's config.json with
// model.safetensors, or with LoRA as a PEFT adapter (adapter_config.json + adapter_model.safetensors).
//
// Import checks every file first (./archive_check.ts) and then writes the whole run in one transaction,
// so a bad archive changes nothing.

import { strFromU8, strToU8, type Zippable, zipSync } from 'fflate';
import { type AnyRunConfig, validateAnyRunConfig } from '../star/run_configs';
import { taskOf } from '../star/tasks/registry';
import type { KeptExample, PhaseName, StarSummary } from '../star/types';
import { checkPhase, checkQuestions, checkSummary, checkWeights, type CsqaQuestions, ImportError, PHASE_NAMES, refuse, sameJSON, sampleSize } from './archive_check';
import { readRunFiles } from './archive_zip';
import { type Db, keys, readPrefix, STORAGE_VERSION, write } from './db';
import { folderName } from './names';
import { putWeightsIn, readWeights } from './run_store';
import { getRun, type RunMeta } from './runs';

export { ImportError };

export const ARCHIVE_FORMAT = 'star-webgpu-run';
const WEIGHTS = ['base', 'latest'] as const;

/** A run's stored data, independent of where it is kept. */
export interface RunArchive {
  name: string;
  config: AnyRunConfig;
  /** Run documents by key: 'star-config', 'summary'; CSQA: 'csqa-questions', 'hf-config' (the model's config.json). */
  docs: Record<string, unknown>;
  phases: { iteration: number; phase: PhaseName; value: unknown }[];
  weights: Partial<Record<(typeof WEIGHTS)[number], Uint8Array>>;
  /** From star-webgpu.json, when the archive came from the browser. */
  meta?: { createdAt?: number; wallSeconds?: number; device?: string };
}

/** Phases in the order the loop runs them. */
const loopOrder = (a: { iteration: number; phase: PhaseName }, b: { iteration: number; phase: PhaseName }) =>
  a.iteration - b.iteration || PHASE_NAMES.indexOf(a.phase) - PHASE_NAMES.indexOf(b.phase);

// ---- Export ----

export async function readRunArchive(db: Db, id: string): Promise<{ meta: RunMeta; archive: RunArchive }> {
  const meta = await getRun(db, id);
  if (!meta) throw new Error(`There is no run ${id}.`);
  const docs: Record<string, unknown> = {};
  for (const { key, value } of await readPrefix(db, ['r', id, 'doc'])) docs[key[3] as string] = value;
  const phases = (await readPrefix(db, keys.phases(id))).map(({ key, value }) => ({ iteration: key[3] as number, phase: key[4] as PhaseName, value }));
  phases.sort(loopOrder);
  const weights: RunArchive['weights'] = {};
  for (const name of WEIGHTS) {
    const bytes = await readWeights(db, id, name);
    if (bytes) weights[name] = bytes;
  }
  return { meta, archive: { name: meta.name, config: meta.config, docs, phases, weights } };
}

const json = (v: unknown, indent = 2) => strToU8(JSON.stringify(v, null, indent) + '\n');

export function zipRun(meta: RunMeta, a: RunArchive): Uint8Array {
  const dir = folderName(a.name);
  const files: Zippable = {};
  const add = (path: string, data: Uint8Array, level: 0 | 6 = 6) => (files[`${dir}/${path}`] = [data, { level }]);
  add('star-webgpu.json', json({
    format: ARCHIVE_FORMAT, version: STORAGE_VERSION, name: a.name, status: meta.status,
    createdAt: meta.createdAt, wallSeconds: meta.wallSeconds, device: meta.device ?? null,
  }));
  add('run.json', json(a.config));
  if (a.docs['star-config'] !== undefined) add('star-config.json', json(a.docs['star-config']));
  const summary = a.docs.summary as StarSummary | undefined;
  if (summary) add('summary.json', json({ config: a.config, device: meta.device ?? null, wallSeconds: meta.wallSeconds, ...summary }));
  const byIteration = new Map<number, Partial<Record<PhaseName, unknown>>>();
  for (const p of a.phases) {
    add(`iteration-${p.iteration}/${p.phase}.json`, json(p.value, 1));
    (byIteration.get(p.iteration) ?? byIteration.set(p.iteration, {}).get(p.iteration)!)[p.phase] = p.value;
  }
  for (const [it, ph] of byIteration) {
    if (ph.filter === undefined && ph.rationalize === undefined) continue;
    const kept = [ph.filter, ph.rationalize].flatMap((v) => (v as { kept: KeptExample[] } | undefined)?.kept ?? []);
    const lines = kept.map((k) => JSON.stringify({ prompt: k.prompt, rationale: k.rationale, answer: k.answer, source: k.source, problem: k.problem }));
    add(`iteration-${it}/rationales.jsonl`, strToU8(lines.map((l) => `${l}\n`).join('')));
  }
  for (const name of WEIGHTS) if (a.weights[name]) add(`${name}.safetensors`, a.weights[name]!, 0);
  if (a.docs['csqa-questions'] !== undefined) add('csqa-questions.json', json(a.docs['csqa-questions'], 0));
  const final = a.weights.latest ?? a.weights.base;
  if (summary && final) for (const [path, data] of finalModel(a, final)) add(path, data, path.endsWith('.json') ? 6 : 0);
  return zipSync(files);
}

/** The last model as Hugging Face tooling reads it (file name -> bytes), as the run's task writes it. */
function finalModel(a: RunArchive, final: Uint8Array): [string, Uint8Array][] {
  return taskOf(a.config).finalModel(a.config, final, a.docs['hf-config']).map(([path, v]) => [path, v instanceof Uint8Array ? v : json(v)]);
}

// ---- Import ----

function parseJSON(file: string, bytes: Uint8Array): unknown {
  try {
    return JSON.parse(strFromU8(bytes));
  } catch (e) {
    throw refuse(`${file} is not valid JSON (${(e as Error).message}).`);
  }
}

/** Reads and checks a zipped run; throws ImportError naming the file and field at the first problem. */
export function unzipRun(bytes: Uint8Array): RunArchive {
  try {
    return checkedRun(bytes);
  } catch (e) {
    if (e instanceof ImportError) throw e;
    throw refuse(`it could not be read (${(e as Error)?.message ?? String(e)}).`); // a check this file slipped past
  }
}

function checkedRun(bytes: Uint8Array): RunArchive {
  const files = readRunFiles(bytes);
  const manifest = files.has('star-webgpu.json') ? parseJSON('star-webgpu.json', files.get('star-webgpu.json')!) as Record<string, unknown> : undefined;
  if (manifest !== undefined) {
    if (manifest?.format !== ARCHIVE_FORMAT) throw refuse(`star-webgpu.json names format ${JSON.stringify(manifest?.format)}, not ${ARCHIVE_FORMAT}.`);
    if (manifest.version !== STORAGE_VERSION) {
      throw new ImportError(
        `it was exported by a version of this app that writes archive version ${JSON.stringify(manifest.version)}; this version reads version ${STORAGE_VERSION}.`,
        'Import it into the version of the app that exported it.',
      );
    }
  }
  const config = parseJSON('run.json', files.get('run.json')!) as AnyRunConfig;
  try {
    validateAnyRunConfig(config);
  } catch (e) {
    throw refuse(`run.json is not a run configuration this version understands: ${(e as Error).message}`);
  }
  const docs: Record<string, unknown> = { 'star-config': config.star };
  if (files.has('star-config.json')) {
    const star = parseJSON('star-config.json', files.get('star-config.json')!);
    if (!sameJSON(star, config.star)) throw refuse('star-config.json does not match the "star" settings in run.json.');
  }
  if (files.has('summary.json')) {
    const s = parseJSON('summary.json', files.get('summary.json')!) as Record<string, unknown>;
    checkSummary(s, 'summary.json');
    const { task, mode, iterations, bestIteration, bestAccuracy, finalAccuracy, stoppedBy, evalOverlap } = s as unknown as StarSummary;
    docs.summary = {
      task, mode, iterations, bestIteration, bestAccuracy, finalAccuracy, stoppedBy, ...(typeof evalOverlap === 'number' && { evalOverlap }),
    } satisfies StarSummary;
  }
  let questions: CsqaQuestions | undefined;
  if (config.task === 'csqa') {
    if (files.has('csqa-questions.json')) docs['csqa-questions'] = questions = checkQuestions('csqa-questions.json', parseJSON('csqa-questions.json', files.get('csqa-questions.json')!));
    if (files.has('config.json')) {
      const hf = parseJSON('config.json', files.get('config.json')!);
      if (typeof hf !== 'object' || hf === null || Array.isArray(hf)) throw refuse('config.json must be an object (the model\'s Hugging Face config).');
      docs['hf-config'] = hf;
    }
  }
  const n = sampleSize(config, questions);
  const phases: RunArchive['phases'] = [];
  for (const [path, data] of files) {
    const m = /^iteration-(\d+)\/([a-z]+)\.json$/.exec(path);
    if (!m) continue;
    const phase = m[2] as PhaseName;
    if (!PHASE_NAMES.includes(phase)) throw refuse(`${path}: "${phase}" is not a phase of the STaR loop (${PHASE_NAMES.join(', ')}).`);
    const value = parseJSON(path, data);
    checkPhase(path, config, Number(m[1]), phase, value, n);
    phases.push({ iteration: Number(m[1]), phase, value });
  }
  phases.sort(loopOrder);
  const weights: RunArchive['weights'] = {};
  for (const name of WEIGHTS) {
    const data = files.get(`${name}.safetensors`);
    if (data === undefined) continue;
    checkWeights(`${name}.safetensors`, config, data);
    weights[name] = data;
  }
  if (phases.some((p) => p.phase !== 'seed') && !weights.base) throw refuse('it has completed phases but no base.safetensors to continue from.');
  if (phases.some((p) => p.phase === 'finetune') && !weights.latest) throw refuse('it has a completed fine-tune but no latest.safetensors.');
  const name = typeof manifest?.name === 'string' && manifest.name.trim() !== '' ? manifest.name : `imported ${config.model} ${config.star.mode}`;
  const m = manifest ?? {};
  return {
    name: name.slice(0, 120), config, docs, phases, weights,
    meta: {
      createdAt: typeof m.createdAt === 'number' ? m.createdAt : undefined,
      wallSeconds: typeof m.wallSeconds === 'number' ? m.wallSeconds : undefined,
      device: typeof m.device === 'string' ? m.device : undefined,
    },
  };
}

/** Stores a checked archive as run `meta.id`, all in one transaction (nothing is written if any part fails). */
export function writeRunArchive(db: Db, meta: RunMeta, a: RunArchive): Promise<void> {
  return write(db, `the imported run "${meta.name}"`, (s) => {
    for (const [key, value] of Object.entries(a.docs)) s.put(value, keys.doc(meta.id, key));
    for (const p of a.phases) s.put(p.value, keys.phase(meta.id, p.iteration, p.phase));
    for (const name of WEIGHTS) if (a.weights[name]) putWeightsIn(s, meta.id, name, a.weights[name]!);
    s.put(meta, keys.meta(meta.id));
  });
}
