// CommonsenseQA in the worker: where a run's model and questions come from (the Hub through the Cache
// API, files the user picked, or the copy stored with the run), what they weigh before anything large is
// downloaded (config.json first, then the tokenizer and the questions; sizes go to ./csqa_estimate.ts),
// storing the questions and picked model files with a new run, and loading the weights when its session
// starts. Small reads are remembered for the worker's lifetime, so the start form can re-estimate freely.

import { browserCache, type ByteCache, type FetchLike, type FileProgress, filesSource, isRepoId, type ModelSource, repoSource } from '../hub/download';
import { fromHfConfig, type HfConfig } from '../hub/hf_config';
import { describeModel, estimateMemory, type HubModel, loadHubModel, type MemoryEstimate } from '../hub/load';
import { resolveModelName } from '../hub/presets';
import { parseShardIndex } from '../hub/safetensors';
import { createHubTokenizer, type HubTokenizer } from '../hub/tokenizer';
import type { ModelConfig } from '../model/config';
import { trainingPool } from '../star/draws';
import { isLocalModel } from '../star/run_configs';
import { questionBlock } from '../star/tasks/csqa';
import { csqaTaskFor, QUESTIONS_DOC } from '../star/tasks/csqa/task';
import { checkHeldOut, CSQA_HUB_REPO, type CsqaQuestions, loadCsqaFromHub, parseCsqaJsonl } from '../star/tasks/csqa_data';
import { type CsqaRunConfig, holdOut } from '../star/tasks/csqa_run';
import type { Db } from '../storage/db';
import { IdbRunStore } from '../storage/run_store';
import type { CsqaFiles, Estimate } from './api';
import { type CsqaSizes, estimateCsqa, generationBatch } from './csqa_estimate';
import type { Calibration, Limits } from './estimate';

export const HF_CONFIG_DOC = 'hf-config';
const MODEL_FILE = (name: string) => `model-file:${name}`;
const WANTED = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors', 'model.safetensors.index.json'];
const DTYPE_BYTES: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2 };

export interface HubDeps {
  /** Default: the global fetch. */
  fetch?: FetchLike;
  /** Default: the Cache API when there is one; null caches nothing. */
  cache?: ByteCache | null;
}

interface Head {
  label: string;
  hf: HfConfig;
  model: ModelConfig;
  memory: MemoryEstimate;
}

export interface Prepared {
  estimate: Estimate;
  /** Present once the tokenizer and questions were read (the estimate is then complete). */
  questions?: CsqaQuestions;
  hf: HfConfig;
}

const sig = (f: File) => `${f.name}:${f.size}:${f.lastModified}`;

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`${what} is not valid JSON (${(e as Error).message}).`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${what} is not a JSON object.`);
  return json as Record<string, unknown>;
}

/** The longest prompt and training example of a run, in tokens (see CsqaSizes). */
export function measure(cfg: CsqaRunConfig, q: CsqaQuestions, tok: HubTokenizer): Pick<CsqaSizes, 'trainTokens' | 'promptTokens'> {
  const task = csqaTaskFor(cfg, q);
  const pool = trainingPool(cfg.star, task);
  const evalSet = task.evalProblems(cfg.star.evalSize, cfg.star.evalSeed);
  const n = (text: string) => tok.encode(text).length;
  // reduce, not Math.max(...pool): a spread of a large question file overflows the stack
  const target = cfg.star.mode === 'direct' ? pool.reduce((m, p) => Math.max(m, n(task.directTarget(p))), 0) : cfg.maxNewTokens;
  const trainTokens = pool.reduce((m, p) => Math.max(m, n(task.trainPrompt(p))), 0) + target + 2;
  // Every prompt is the same few-shot prefix before a question: the longest questions make the longest
  // prompts, encoded whole (BPE may merge across the seam) for the few longest.
  const hint = cfg.star.rationalize;
  const longest = [...pool, ...evalSet].map((p) => ({ p, k: n(questionBlock(p, hint)) })).sort((a, b) => b.k - a.k).slice(0, 4);
  const promptTokens = 1 + Math.max(...longest.map(({ p }) => n(task.prompt(p, hint))));
  return { trainTokens, promptTokens };
}

/**
 * Caps the config at the data: the pool is at most the training questions there are. A sample or a
 * held-out set larger than the data is refused with what to change.
 */
export function fitToData(cfg: CsqaRunConfig, counts: { train: number; eval: number }): { config: CsqaRunConfig; refusal: string | null } {
  const poolSize = Math.min(cfg.star.poolSize, counts.train);
  const config = { ...cfg, star: { ...cfg.star, poolSize, trainSize: Math.min(cfg.star.trainSize, poolSize) } };
  if (cfg.star.mode !== 'base' && cfg.star.trainSize > counts.train) {
    return { config, refusal: `The sample size is ${cfg.star.trainSize} questions per iteration, but there are only ${counts.train} training questions. Lower it to at most ${counts.train}.` };
  }
  if (cfg.star.evalSize > counts.eval) {
    return { config, refusal: `${cfg.star.evalSize} questions are to be held out for evaluation, but there are only ${counts.eval}. Hold out fewer.` };
  }
  return { config, refusal: null };
}

export function createCsqaInputs(hub: HubDeps = {}) {
  const cache = hub.cache !== undefined ? hub.cache : typeof caches !== 'undefined' ? browserCache() : null;
  const memo = new Map<string, Promise<unknown>>();
  const once = <T>(key: string, f: () => Promise<T>): Promise<T> => {
    if (!memo.has(key)) {
      const p = f();
      memo.set(key, p);
      p.catch(() => memo.get(key) === p && memo.delete(key)); // a failure is not remembered: fix it and retry
      while (memo.size > 16) memo.delete(memo.keys().next().value!);
    }
    return memo.get(key) as Promise<T>;
  };

  const hubSource = (cfg: CsqaRunConfig, signal?: AbortSignal): ModelSource => {
    if (isLocalModel(cfg)) throw new Error('This run\'s model came from local files that are not stored with it; pick the model files again.');
    const repo = resolveModelName(cfg.model.trim());
    if (!isRepoId(repo)) throw new Error(`"${cfg.model}" is neither a Hub repo id (owner/name) nor a preset; type one like HuggingFaceTB/SmolLM2-135M-Instruct.`);
    return repoSource(repo, { fetch: hub.fetch, cache, signal });
  };
  const pick = (cfg: CsqaRunConfig, files?: CsqaFiles) =>
    files?.model?.length ? { key: `files:${files.model.map(sig).join('|')}`, source: () => filesSource(files.model!) } : { key: `hub:${resolveModelName(cfg.model.trim())}`, source: () => hubSource(cfg) };

  const read = async (src: ModelSource, file: string, required: boolean) => {
    const bytes = await src.read(file);
    if (!bytes && required) {
      const hint = file === 'tokenizer.json' ? ' Only fast (tokenizer.json) tokenizers are supported.' : ' Check the repo id, or pick the model\'s folder or files.';
      throw new Error(`${src.label} has no ${file}.${hint}`);
    }
    return bytes && parseJson(bytes, `${src.label}/${file}`);
  };

  const head = (cfg: CsqaRunConfig, files?: CsqaFiles): Promise<Head> => {
    const m = pick(cfg, files);
    return once(`head/${m.key}/${cfg.maxSeq}`, async () => {
      const src = m.source();
      const hf = (await read(src, 'config.json', true))!;
      const model = fromHfConfig(hf, `${src.label}/config.json`, cfg.maxSeq);
      return { label: src.label, hf, model, memory: estimateMemory(model) };
    });
  };

  const tokenizer = (cfg: CsqaRunConfig, files: CsqaFiles | undefined, h: Head): Promise<HubTokenizer> => {
    const m = pick(cfg, files);
    return once(`tok/${m.key}`, async () => {
      const src = m.source();
      const json = (await read(src, 'tokenizer.json', true))!;
      const tok = await createHubTokenizer(json, (await read(src, 'tokenizer_config.json', false)) ?? {}, h.hf);
      if (tok.vocabSize > h.model.vocab) throw new Error(`${src.label}: the tokenizer has ${tok.vocabSize} tokens but config.json's vocab_size is ${h.model.vocab}.`);
      return tok;
    });
  };

  const questions = async (cfg: CsqaRunConfig, files?: CsqaFiles): Promise<CsqaQuestions> => {
    if (cfg.data === 'hub') {
      return once('data/hub', async () => {
        const opts = { fetch: hub.fetch, cache };
        const q = { train: await loadCsqaFromHub('train', opts), eval: await loadCsqaFromHub('validation', opts) };
        checkHeldOut(q.train, q.eval, { train: `${CSQA_HUB_REPO} (train)`, eval: `${CSQA_HUB_REPO} (validation)` });
        return q;
      });
    }
    const file = files?.data;
    if (!file) throw new Error(`Pick the questions file (${cfg.data}) again, or use the Hub dataset.`);
    const all = await once(`data/${sig(file)}`, async () => parseCsqaJsonl(await file.text(), file.name));
    if (all.length <= cfg.star.evalSize) {
      throw new Error(`${file.name} has ${all.length} questions, and ${cfg.star.evalSize} are to be held out for evaluation: hold out fewer, or use a larger file.`);
    }
    return holdOut(all, cfg.star.evalSize, cfg.star.evalSeed, file.name);
  };

  return {
    /** The estimate (config.json alone first; then the tokenizer and questions), and what a new run stores. */
    async prepare(cfg: CsqaRunConfig, files: CsqaFiles | undefined, limits: Limits | null, calib: (c: CsqaRunConfig) => Promise<Calibration | null>): Promise<Prepared> {
      const h = await head(cfg, files);
      const info = (c: CsqaRunConfig, q: CsqaQuestions | null) => {
        const dtype = DTYPE_BYTES[String(h.hf.torch_dtype)];
        let genBatch = c.genBatch;
        try {
          genBatch = generationBatch(c, h.model, limits);
        } catch {
          // estimateCsqa refuses this config and says why
        }
        return {
          config: c, source: h.label, description: describeModel(h.model, h.memory), params: h.memory.params,
          downloadBytes: dtype ? h.memory.params * dtype : null, questions: q && { train: Math.min(q.train.length, c.star.poolSize), eval: q.eval.length }, genBatch,
        };
      };
      const floor = estimateCsqa(cfg, { model: h.model, memory: h.memory, trainTokens: null, promptTokens: null }, limits, null);
      if (floor.refusal) return { estimate: { ...floor, csqa: info(cfg, null) }, hf: h.hf };
      const [tok, q] = await Promise.all([tokenizer(cfg, files, h), questions(cfg, files)]);
      const fit = fitToData(cfg, { train: q.train.length, eval: q.eval.length });
      const dataKey = cfg.data === 'hub' ? 'hub' : sig(files!.data!);
      const lengths = once(`len/${pick(cfg, files).key}/${dataKey}/${JSON.stringify(fit.config)}`, async () => measure(fit.config, q, tok));
      const est = estimateCsqa(fit.config, { model: h.model, memory: h.memory, ...(await lengths) }, limits, await calib(fit.config));
      return { estimate: { ...est, refusal: fit.refusal ?? est.refusal, csqa: info(fit.config, q) }, questions: q, hf: h.hf };
    },

    /** Stores what a new run reads again on resume: its questions, the model's config.json, and picked model files. */
    async store(db: Db, runId: string, files: CsqaFiles | undefined, p: Prepared): Promise<void> {
      const idb = new IdbRunStore(db, runId);
      if (!p.questions) throw new Error('The questions were not read; estimate the run first.');
      await idb.putJSON(QUESTIONS_DOC, p.questions);
      await idb.putJSON(HF_CONFIG_DOC, p.hf);
      if (!files?.model?.length) return;
      const byName = new Map(files.model.map((f) => [f.name, f]));
      const index = byName.get('model.safetensors.index.json');
      const shards = index && !byName.has('model.safetensors') ? parseShardIndex(await index.text(), index.name).shards : [];
      for (const name of [...WANTED, ...shards]) {
        const f = byName.get(name);
        if (f) await idb.putWeights(MODEL_FILE(name), new Uint8Array(await f.arrayBuffer()));
      }
    },

    /** The model a session runs: from the Hub (cached) or the files stored with the run; byte progress per file. */
    async load(db: Db, runId: string, cfg: CsqaRunConfig, limits: Limits, signal: AbortSignal, onProgress: (p: FileProgress) => void): Promise<HubModel> {
      const idb = new IdbRunStore(db, runId);
      const src: ModelSource = isLocalModel(cfg)
        ? {
            label: cfg.model,
            async read(file, progress) {
              const bytes = await idb.getWeights(MODEL_FILE(file));
              if (bytes) progress?.({ file, loaded: bytes.length, total: bytes.length, cached: true });
              return bytes;
            },
          }
        : hubSource(cfg, signal);
      return loadHubModel(src, {
        maxBindingBytes: limits.maxStorageBufferBindingSize, maxSeq: cfg.maxSeq,
        onProgress: (e) => e.kind === 'file' && onProgress({ file: e.file, loaded: e.loaded, total: e.total, cached: e.cached }),
      });
    },
  };
}

export type CsqaInputs = ReturnType<typeof createCsqaInputs>;
