// A Hub tokenizer (tokenizer.json + tokenizer_config.json) through transformers.js, as the engine's
// EngineTokenizer. Built from the JSON the loader already has, so it never touches the network: this is
// what AutoTokenizer.from_pretrained does after its downloads (pick the class named by tokenizer_class,
// else PreTrainedTokenizer, and construct it from the two objects).
//
// transformers.js is imported lazily: the arithmetic task and the tests that do not need it never load it,
// and the web build keeps it in its own chunk.

import type { PreTrainedTokenizer } from '@huggingface/transformers';
import type { EngineTokenizer } from '../model/tokenizer';

export interface HubTokenizer extends EngineTokenizer {
  /** The transformers.js tokenizer, for anything beyond the engine's needs (chat templates...). */
  raw: PreTrainedTokenizer;
  /** The class that was constructed, e.g. "GPT2Tokenizer" or "PreTrainedTokenizer". */
  className: string;
}

type Json = Record<string, unknown>;

/** Ids from config.json, used where tokenizer_config.json names no token (Qwen2.5 has no BOS token). */
export interface TokenizerFallbacks {
  bos_token_id?: unknown;
  eos_token_id?: unknown;
  pad_token_id?: unknown;
}

function firstId(x: unknown): number | undefined {
  const v = Array.isArray(x) ? x[0] : x;
  return Number.isInteger(v) && (v as number) >= 0 ? (v as number) : undefined;
}

/** One more than the largest id in the vocabulary or the added tokens. */
function vocabSizeOf(json: Json): number {
  const model = json.model as { vocab?: Record<string, number> | [string, number][] } | undefined;
  let max = -1;
  const vocab = model?.vocab;
  if (Array.isArray(vocab)) max = vocab.length - 1; // Unigram: [piece, score] in id order
  else if (vocab) for (const id of Object.values(vocab)) max = Math.max(max, id);
  for (const t of (json.added_tokens as { id: number }[] | undefined) ?? []) max = Math.max(max, t.id);
  return max + 1;
}

export async function createHubTokenizer(tokenizerJson: Json, tokenizerConfig: Json, fallbacks: TokenizerFallbacks = {}): Promise<HubTokenizer> {
  if (typeof tokenizerJson.model !== 'object' || tokenizerJson.model === null) {
    throw new Error('tokenizer.json: field "model" is missing; this is not a Hugging Face tokenizers file.');
  }
  const tf = await import('@huggingface/transformers');
  const wanted = typeof tokenizerConfig.tokenizer_class === 'string' ? tokenizerConfig.tokenizer_class.replace(/Fast$/, '') : '';
  const named = (tf as unknown as Record<string, unknown>)[wanted];
  const isTokenizerClass = typeof named === 'function' && (named === tf.PreTrainedTokenizer || named.prototype instanceof tf.PreTrainedTokenizer);
  const Cls = (isTokenizerClass ? named : tf.PreTrainedTokenizer) as typeof tf.PreTrainedTokenizer;
  let raw: PreTrainedTokenizer;
  try {
    raw = new Cls(tokenizerJson, tokenizerConfig);
  } catch (e) {
    throw new Error(`tokenizer.json: transformers.js could not build a tokenizer from it (${(e as Error).message}).`);
  }
  const eos = firstId(raw.eos_token_id) ?? firstId(fallbacks.eos_token_id);
  if (eos === undefined) throw new Error('tokenizer_config.json names no eos_token and config.json has no eos_token_id: generation could never stop.');
  const bos = firstId(raw.bos_token_id) ?? firstId(fallbacks.bos_token_id) ?? eos;
  const pad = firstId(raw.pad_token_id) ?? firstId(fallbacks.pad_token_id) ?? eos;
  return {
    raw,
    className: isTokenizerClass ? wanted : 'PreTrainedTokenizer',
    vocabSize: Math.max(vocabSizeOf(tokenizerJson), bos + 1, eos + 1, pad + 1),
    bos,
    eos,
    pad,
    encode: (text) => raw.encode(text, { add_special_tokens: false }),
    // No clean-up of spaces: decode(encode(x)) stays x, and a growing prefix decodes to a growing string.
    decode: (ids) => (ids.length === 0 ? '' : raw.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false })),
  };
}
