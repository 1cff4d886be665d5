// The transformers.js tokenizer adapter on the fixture's byte-level BPE (built from JSON, no network).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createHubTokenizer } from '../../src/hub/tokenizer';
import { FIXTURES, reference } from './fixture_fetch';

const read = (f: string) => JSON.parse(readFileSync(join(FIXTURES, 'tiny-llama-f32', f), 'utf8'));

describe('createHubTokenizer', () => {
  it('encodes like the independent Python BPE, without special tokens, and decodes back', async () => {
    const tok = await createHubTokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
    const ref = reference();
    expect(tok.className).toBe('GPT2Tokenizer');
    ref.texts.forEach((t, i) => {
      expect(tok.encode(t)).toEqual(ref.tokens[i]);
      expect(tok.decode(tok.encode(t))).toBe(t);
    });
    expect(tok.vocabSize).toBe(297);
    expect([tok.bos, tok.eos, tok.pad]).toEqual([295, 296, 296]); // <|im_start|>, <|im_end|>, <|im_end|>
    expect(tok.decode([tok.bos, ...tok.encode('hi'), tok.eos])).toBe('hi');
    expect(tok.decode([])).toBe('');
  });

  it('falls back to config.json ids when tokenizer_config names no BOS (as Qwen2.5)', async () => {
    const config = { ...read('tokenizer_config.json'), bos_token: null, tokenizer_class: 'NoSuchTokenizerFast' };
    const tok = await createHubTokenizer(read('tokenizer.json'), config, { bos_token_id: 294, eos_token_id: [296, 294] });
    expect(tok.className).toBe('PreTrainedTokenizer');
    expect(tok.bos).toBe(294);
    expect(tok.eos).toBe(296);
  });

  it('rejects a file that is not a tokenizers file', async () => {
    await expect(createHubTokenizer({ version: '1.0' }, {})).rejects.toThrow(/field "model" is missing/);
  });
});
