// loadHubModel without a network: a repo served by a stubbed fetch, a folder, picked files; byte progress;
// the cache (a second load works with fetch failing); and each kind of broken checkpoint with its message.
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type FetchLike, memoryCache, readBody } from '../../src/hub/download';
import { estimateMemory, type HubProgress, loadHubModel } from '../../src/hub/load';
import { parseSafetensors, tensorToF32, writeSafetensors, writeSafetensorsTyped } from '../../src/hub/safetensors';
import { presetConfig } from '../../src/model/config';
import { layoutParams } from '../../src/model/params';
import { fixtureFetch, FIXTURES, streamed, stubFetch } from './fixture_fetch';

const tmp: string[] = [];
afterAll(async () => {
  for (const d of tmp) await rm(d, { recursive: true, force: true });
});

/** The files of a fixture model, by name, as bytes (to be edited by a test). */
function fixtureFiles(name: string): Map<string, Uint8Array> {
  const dir = join(FIXTURES, name);
  return new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
}

/** A stub Hub holding one repo "t/model" with these files. */
function repo(files: Map<string, Uint8Array>): FetchLike & { urls: string[] } {
  return stubFetch((path) => {
    const m = /^t\/model\/resolve\/main\/(.+)$/.exec(path);
    return m ? files.get(m[1]) : undefined;
  });
}

const json = (x: unknown) => new TextEncoder().encode(JSON.stringify(x));
const load = (files: Map<string, Uint8Array>) => loadHubModel('t/model', { fetch: repo(files), cache: false });

/** tiny-llama-f32's tensors, to rewrite into a broken model.safetensors. */
function f32Tensors() {
  const f = parseSafetensors(fixtureFiles('tiny-llama-f32').get('model.safetensors')!);
  return Object.values(f.header).map((t) => ({ name: t.name, shape: t.shape, data: tensorToF32(f, t.name) }));
}

function withWeights(bytes: Uint8Array, name = 'tiny-llama-f32'): Map<string, Uint8Array> {
  const files = fixtureFiles(name);
  files.set('model.safetensors', bytes);
  return files;
}

describe('loading sources, progress and cache', () => {
  it('reports the memory estimate before any weight byte, then streamed byte progress per file', async () => {
    const events: HubProgress[] = [];
    const m = await loadHubModel('fixtures/tiny-llama-f32', { fetch: fixtureFetch(), cache: false, onProgress: (e) => events.push(e) });
    const kinds = events.map((e) => (e.kind === 'file' ? e.file : e.kind));
    expect(kinds.indexOf('config')).toBeLessThan(kinds.indexOf('model.safetensors'));
    const cfgEvent = events.find((e) => e.kind === 'config')!;
    expect(cfgEvent.kind === 'config' && cfgEvent.memory).toEqual(m.memory);
    expect(m.memory.weightBytes).toBe(m.memory.params * 4);
    const weights = events.filter((e): e is Extract<HubProgress, { kind: 'file' }> => e.kind === 'file' && e.file === 'model.safetensors');
    expect(weights.length).toBeGreaterThan(3); // 140 kB in 16 kB chunks
    expect(weights.every((e) => e.total === 140216 && !e.cached)).toBe(true);
    expect(weights.map((e) => e.loaded)).toEqual([...weights.map((e) => e.loaded)].sort((a, b) => a - b));
    expect(weights.at(-1)!.loaded).toBe(140216);
  });

  it('serves a second load from the cache while fetch fails (memory cache and Node folder cache)', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'hub-cache-'));
    tmp.push(folder);
    for (const cache of [memoryCache(), folder]) {
      const first = await loadHubModel('fixtures/tiny-qwen2-sharded', { fetch: fixtureFetch(), cache });
      const offline: FetchLike = async () => {
        throw new TypeError('fetch failed (offline)');
      };
      const events: HubProgress[] = [];
      const second = await loadHubModel('fixtures/tiny-qwen2-sharded', { fetch: offline, cache, onProgress: (e) => events.push(e) });
      expect([...second.tensors.keys()]).toEqual([...first.tensors.keys()]);
      expect(second.tensors.get('model.norm.weight')).toEqual(first.tensors.get('model.norm.weight'));
      expect(events.filter((e) => e.kind === 'file').every((e) => e.kind === 'file' && e.cached)).toBe(true);
    }
    expect(await readdir(join(folder, 'fixtures', 'tiny-qwen2-sharded', 'main'))).toContain('model-00002-of-00002.safetensors');
    // Without a cache entry, the offline error says what happened.
    await expect(loadHubModel('fixtures/tiny-llama-f32', { fetch: async () => Promise.reject(new TypeError('fetch failed')), cache: memoryCache() }))
      .rejects.toThrow(/Could not download https:\/\/huggingface.co\/fixtures\/tiny-llama-f32\/resolve\/main\/config.json.*Offline/);
  });

  it('loads a local folder and picked File objects the same way', async () => {
    const fromFolder = await loadHubModel(join(FIXTURES, 'tiny-llama-bf16'));
    expect(fromFolder.source).toBe(join(FIXTURES, 'tiny-llama-bf16'));
    const files = [...fixtureFiles('tiny-llama-bf16')].map(([n, b]) => new File([b as BlobPart], n));
    const fromFiles = await loadHubModel(files);
    expect(fromFiles.source).toBe('4 local files');
    expect(fromFiles.tensors.get('model.embed_tokens.weight')).toEqual(fromFolder.tensors.get('model.embed_tokens.weight'));
  });

  it('reads a body with no Content-Length, and rejects one cut short', async () => {
    const bytes = new Uint8Array(40_000).map((_, i) => i % 251);
    expect(await readBody(streamed(bytes, 7000, {}))).toEqual(bytes);
    await expect(readBody(streamed(bytes.slice(0, 30_000), 7000, { 'content-length': '40000' }))).rejects.toThrow(/cut short/);
  });

  it('estimates memory; splits an embedding over the binding limit, refuses what cannot be split before reading weights', async () => {
    // Qwen2.5-0.5B's shapes: its embedding alone is 151936 x 896 f32 = 519 MiB, in 5 chunks under 128 MiB.
    const qwen = presetConfig('micro', { vocab: 151936, dModel: 896, nHeads: 14, nKvHeads: 2, dFF: 4864, nLayers: 24, qkvBias: true });
    expect(estimateMemory(qwen).largest).toMatchObject({ name: 'model.embed_tokens.weight', bytes: 151936 * 896 * 4 });
    const parts = layoutParams(qwen, 128 << 20).byName.get('model.embed_tokens.weight')!.parts;
    expect(parts.map((p) => p.rows)).toEqual([30388, 30388, 30388, 30388, 30384]);
    expect(parts.every((p) => p.size * 4 <= 128 << 20)).toBe(true);
    // tiny-llama-f32: the embedding and LM head (297 x 32) exceed 6 KiB, its other tensors fit.
    const split = await loadHubModel('fixtures/tiny-llama-f32', { fetch: fixtureFetch(), cache: false, maxBindingBytes: 6144 });
    expect(split.tensors.get('lm_head.weight')).toHaveLength(297 * 32);
    // Ten rows of the embedding: q_proj (32 x 32, 4 KiB) cannot be split, so the model is refused.
    const fetch = fixtureFetch();
    await expect(loadHubModel('fixtures/tiny-llama-f32', { fetch, cache: false, maxBindingBytes: 10 * 32 * 4 }))
      .rejects.toThrow(/fixtures\/tiny-llama-f32: Parameter model.layers.0.self_attn.q_proj.weight \(32x32\) needs 4096 bytes .*more than this GPU can bind at once \(maxStorageBufferBindingSize 1280 bytes/);
    expect(fetch.urls.some((u) => u.endsWith('.safetensors'))).toBe(false);
  });
});

describe('broken models give clear errors', () => {
  it('a bad safetensors header', async () => {
    const bytes = new Uint8Array(64);
    new DataView(bytes.buffer).setBigUint64(0, 1000n, true);
    await expect(load(withWeights(bytes))).rejects.toThrow(/t\/model\/model.safetensors: header length 1000 runs past the end/);
    const garbage = writeSafetensors([{ name: 'x', data: new Float32Array(2), shape: [2] }]);
    garbage[8] = 0x7b + 1; // "{" -> "|"
    await expect(load(withWeights(garbage))).rejects.toThrow(/model.safetensors: header is not valid JSON/);
  });

  it('a truncated tensor', async () => {
    const full = fixtureFiles('tiny-llama-f32').get('model.safetensors')!;
    await expect(load(withWeights(full.slice(0, full.length - 100)))).rejects.toThrow(/tensor "lm_head.weight".*truncated/);
  });

  it('an unsupported dtype', async () => {
    const h = { 'model.embed_tokens.weight': { dtype: 'I8', shape: [297, 32], data_offsets: [0, 297 * 32] } };
    const head = new TextEncoder().encode(JSON.stringify(h));
    const bytes = new Uint8Array(8 + head.length + 297 * 32);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(head.length), true);
    bytes.set(head, 8);
    await expect(load(withWeights(bytes))).rejects.toThrow(/tensor "model.embed_tokens.weight": unsupported dtype "I8" \(expected one of F32, F16, BF16\)/);
  });

  it('a shape that does not match config.json names the tensor', async () => {
    const files = fixtureFiles('tiny-llama-f32');
    const cfg = JSON.parse(new TextDecoder().decode(files.get('config.json')));
    files.set('config.json', json({ ...cfg, intermediate_size: 40 }));
    await expect(load(files)).rejects.toThrow(/tensor "model.layers.0.mlp.gate_proj.weight" has shape \[48, 32\], but config.json .*intermediate_size 40.* needs \[40, 32\]/);
  });

  it('a missing tensor; the untied head says why it is needed', async () => {
    const tensors = f32Tensors().filter((t) => t.name !== 'lm_head.weight');
    await expect(load(withWeights(writeSafetensors(tensors)))).rejects.toThrow(/no tensor "lm_head.weight".*tie_word_embeddings false/);
    const noNorm = f32Tensors().filter((t) => t.name !== 'model.layers.1.post_attention_layernorm.weight');
    await expect(load(withWeights(writeSafetensors(noNorm)))).rejects.toThrow(/no tensor "model.layers.1.post_attention_layernorm.weight"/);
  });

  it('tied embeddings: lm_head.weight may be absent (bf16 fixture) or present and ignored', async () => {
    const files = fixtureFiles('tiny-llama-f32');
    const cfg = JSON.parse(new TextDecoder().decode(files.get('config.json')));
    files.set('config.json', json({ ...cfg, tie_word_embeddings: true }));
    const m = await load(files);
    expect(m.checkpoint.ignored).toEqual(['lm_head.weight']);
    expect(m.tensors.has('lm_head.weight')).toBe(false);
  });

  it('F16 weights load as well', async () => {
    const { f32ToF16 } = await import('../../src/hub/safetensors');
    const bytes = writeSafetensorsTyped(f32Tensors().map((t) => ({ ...t, dtype: 'F16' as const, data: f32ToF16(t.data) })));
    expect((await load(withWeights(bytes))).checkpoint.dtypes).toEqual({ F16: 21 });
  });

  it('a sharded checkpoint with a missing shard or an index naming an absent tensor', async () => {
    const files = fixtureFiles('tiny-qwen2-sharded');
    files.delete('model-00002-of-00002.safetensors');
    await expect(load(files)).rejects.toThrow(/names the shard model-00002-of-00002.safetensors, which is missing/);
    const files2 = fixtureFiles('tiny-qwen2-sharded');
    const index = JSON.parse(new TextDecoder().decode(files2.get('model.safetensors.index.json')));
    delete index.weight_map['model.norm.weight'];
    files2.set('model.safetensors.index.json', json(index));
    await expect(load(files2)).rejects.toThrow(/model.safetensors.index.json has no tensor "model.norm.weight"/);
  });

  it('config.json: an unsupported architecture names the field; a missing repo says config.json is missing', async () => {
    const files = fixtureFiles('tiny-llama-f32');
    files.set('config.json', json({ model_type: 'gpt2', n_embd: 32 }));
    await expect(load(files)).rejects.toThrow(/t\/model\/config.json: field "model_type" is "gpt2"; supported: llama, qwen2, mistral/);
    await expect(load(new Map())).rejects.toThrow(/t\/model: config.json is missing/);
    const gated = Object.assign(async () => new Response('', { status: 401 }), { urls: [] });
    await expect(loadHubModel('t/model', { fetch: gated, cache: false })).rejects.toThrow(/HTTP 401.*private or gated/);
  });

  it('tokenizer problems: missing tokenizer.json, or more tokens than vocab_size', async () => {
    const files = fixtureFiles('tiny-llama-f32');
    files.delete('tokenizer.json');
    await expect(load(files)).rejects.toThrow(/tokenizer.json is missing. Only fast \(tokenizer.json\) tokenizers/);
    const files2 = fixtureFiles('tiny-llama-f32');
    const cfg = JSON.parse(new TextDecoder().decode(files2.get('config.json')));
    files2.set('config.json', json({ ...cfg, vocab_size: 290 }));
    await expect(load(files2)).rejects.toThrow(/the tokenizer has 297 tokens but config.json's vocab_size is 290/);
  });

  it('neither a folder nor a repo id', async () => {
    await expect(loadHubModel('no/such/folder')).rejects.toThrow(/"no\/such\/folder" is neither a folder nor a Hub repo id/);
  });
});
