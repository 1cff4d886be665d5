// A model folder as Hugging Face tooling reads it: config.json + model.safetensors. Our char tokenizer
// is named in config.json ("star_tokenizer"), which transformers ignores.

import { join } from 'node:path';
import { fromHfConfig, toHfConfig } from '../hub/hf_config';
import { checkFiniteTensors, parseSafetensors } from '../hub/safetensors';
import type { ModelConfig } from '../model/config';
import { arithmeticTokenizer } from '../star/tasks/char_tokenizer';
import { FolderStore, RunFolderError } from '../star/stores/files';
import { preview } from '../util/preview';
import { UsageError } from './args';

export const TOKENIZERS = { 'arithmetic-char': arithmeticTokenizer } as const;
export type TokenizerName = keyof typeof TOKENIZERS;

/** model.safetensors + config.json, to commit as one (FolderStore.putFiles). */
export function modelFiles(cfg: ModelConfig, weights: Uint8Array, tokenizer: TokenizerName): Map<string, string | Uint8Array> {
  const tok = TOKENIZERS[tokenizer];
  const config = { ...toHfConfig(cfg, { bosId: tok.bos, eosId: tok.eos }), pad_token_id: tok.pad, star_tokenizer: tokenizer };
  return new Map<string, string | Uint8Array>([['model.safetensors', weights], ['config.json', JSON.stringify(config, null, 2) + '\n']]);
}

/** Reads and checks a model folder; every problem is a UsageError naming the file. */
export async function readModelDir(dir: string): Promise<{ cfg: ModelConfig; weights: Uint8Array; tokenizer: TokenizerName }> {
  const store = new FolderStore(dir); // a run folder's files are checked against its manifest.json
  const read = async (name: string) => {
    const bytes = await store.getFile(name).catch((e) => {
      if (e instanceof RunFolderError) throw e; // damaged: the message says what to do
      return undefined;
    });
    if (bytes === undefined) throw new UsageError(`${join(dir, name)} is missing or unreadable: a model folder holds config.json and model.safetensors.`);
    return bytes;
  };
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder().decode(await read('config.json')));
  } catch (e) {
    throw e instanceof UsageError || e instanceof RunFolderError ? e : new UsageError(`${join(dir, 'config.json')} is not valid JSON.`);
  }
  let cfg: ModelConfig;
  try {
    cfg = fromHfConfig(json, join(dir, 'config.json'));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const tokenizer = json.star_tokenizer as TokenizerName;
  if (typeof tokenizer !== 'string' || !Object.hasOwn(TOKENIZERS, tokenizer)) { // not `in`: "toString" is in every object
    throw new UsageError(`${join(dir, 'config.json')}: "star_tokenizer" is ${preview(json.star_tokenizer)}; known: ${Object.keys(TOKENIZERS).join(', ')}.`);
  }
  const weights = new Uint8Array(await read('model.safetensors'));
  try {
    checkFiniteTensors(parseSafetensors(weights, join(dir, 'model.safetensors')));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return { cfg, weights, tokenizer };
}
