// Hugging Face `config.json` <-> our ModelConfig, for Llama-family checkpoints (Llama, SmolLM2, Qwen2).

import { type ModelConfig, validateConfig } from '../model/config';
import { paramSpecs } from '../model/params';
import { preview } from '../util/preview';

/** Architectures whose weights map one-to-one onto our layout. */
const SUPPORTED = new Set(['llama', 'qwen2', 'mistral']);

export type HfConfig = Record<string, unknown>;

/** A config.json that transformers' LlamaForCausalLM (or Qwen2ForCausalLM when qkvBias) reads. */
export function toHfConfig(cfg: ModelConfig, extra: { bosId?: number; eosId?: number } = {}): HfConfig {
  return {
    architectures: [cfg.qkvBias ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: cfg.qkvBias ? 'qwen2' : 'llama',
    vocab_size: cfg.vocab,
    hidden_size: cfg.dModel,
    num_hidden_layers: cfg.nLayers,
    num_attention_heads: cfg.nHeads,
    num_key_value_heads: cfg.nKvHeads,
    intermediate_size: cfg.dFF,
    max_position_embeddings: cfg.maxSeq,
    rope_theta: cfg.ropeTheta,
    rms_norm_eps: cfg.normEps,
    tie_word_embeddings: cfg.tieEmbeddings,
    hidden_act: 'silu',
    attention_bias: cfg.qkvBias,
    torch_dtype: 'float32',
    ...(extra.bosId !== undefined ? { bos_token_id: extra.bosId } : {}),
    ...(extra.eosId !== undefined ? { eos_token_id: extra.eosId } : {}),
  };
}

/**
 * Largest value of each size field: far above any checkpoint a WebGPU device can run, and low enough that
 * laying out the parameters stays instant (a vocab_size of 1e12 took seconds, 2^53 crashed the layout).
 */
const MAX_SIZE: Record<string, number> = {
  vocab_size: 2 ** 24, hidden_size: 2 ** 16, intermediate_size: 2 ** 18, num_hidden_layers: 1024, num_attention_heads: 4096, num_key_value_heads: 4096,
};
/** Parameters of the largest model accepted: 2^36, 275 GB of f32 weights, beyond any device this runs on. */
const MAX_PARAMS = 2 ** 36;

function field(json: HfConfig, name: string, file: string): number {
  const v = Object.hasOwn(json, name) ? json[name] : undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${file}: field "${name}" is missing or not a number (got ${preview(v)}).`);
  if (Object.hasOwn(MAX_SIZE, name) && v > MAX_SIZE[name]) throw new Error(`${file}: field "${name}" is ${v}, more than this engine supports (at most ${MAX_SIZE[name]}).`);
  return v;
}

/** Maps a config.json onto ModelConfig; unsupported architectures and settings are named in the error. */
export function fromHfConfig(json: HfConfig, file = 'config.json', maxSeqCap = 4096): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${file}: not a JSON object (got ${preview(json)}).`);
  const type = json.model_type;
  if (typeof type !== 'string' || !SUPPORTED.has(type)) {
    throw new Error(`${file}: field "model_type" is ${preview(type)}; supported: ${[...SUPPORTED].join(', ')} (Llama-family decoders).`);
  }
  if (json.hidden_act !== undefined && json.hidden_act !== 'silu') {
    throw new Error(`${file}: field "hidden_act" is ${preview(json.hidden_act)}; only "silu" (SwiGLU) is supported.`);
  }
  const scaling = json.rope_scaling as { rope_type?: string; type?: string } | null | undefined;
  if (scaling && (scaling.rope_type ?? scaling.type) !== 'default') {
    throw new Error(`${file}: field "rope_scaling" (${preview(scaling)}) is not supported; only plain RoPE is.`);
  }
  const hidden = field(json, 'hidden_size', file);
  const heads = field(json, 'num_attention_heads', file);
  if (json.head_dim !== undefined && json.head_dim !== hidden / heads) {
    throw new Error(`${file}: field "head_dim" (${preview(json.head_dim)}) differs from hidden_size / num_attention_heads; not supported.`);
  }
  const maxPos = field(json, 'max_position_embeddings', file);
  const fields: ModelConfig = {
    vocab: field(json, 'vocab_size', file),
    dModel: hidden,
    nLayers: field(json, 'num_hidden_layers', file),
    nHeads: heads,
    nKvHeads: json.num_key_value_heads === undefined ? heads : field(json, 'num_key_value_heads', file),
    dFF: field(json, 'intermediate_size', file),
    maxSeq: Math.min(maxPos, maxSeqCap),
    ropeTheta: json.rope_theta === undefined ? 10000 : field(json, 'rope_theta', file),
    normEps: json.rms_norm_eps === undefined ? 1e-6 : field(json, 'rms_norm_eps', file),
    tieEmbeddings: json.tie_word_embeddings === true,
    // Qwen2 always has q/k/v biases; Llama has them when attention_bias is set.
    qkvBias: type === 'qwen2' || json.attention_bias === true,
  };
  let cfg: ModelConfig;
  try {
    cfg = validateConfig(fields);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  const params = paramSpecs(cfg).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  if (params > MAX_PARAMS) {
    throw new Error(`${file}: a model of ${(params / 1e9).toFixed(1)}B parameters is beyond what this engine can hold (at most ${(MAX_PARAMS / 1e9).toFixed(1)}B).`);
  }
  return cfg;
}
