// config.json files: a Hub model's (read by loadHubModel through fromHfConfig), a PEFT adapter's
// (adapter_config.json), and the arithmetic model folder's (readModelDir, for `npm run star -- eval`). Valid
// files with bytes mutated, a field replaced by any JSON value (nested deeper than any stack, 1e308, "__proto__"),
// and random JSON give a config the engine can lay out, or an Error naming the file: never a crash of another
// kind, and never a config whose parameter layout takes seconds or cannot be allocated.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelDir, TOKENIZERS } from '../../src/cli/model_dir';
import { toHfConfig } from '../../src/hub/hf_config';
import { estimateMemory, loadHubModel } from '../../src/hub/load';
import { parsePeftConfig, peftConfig } from '../../src/hub/peft';
import { writeSafetensors } from '../../src/hub/safetensors';
import { presetConfig } from '../../src/model/config';
import { DEFAULT_LORA } from '../../src/model/lora';
import { initParams, layoutParams } from '../../src/model/params';
import { arithmeticTokenizer as tok } from '../../src/star/tasks/char_tokenizer';
import { FIXTURES } from '../hub/fixture_fetch';
import { deepJson, mutatedText, parsesOrRefuses, parsesOrRefusesAsync, PROPS, withFieldReplaced } from './props';

const qwenConfig = JSON.parse(readFileSync(join(FIXTURES, 'tiny-qwen2-sharded', 'config.json'), 'utf8')) as Record<string, unknown>;
const enc = new TextEncoder();

/** loadHubModel on a source holding only this config.json: it gets as far as the tokenizer, or refuses the config. */
async function loadConfig(text: string): Promise<void> {
  let seen: ReturnType<typeof estimateMemory> | undefined;
  const source = { label: 'm', read: async (f: string) => (f === 'config.json' ? enc.encode(text) : undefined) };
  const t0 = performance.now();
  await parsesOrRefusesAsync(
    () => loadHubModel(source, { maxBindingBytes: 1 << 27, onProgress: (e) => e.kind === 'config' && (seen = e.memory) }),
    /^m(\/config\.json)?: |^m\/config\.json is not/,
  );
  expect(performance.now() - t0).toBeLessThan(2000);
  if (seen) expect(Number.isSafeInteger(seen.params)).toBe(true);
}

describe('a Hub model config.json (property-based)', () => {
  it('a field replaced by any JSON value', async () => {
    await fc.assert(fc.asyncProperty(withFieldReplaced(qwenConfig), loadConfig), PROPS);
  });

  it('a mutated file, and any JSON', async () => {
    await fc.assert(fc.asyncProperty(mutatedText(fc.constant(JSON.stringify(qwenConfig))), loadConfig), PROPS);
    await fc.assert(fc.asyncProperty(fc.json(), loadConfig), PROPS);
  });

  it('sizes no device could hold are refused by name, before the parameters are laid out', async () => {
    for (const [field, value, message] of [
      ['vocab_size', 2 ** 53, /field "vocab_size" is 9007199254740992, more than this engine supports/],
      ['vocab_size', 1e12, /field "vocab_size" is 1000000000000/],
      ['num_hidden_layers', 1e7, /field "num_hidden_layers" is 10000000/],
    ] as const) {
      await expect(loadHubModel({ label: 'm', read: async () => enc.encode(JSON.stringify({ ...qwenConfig, [field]: value })) }, { maxBindingBytes: 1 << 27 }))
        .rejects.toThrow(message);
    }
    const big = { ...qwenConfig, vocab_size: 2 ** 24, hidden_size: 2 ** 14, intermediate_size: 2 ** 18, num_hidden_layers: 1024 };
    await expect(loadHubModel({ label: 'm', read: async () => enc.encode(JSON.stringify(big)) })).rejects.toThrow(/m\/config\.json: a model of .*B parameters is beyond what this engine can hold/);
    await expect(loadHubModel({ label: 'm', read: async () => enc.encode('null') })).rejects.toThrow('m/config.json is not a JSON object.');
  });
});

describe('a PEFT adapter_config.json (property-based)', () => {
  const cfg = presetConfig('micro');
  const valid = peftConfig(DEFAULT_LORA, 'base') as Record<string, unknown>;
  const parse = (text: string) => {
    const lora = parsesOrRefuses(() => parsePeftConfig(cfg, text), /^adapter_config\.json: /);
    if (lora) expect(Number.isInteger(lora.rank) && lora.rank > 0 && lora.targets.length > 0).toBe(true);
  };

  it('a field replaced, a mutated file, any JSON', () => {
    fc.assert(fc.property(withFieldReplaced(valid), parse), PROPS);
    fc.assert(fc.property(mutatedText(fc.constant(JSON.stringify(valid))), parse), PROPS);
    fc.assert(fc.property(fc.json(), parse), PROPS);
    const deepBias = JSON.stringify({ ...valid, bias: 0 }).replace('"bias":0', `"bias":${deepJson(50_000)}`);
    expect(() => parsePeftConfig(cfg, deepBias)).toThrow(/^adapter_config\.json: bias \[\[\[/);
  });
});

describe('the arithmetic model folder config.json (property-based)', () => {
  let dir: string;
  const cfg = presetConfig('micro');
  const valid = { ...toHfConfig(cfg, { bosId: tok.bos, eosId: tok.eos }), pad_token_id: tok.pad, star_tokenizer: 'arithmetic-char' };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'star-props-config-'));
    const weights = initParams(cfg, 1);
    await writeFile(join(dir, 'model.safetensors'), writeSafetensors(layoutParams(cfg).entries.map((e) => ({ name: e.name, data: weights.get(e.name)!, shape: e.shape }))));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const read = async (text: string) => {
    await writeFile(join(dir, 'config.json'), text);
    const m = await parsesOrRefusesAsync(() => readModelDir(dir), /config\.json|model\.safetensors/);
    if (m) expect(Object.hasOwn(TOKENIZERS, m.tokenizer)).toBe(true);
  };

  it('a field replaced by any JSON value, and a mutated file', async () => {
    await fc.assert(fc.asyncProperty(withFieldReplaced(valid), read), { ...PROPS, numRuns: Math.ceil((PROPS.numRuns ?? 100) / 3) });
    await fc.assert(fc.asyncProperty(mutatedText(fc.constant(JSON.stringify(valid))), read), { ...PROPS, numRuns: Math.ceil((PROPS.numRuns ?? 100) / 3) });
  });

  it('a star_tokenizer that names an Object property, or nests deep, is refused', async () => {
    for (const name of ['"toString"', '"__proto__"', '"constructor"', deepJson(50_000)]) {
      await writeFile(join(dir, 'config.json'), JSON.stringify(valid).replace('"arithmetic-char"', name));
      await expect(readModelDir(dir)).rejects.toThrow(/"star_tokenizer" is .{1,80}; known: arithmetic-char/);
    }
  });
});
