// Weights holding NaN or an infinity are refused by every path that loads a model (no GPU here): a Hub repo
// or local folder (single file, bf16, sharded), a PEFT adapter folder, and the arithmetic model folder that
// `npm run star -- eval --model DIR` reads. Each error names the file, the tensor and the first bad position.
// The engine's own loadWeights is tested with a GPU in tests/train/divergence.test.ts.
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readModelDir } from '../../src/cli/model_dir';
import { main } from '../../src/cli/star';
import { toHfConfig } from '../../src/hub/hf_config';
import { loadHubModel } from '../../src/hub/load';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, exportPeft, importPeft } from '../../src/hub/peft';
import {
  checkFiniteTensors, describeNonFinite, f32ToBf16, finiteTensorF32, parseSafetensors, tensorToF32, writeSafetensors, writeSafetensorsTyped,
} from '../../src/hub/safetensors';
import { presetConfig } from '../../src/model/config';
import { DEFAULT_LORA, initLora } from '../../src/model/lora';
import { initParams, layoutParams } from '../../src/model/params';
import { arithmeticTokenizer as tok } from '../../src/star/tasks/char_tokenizer';
import { FIXTURES } from './fixture_fetch';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'star-nonfinite-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fixture model's files by name, with `edit` applied to the parsed tensors of one weight file. */
function fixtureWith(name: string, weightFile: string, edit: (tensors: Map<string, Float32Array>) => void, dtype: 'F32' | 'BF16' = 'F32') {
  const dir = join(FIXTURES, name);
  const files = new Map<string, Uint8Array>(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
  const f = parseSafetensors(files.get(weightFile)!);
  const tensors = new Map(Object.values(f.header).map((t) => [t.name, tensorToF32(f, t.name)]));
  edit(tensors);
  const shapes = new Map(Object.values(f.header).map((t) => [t.name, t.shape]));
  files.set(weightFile, writeSafetensorsTyped([...tensors].map(([n, data]) => ({
    name: n, shape: shapes.get(n)!, dtype, data: dtype === 'F32' ? data : f32ToBf16(data),
  }))));
  return files;
}

/** A ModelSource serving these files (what a folder or picked files become). */
const source = (files: Map<string, Uint8Array>) => ({ label: 'broken-model', read: async (f: string) => files.get(f) });

describe('describeNonFinite', () => {
  it('counts the bad values and gives the first one with its position in the shape', () => {
    const x = new Float32Array(6);
    expect(describeNonFinite('w', x, [2, 3])).toBeNull();
    x[4] = -Infinity;
    x[5] = NaN;
    expect(describeNonFinite('w', x, [2, 3])).toBe('tensor "w" holds 2 non-finite values (the first, -Infinity, at [1, 1], flat index 4 of 6)');
    expect(describeNonFinite('b', Float32Array.of(0, NaN), [2])).toBe('tensor "b" holds 1 non-finite value (the first, NaN, at [1], flat index 1 of 2)');
  });

  it('finiteTensorF32 refuses what tensorToF32 decodes as is; checkFiniteTensors checks every tensor', () => {
    const bytes = writeSafetensors([{ name: 'ok', data: Float32Array.of(1, 2), shape: [2] }, { name: 'bad', data: Float32Array.of(1, Infinity), shape: [1, 2] }]);
    const f = parseSafetensors(bytes, 'w.safetensors');
    expect(tensorToF32(f, 'bad')[1]).toBe(Infinity); // the codec itself keeps every value
    expect(finiteTensorF32(f, 'ok')).toEqual(Float32Array.of(1, 2));
    expect(() => finiteTensorF32(f, 'bad')).toThrow(/^w\.safetensors: tensor "bad" holds 1 non-finite value \(the first, Infinity, at \[0, 1\].*earlier checkpoint/);
    expect(() => checkFiniteTensors(f)).toThrow(/tensor "bad"/);
  });
});

describe('loading a model with NaN or Inf weights is refused, naming the tensor', () => {
  it('a Hub-format folder with a NaN in one f32 matrix', async () => {
    const files = fixtureWith('tiny-llama-f32', 'model.safetensors', (t) => {
      t.get('model.layers.1.mlp.up_proj.weight')![3 * 32 + 5] = NaN;
    });
    await expect(loadHubModel(source(files))).rejects.toThrow(
      /broken-model\/model\.safetensors: tensor "model\.layers\.1\.mlp\.up_proj\.weight" holds 1 non-finite value \(the first, NaN, at \[3, 5\], flat index 101 of 1536\)/,
    );
  });

  it('a bf16 checkpoint with an infinity in a norm weight', async () => {
    const files = fixtureWith('tiny-llama-bf16', 'model.safetensors', (t) => {
      t.get('model.norm.weight')![7] = -Infinity;
    }, 'BF16');
    await expect(loadHubModel(source(files))).rejects.toThrow(/tensor "model\.norm\.weight" holds 1 non-finite value \(the first, -Infinity, at \[7\]/);
  });

  it('a sharded checkpoint names the shard holding the bad tensor', async () => {
    const files = fixtureWith('tiny-qwen2-sharded', 'model-00002-of-00002.safetensors', (t) => {
      t.get('model.layers.1.self_attn.k_proj.bias')!.fill(NaN);
    });
    await expect(loadHubModel(source(files))).rejects.toThrow(
      /model-00002-of-00002\.safetensors: tensor "model\.layers\.1\.self_attn\.k_proj\.bias" holds 16 non-finite values \(the first, NaN, at \[0\]/,
    );
  });

  it('a PEFT adapter folder', () => {
    const cfg = presetConfig('micro');
    const adapters = initLora(cfg, DEFAULT_LORA, 1);
    const files = exportPeft(cfg, DEFAULT_LORA, adapters, { baseModel: 'base' });
    expect(() => importPeft(cfg, { config: new TextDecoder().decode(files.get(ADAPTER_CONFIG)!), weights: files.get(ADAPTER_WEIGHTS)! })).not.toThrow();
    const name = [...adapters.keys()].find((n) => n.includes('lora_A'))!;
    adapters.get(name)![2] = Infinity;
    const bad = exportPeft(cfg, DEFAULT_LORA, adapters, { baseModel: 'base' });
    expect(() => importPeft(cfg, { config: new TextDecoder().decode(bad.get(ADAPTER_CONFIG)!), weights: bad.get(ADAPTER_WEIGHTS)! }))
      .toThrow(new RegExp(`adapter_model\\.safetensors: tensor "${name.replace(/\./g, '\\.')}" holds 1 non-finite value \\(the first, Infinity`));
  });

  it('an arithmetic model folder: readModelDir refuses it, and `eval --model DIR` exits 2 naming the tensor', async () => {
    const cfg = presetConfig('micro');
    const weights = initParams(cfg, 3);
    const dir = join(root, 'nan-model');
    // The folder the CLI writes at the end of a run: a Hugging Face config naming our tokenizer, and the weights.
    const write = async () => {
      await mkdir(dir, { recursive: true });
      const config = { ...toHfConfig(cfg, { bosId: tok.bos, eosId: tok.eos }), pad_token_id: tok.pad, star_tokenizer: 'arithmetic-char' };
      await writeFile(join(dir, 'config.json'), JSON.stringify(config));
      await writeFile(join(dir, 'model.safetensors'), writeSafetensors(layoutParams(cfg).entries.map((e) => ({ name: e.name, data: weights.get(e.name)!, shape: e.shape }))));
    };
    await write();
    await expect(readModelDir(dir)).resolves.toMatchObject({ tokenizer: 'arithmetic-char' });
    weights.get('model.layers.0.self_attn.q_proj.weight')![17] = NaN;
    await write();
    await expect(readModelDir(dir)).rejects.toThrow(/nan-model\/model\.safetensors: tensor "model\.layers\.0\.self_attn\.q_proj\.weight" holds 1 non-finite value \(the first, NaN, at \[1, 1\]/);

    const problems = join(root, 'problems.jsonl');
    await writeFile(problems, '{"a": 12, "b": 34}\n');
    let stderr = '';
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(await main(['eval', '--model', dir, '--file', problems])).toBe(2);
    } finally {
      err.mockRestore();
      out.mockRestore();
    }
    expect(stderr).toMatch(/q_proj\.weight" holds 1 non-finite value/);
  });
});
