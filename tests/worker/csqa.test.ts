// The worker's EngineApi on CommonsenseQA runs, without a GPU: the real model loading (the tiny Llama
// fixture, from a stubbed Hub or as picked files) and the real questions, with a scripted engine that
// answers (a) unaided and the marked choice when hinted. Estimates refuse what will not fit before the
// weights are read; runs go to done with per-label records; a local-files run resumes from what is
// stored with it; export and import keep its records and rationales.

import 'fake-indexeddb/auto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { strFromU8, strToU8, unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { type FetchLike, memoryCache } from '../../src/hub/download';
import type { HubModel } from '../../src/hub/load';
import { localModelName } from '../../src/star/run_configs';
import { csqaRunConfig, type CsqaRunConfig } from '../../src/star/tasks/csqa_run';
import type { GenOptions, StarEngine } from '../../src/star/types';
import { openDb } from '../../src/storage/db';
import type { EngineEvent, GpuInfo } from '../../src/worker/api';
import { createEngineApi, type GpuBackend } from '../../src/worker/engine';
import { QUESTIONS, question } from '../helpers/csqa_questions';
import { fixtureFetch, FIXTURES } from '../hub/fixture_fetch';
import { microWeights } from '../storage/fixtures';

const INFO: GpuInfo = { description: 'fake GPU', vendor: 'test', architecture: '', backend: 'fake', f16: false, maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 1 << 30 };

const file = (name: string, body: string | Uint8Array) => new File([body as BlobPart], name);
const modelFiles = (dir = 'tiny-llama-f32') => readdirSync(join(FIXTURES, dir)).map((f) => file(f, new Uint8Array(readFileSync(join(FIXTURES, dir, f)))));

/** Answers "(a)" unaided and the choice marked (CORRECT) when hinted, in the task's answer sentence. */
function fakeCsqaEngine(tick: () => Promise<void>): StarEngine {
  let weights = microWeights(1);
  return {
    async initRandom() {
      throw new Error('a pretrained model is never initialized at random');
    },
    async generate(prompts: string[], g: GenOptions) {
      const out = [];
      for (const [i, p] of prompts.entries()) {
        await tick();
        if (g.signal?.aborted) throw g.signal.reason;
        const question = p.slice(p.lastIndexOf('Q: '));
        const hinted = /\((\w)\) ([^\n]*?) \(CORRECT\)/.exec(question);
        const text = hinted ? ` Because it fits. Therefore, the answer is ${hinted[2]} (${hinted[1]}).` : ' It is the first one. Therefore, the answer is (a).';
        g.onSample?.(i, text, true);
        out.push({ text, tokens: 12 });
        g.onProgress?.(i + 1, prompts.length);
      }
      return out;
    },
    async finetune(examples, f) {
      const losses = [];
      for (let s = 1; s <= f.steps; s++) {
        await tick();
        if (f.signal?.aborted) throw f.signal.reason;
        losses.push(1 / s);
        f.onStep?.(s, 1 / s);
      }
      return { losses, tokens: examples.length * 30 };
    },
    saveWeights: async () => weights.slice(),
    loadWeights: async (b) => void (weights = b.slice()),
  };
}

let n = 0;
function setup(opts: { tick?: () => Promise<void>; fetch?: FetchLike & { urls: string[] }; db?: ReturnType<typeof openDb> } = {}) {
  const db = opts.db ?? openDb(`test-csqa-${++n}`);
  const loaded: HubModel[] = [];
  const connectGpu = async (): Promise<GpuBackend> => ({
    info: INFO, limits: INFO, lost: new Promise(() => {}),
    createEngine: () => {
      throw new Error('not an arithmetic test');
    },
    createCsqaEngine: (_cfg, model) => {
      loaded.push(model);
      return fakeCsqaEngine(opts.tick ?? (() => Promise.resolve()));
    },
  });
  const fetch = opts.fetch ?? fixtureFetch();
  const api = createEngineApi({ db, connectGpu, hub: { fetch, cache: memoryCache() } });
  const events: EngineEvent[] = [];
  return { db, api, loaded, fetch, events, onEvent: (e: EngineEvent) => void events.push(e) };
}

const micro = (o: Parameters<typeof csqaRunConfig>[1] = {}): CsqaRunConfig => csqaRunConfig('micro', { mode: 'star', ...o });

describe('CommonsenseQA through the EngineApi', () => {
  it('estimates from config.json, the tokenizer and the questions, without reading the weights', async () => {
    const s = setup();
    const e = await s.api.estimate(micro({ model: 'fixtures/tiny-llama-f32', data: 'train.jsonl' }), { data: file('train.jsonl', QUESTIONS) });
    expect(e.refusal).toBeNull();
    expect(e.csqa).toMatchObject({ source: 'fixtures/tiny-llama-f32', questions: { train: 4, eval: 2 }, downloadBytes: e.csqa!.params * 4 });
    expect(e.csqa!.description).toMatch(/layers, d 32/);
    expect(e.trainSeq).toBeGreaterThan(16);
    expect(e.memory.activations).toBeGreaterThan(0);
    expect(e.seconds).toBeNull(); // no iteration has run on this device yet
    expect(s.fetch.urls.some((u) => u.endsWith('/model.safetensors'))).toBe(false);
  });

  it('refuses a malformed JSONL with its line numbers, and a too-large model from its config.json alone', async () => {
    const s = setup();
    const bad = file('bad.jsonl', `${question('q1', 'Q?', ['a', 'b'], 'A')}\n{"nope": 1}\nnot json\n`);
    await expect(s.api.estimate(micro({ model: 'fixtures/tiny-llama-f32', data: 'bad.jsonl' }), { data: bad })).rejects.toThrow(/bad.jsonl: 2 malformed lines:\n\s+line 2: .*\n\s+line 3: not valid JSON/);
    // SmolLM2-360M's shape, fully fine-tuned: weights, gradients and AdamW alone are over the budget.
    const big = { model_type: 'llama', vocab_size: 49152, hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15, num_key_value_heads: 5, max_position_embeddings: 8192, tie_word_embeddings: true };
    const files = { model: [file('config.json', JSON.stringify(big))], data: file('train.jsonl', QUESTIONS) };
    const cfg = micro({ model: localModelName(files.model.map((f) => f.name)), data: 'train.jsonl', loraRank: 0 });
    const e = await s.api.estimate(cfg, files); // no tokenizer.json in these files: it was never asked for
    expect(e.refusal).toMatch(/needs at least \d+\.\d+ GiB of GPU memory, more than the 4\.00 GiB .* Fine-tune with LoRA/);
    await expect(s.api.start(cfg, 'big', () => {}, files)).rejects.toThrow(/more than the 4\.00 GiB/);
    expect(await s.api.listRuns()).toEqual([]);
    // A sample larger than the training questions is refused with what to change.
    const base = micro({ model: 'fixtures/tiny-llama-f32', data: 'train.jsonl' });
    const many = await s.api.estimate({ ...base, star: { ...base.star, trainSize: 5, poolSize: 5 } }, { data: file('train.jsonl', QUESTIONS) });
    expect(many.refusal).toMatch(/sample size is 5 questions per iteration, but there are only 4 training questions/);
  });

  it('runs from the Hub to done: download progress, per-label records, rationales; export and import keep them', async () => {
    const s = setup();
    const cfg = micro({ model: 'fixtures/tiny-llama-f32', data: 'train.jsonl' });
    const id = await s.api.start(cfg, 'hub run', s.onEvent, { data: file('train.jsonl', QUESTIONS) });
    await s.api.settled();
    const run = (await s.api.getRun(id))!;
    expect(run).toMatchObject({ status: 'done', name: 'hub run' });
    expect(s.loaded[0].cfg.vocab).toBe(297);
    const weights = s.events.filter((e) => e.kind === 'download' && e.file === 'model.safetensors');
    expect(weights.at(-1)).toMatchObject({ loaded: 140216, total: 140216, cached: false });
    expect(s.events.find((e) => e.kind === 'model' && e.state === 'ready')).toMatchObject({ text: /fixtures\/tiny-llama-f32: .*2 layers/ });
    expect(run.iterations.map((r) => r.iteration)).toEqual([0, 1]);
    for (const r of run.iterations) expect(Object.keys(r.evalAccuracyByDigits).every((k) => /^\([a-e]\)$/.test(k))).toBe(true);
    const it1 = run.iterations[1];
    expect(it1.generated).toBe(2);
    expect(it1.correct + it1.rationalized).toBe(2); // "(a)" is right for some, the hint rescues the rest
    const rows = await s.api.rationales(id, 1);
    expect(rows).toHaveLength(2 + it1.rationalized);
    for (const r of rows) {
      expect(r.prompt).toMatch(/^Q: .*\nAnswer Choices:\n/);
      expect(r.category).toMatch(/^\([a-e]\)$/);
      expect(r.expected).toMatch(/^[a-e] \(\w+\)$/);
      if (r.correct) expect(r.answer).toBe(r.expected!.split(' ')[0]);
    }

    const zip = new Uint8Array(await s.api.exportRun(id));
    const names = Object.keys(unzipSync(zip));
    for (const f of ['run.json', 'csqa-questions.json', 'summary.json', 'iteration-1/generate.json', 'config.json', 'model.safetensors']) {
      expect(names.some((x) => x.endsWith(`/${f}`)), f).toBe(true);
    }
    const back = await s.api.importRun(zip.slice().buffer);
    const imported = (await s.api.getRun(back))!;
    expect(imported.config).toEqual(run.config);
    expect(imported.iterations).toEqual(run.iterations);
    expect(await s.api.rationales(back, 1)).toEqual(rows);
    // An archive whose questions are malformed is refused, naming the file and the question.
    const files = unzipSync(zip);
    const key = Object.keys(files).find((x) => x.endsWith('/csqa-questions.json'))!;
    const q = JSON.parse(strFromU8(files[key]));
    q.train[1].answerKey = 'Z';
    files[key] = strToU8(JSON.stringify(q));
    const before = (await s.api.listRuns()).length;
    await expect(s.api.importRun(zipSync(files).buffer as ArrayBuffer)).rejects.toThrow(/csqa-questions.json: train\[1\]: answerKey "Z" is not one of the labels A, B, C, D, E/);
    expect(await s.api.listRuns()).toHaveLength(before);
  });

  it('a pause during the weights download aborts it; the paused run resumes to done', async () => {
    let stall = true;
    const hub = fixtureFetch();
    const fetch = Object.assign(async (url: string, init?: RequestInit) => {
      if (!stall || !url.endsWith('/model.safetensors')) return hub(url);
      // As fetch does: an aborted signal rejects at once, or as soon as it is aborted.
      return new Promise<Response>((_, reject) => {
        const abort = () => reject(new DOMException('The operation was aborted.', 'AbortError'));
        if (init?.signal?.aborted) abort();
        else init?.signal?.addEventListener('abort', abort);
      });
    }, { urls: hub.urls });
    const s = setup({ fetch });
    const id = await s.api.start(micro({ model: 'fixtures/tiny-llama-f32', data: 'train.jsonl' }), 'paused', s.onEvent, { data: file('train.jsonl', QUESTIONS) });
    await new Promise<void>((r) => {
      const t = setInterval(() => s.events.some((e) => e.kind === 'download' && e.file === 'tokenizer_config.json') && (clearInterval(t), r()), 2);
    });
    await s.api.pause(); // resolves only once the session has ended: the stalled download was aborted
    expect((await s.api.getRun(id))!.status).toBe('paused');
    stall = false;
    await s.api.resume(id, s.onEvent);
    await s.api.settled();
    expect((await s.api.getRun(id))!.status).toBe('done');
  });

  it('stores picked model files with the run, so a fresh worker resumes it without them', async () => {
    // The worker freezes at its third GPU call (iteration 1's generate, after the two base evaluations), as if the tab had closed.
    let ticks = 0;
    let frozen!: () => void;
    const atFreeze = new Promise<void>((r) => (frozen = r));
    const s = setup({ tick: () => (++ticks > 2 ? (frozen(), new Promise<void>(() => {})) : Promise.resolve()) });
    const files = { model: modelFiles(), data: file('train.jsonl', QUESTIONS) };
    const cfg = micro({ model: localModelName(files.model.map((f) => f.name)), data: 'train.jsonl', loraRank: 2, loraTargets: ['q', 'v'] });
    expect(cfg.model).toBe('local files: config.json, model.safetensors, tokenizer.json, tokenizer_config.json');
    const id = await s.api.start(cfg, 'local', s.onEvent, files);
    await atFreeze;
    const fresh = setup({ db: s.db });
    expect((await fresh.api.getRun(id))!.status).toBe('interrupted');
    await fresh.api.resume(id, fresh.onEvent);
    await fresh.api.settled();
    expect((await fresh.api.getRun(id))!.status).toBe('done');
    expect(fresh.loaded[0].source).toBe(cfg.model);
    expect(fresh.events.some((e) => e.kind === 'download' && e.file === 'model.safetensors' && e.cached)).toBe(true);
    expect(fresh.fetch.urls).toEqual([]); // nothing came from the network
  });
});
