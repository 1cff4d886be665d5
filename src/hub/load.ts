// loadHubModel: a pretrained Llama-family model from the Hugging Face Hub (a repo id), a folder (Node) or
// files the user picked (browser), checked and ready for uploadParams, with its tokenizer.
//
//   config.json            -> ModelConfig (fromHfConfig; unsupported settings are named)
//   (memory estimate)      -> reported before any weight is read; a model this device cannot bind stops here
//                             (the embedding and LM head are split into vocabulary row chunks that each fit
//                             maxStorageBufferBindingSize; any other tensor must fit whole)
//   tokenizer.json (+ tokenizer_config.json) -> transformers.js tokenizer, read before the large files
//   model.safetensors, or model.safetensors.index.json + shards -> f32 tensors, checked against the config
//
// Downloads report byte progress and land in a cache (the browser's Cache API; in Node a folder,
// ~/.cache/star-webgpu by default), so a second load of the same repo works offline.

import { headDim, type ModelConfig } from '../model/config';
import { layoutParams, paramSpecs, type ParamTensors } from '../model/params';
import { logitBlocks } from '../model/vocab';
import { type Checkpoint, readCheckpoint } from './checkpoint';
import {
  browserCache, type ByteCache, type FileProgress, filesSource, type HubFetchOptions, isRepoId, type ModelSource, repoSource,
} from './download';
import { fromHfConfig, type HfConfig } from './hf_config';
import { HUB_PRESETS, resolveModelName } from './presets';
import { createHubTokenizer, type HubTokenizer } from './tokenizer';

export interface MemoryEstimate {
  params: number;
  /** f32 weights on the GPU. */
  weightBytes: number;
  /** Weights, gradients and two AdamW moments: what fine-tuning needs before activations. */
  trainBytes: number;
  largest: { name: string; shape: number[]; bytes: number };
}

export type HubProgress =
  | ({ kind: 'file' } & FileProgress)
  | { kind: 'config'; cfg: ModelConfig; memory: MemoryEstimate };

export interface LoadHubOptions extends Omit<HubFetchOptions, 'cache'> {
  /** A ByteCache, a folder (Node), or false for none. Default: Cache API in a browser, ~/.cache/star-webgpu in Node. */
  cache?: ByteCache | string | false;
  onProgress?: (e: HubProgress) => void;
  /** The device's maxStorageBufferBindingSize: a model that cannot be bound within it is refused before the weights are read. */
  maxBindingBytes?: number;
  /** Caps max_position_embeddings (the KV cache and activations scale with it). Default 2048. */
  maxSeq?: number;
}

export interface HubModel {
  /** The source's label: repo id, folder or "N local files". */
  source: string;
  cfg: ModelConfig;
  hfConfig: HfConfig;
  tensors: ParamTensors;
  tokenizer: HubTokenizer;
  memory: MemoryEstimate;
  checkpoint: Omit<Checkpoint, 'tensors'>;
}

const isNode = () => typeof process !== 'undefined' && !!process.versions?.node;

export function estimateMemory(cfg: ModelConfig): MemoryEstimate {
  let params = 0;
  let largest = { name: '', shape: [] as number[], bytes: 0 };
  for (const s of paramSpecs(cfg)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    params += n;
    if (n * 4 > largest.bytes) largest = { name: s.name, shape: s.shape, bytes: n * 4 };
  }
  return { params, weightBytes: params * 4, trainBytes: params * 16, largest };
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/**
 * Refuses a model this device cannot bind: the embedding and LM head may exceed the limit (they are stored
 * as vocabulary row chunks), but every other tensor must fit whole and so must one row of logits.
 */
export function checkBindingLimit(cfg: ModelConfig, maxBindingBytes: number, label = 'this model'): void {
  try {
    layoutParams(cfg, maxBindingBytes);
    logitBlocks(cfg.vocab, 1, maxBindingBytes);
  } catch (e) {
    throw new Error(`${label}: ${(e as Error).message} (${HUB_PRESETS['smollm2-135m'].repo} fits every WebGPU device.)`);
  }
}

async function resolveCache(opt: LoadHubOptions['cache']): Promise<ByteCache | null> {
  if (opt === false) return null;
  if (typeof opt === 'object') return opt;
  if (isNode()) {
    const node = await import('./node');
    return node.folderCache(opt ?? `${await node.defaultCacheDir()}/hub`);
  }
  if (typeof opt === 'string') throw new Error('A cache folder works in Node only; in a browser pass a ByteCache or leave it out.');
  return typeof caches !== 'undefined' ? browserCache() : null;
}

/** A repo id (or preset name), a folder (Node), picked files, or any ModelSource. */
export async function resolveSource(source: string | ArrayLike<File> | ModelSource, opts: LoadHubOptions = {}): Promise<ModelSource> {
  if (typeof source !== 'string') return 'read' in source ? (source as ModelSource) : filesSource(source as ArrayLike<File>);
  if (isNode()) {
    const node = await import('./node');
    if (await node.isDirectory(source)) return node.folderSource(source);
  }
  const repo = resolveModelName(source);
  if (!isRepoId(repo)) {
    throw new Error(`"${source}" is neither ${isNode() ? 'a folder nor ' : ''}a Hub repo id (owner/name) nor a preset (${Object.keys(HUB_PRESETS).join(', ')}).`);
  }
  return repoSource(repo, { ...opts, cache: await resolveCache(opts.cache) });
}

async function readJson(source: ModelSource, file: string, onProgress: (p: FileProgress) => void, required: boolean): Promise<Record<string, unknown> | undefined> {
  const bytes = await source.read(file, onProgress);
  if (!bytes) {
    if (!required) return undefined;
    throw new Error(`${source.label}: ${file} is missing.${file === 'tokenizer.json' ? ' Only fast (tokenizer.json) tokenizers are supported.' : ''}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`${source.label}/${file} is not valid JSON (${(e as Error).message}).`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${source.label}/${file} is not a JSON object.`);
  return json as Record<string, unknown>;
}

export async function loadHubModel(source: string | ArrayLike<File> | ModelSource, opts: LoadHubOptions = {}): Promise<HubModel> {
  const src = await resolveSource(source, opts);
  const fileProgress = (p: FileProgress) => opts.onProgress?.({ kind: 'file', ...p });

  const hfConfig = (await readJson(src, 'config.json', fileProgress, true))!;
  const cfg = fromHfConfig(hfConfig, `${src.label}/config.json`, opts.maxSeq ?? 2048);
  const memory = estimateMemory(cfg);
  opts.onProgress?.({ kind: 'config', cfg, memory });
  if (opts.maxBindingBytes !== undefined) checkBindingLimit(cfg, opts.maxBindingBytes, src.label);

  const tokJson = (await readJson(src, 'tokenizer.json', fileProgress, true))!;
  const tokConfig = (await readJson(src, 'tokenizer_config.json', fileProgress, false)) ?? {};
  const tokenizer = await createHubTokenizer(tokJson, tokConfig, hfConfig);
  if (tokenizer.vocabSize > cfg.vocab) {
    throw new Error(`${src.label}: the tokenizer has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${cfg.vocab}.`);
  }

  const { tensors, ...checkpoint } = await readCheckpoint(cfg, src, fileProgress);
  return { source: src.label, cfg, hfConfig, tensors, tokenizer, memory, checkpoint };
}

/** One line for logs: "135M parameters (f32 weights 513.0 MiB, fine-tuning 2052.0 MiB + activations), 30 layers, ...". */
export function describeModel(cfg: ModelConfig, memory: MemoryEstimate): string {
  return `${(memory.params / 1e6).toFixed(1)}M parameters (f32 weights ${mb(memory.weightBytes)}, about half as the f16 base under LoRA; full fine-tuning ${mb(memory.trainBytes)} + activations), ` +
    `${cfg.nLayers} layers, d ${cfg.dModel}, ${cfg.nHeads}/${cfg.nKvHeads} heads of ${headDim(cfg)}, vocab ${cfg.vocab}, maxSeq ${cfg.maxSeq}`;
}
