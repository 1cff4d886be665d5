// A model folder as Hugging Face tooling reads it: config.json + model.safetensors. Our char tokenizer
// is named in config.json ("star_tokenizer"), which transformers ignores.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromHfConfig, toHfConfig } from '../hub/hf_config';
import { checkFiniteTensors, parseSafetensors } from '../hub/safetensors';
import type { ModelConfig } from '../model/config';
import { arithmeticTokenizer } from '../star/tasks/char_tokenizer';
import { writeFileAtomic } from '../star/stores/files';
import { UsageError } from './args';

export const TOKENIZERS = { 'arithmetic-char': arithmeticTokenizer } as const;
export type TokenizerName = keyof typeof TOKENIZERS;

export async function writeModelDir(dir: string, cfg: ModelConfig, weights: Uint8Array, tokenizer: TokenizerName): Promise<void> {
  const tok = TOKENIZERS[tokenizer];
  await writeFileAtomic(join(dir, 'model.safetensors'), weights);
  const config = { ...toHfConfig(cfg, { bosId: tok.bos, eosId: tok.eos }), pad_token_id: tok.pad, star_tokenizer: tokenizer };
  await writeFileAtomic(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
}

/** Reads and checks a model folder; every problem is a UsageError naming the file. */
export async function readModelDir(dir: string): Promise<{ cfg: ModelConfig; weights: Uint8Array; tokenizer: TokenizerName }> {
  const read = async (name: string) => {
    try {
      return await readFile(join(dir, name));
    } catch {
      throw new UsageError(`${join(dir, name)} is missing or unreadable: a model folder holds config.json and model.safetensors.`);
    }
  };
  let json: Record<string, unknown>;
  try {
    json = JSON.parse((await read('config.json')).toString('utf8'));
  } catch (e) {
    throw e instanceof UsageError ? e : new UsageError(`${join(dir, 'config.json')} is not valid JSON.`);
  }
  let cfg: ModelConfig;
  try {
    cfg = fromHfConfig(json, join(dir, 'config.json'));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const tokenizer = json.star_tokenizer as TokenizerName;
  if (!(tokenizer in TOKENIZERS)) {
    throw new UsageError(`${join(dir, 'config.json')}: "star_tokenizer" is ${JSON.stringify(json.star_tokenizer)}; known: ${Object.keys(TOKENIZERS).join(', ')}.`);
  }
  const weights = new Uint8Array(await read('model.safetensors'));
  try {
    checkFiniteTensors(parseSafetensors(weights, join(dir, 'model.safetensors')));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return { cfg, weights, tokenizer };
}
