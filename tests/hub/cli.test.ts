// The CLI on Hub-format models: `logits` on the fixture folders (against the PyTorch reference), bad model
// folders (exit 2), and `--task csqa` with a local model folder and a JSONL file: bad input exits 2, and
// a micro run goes through every phase on the tiny model.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/star';
import { assertClose, FWD } from '../helpers/numeric';
import { FIXTURES, reference } from './fixture_fetch';
import { question } from '../helpers/csqa_questions';
import { parseSafetensors, tensorToF32 } from '../../src/hub/safetensors';
import { roundToF16 } from '../../src/util/half';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'star-hub-cli-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
  try {
    return { code: await main(args), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('npm run star -- logits', () => {
  const ref = reference();
  // One model here (each CLI call acquires its own device and compiles its pipelines); reference_logits.test.ts
  // checks the same inference path on all three.
  for (const name of ['tiny-qwen2-sharded'] as const) {
    it(`${name}: prints the tokens and the reference's top 10`, async () => {
      const r = await cli('logits', '--model', join(FIXTURES, name), '--text', ref.texts[1]);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim());
      expect(out.tokens).toEqual(ref.tokens[1]);
      const want = ref.models[name].top;
      expect(out.top.map((t: { id: number }) => t.id)).toEqual(want.map((t) => t.id));
      assertClose(out.top.map((t: { logit: number }) => t.logit), want.map((t) => t.logit), FWD, `${name} top 10`);
    });
  }

  it('bad folders exit 2 with a clear message', async () => {
    const missing = await cli('logits', '--model', join(root, 'nope'), '--text', 'hi');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/is neither a folder nor a Hub repo id/);
    const broken = join(root, 'broken');
    await cp(join(FIXTURES, 'tiny-llama-f32'), broken, { recursive: true });
    await writeFile(join(broken, 'model.safetensors'), new Uint8Array(20));
    const r = await cli('logits', '--model', broken, '--text', 'hi');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/broken\/model.safetensors: header is not valid JSON/);
    await rm(join(broken, 'config.json'));
    expect((await cli('logits', '--model', broken, '--text', 'hi')).stderr).toMatch(/config.json is missing/);
    expect((await cli('logits', '--text', 'hi')).code).toBe(2);
  });
});

describe('npm run star -- --task csqa', () => {
  const model = join(FIXTURES, 'tiny-llama-f32');
  let data: string;
  beforeAll(async () => {
    data = join(root, 'train.jsonl');
    await writeFile(data, [
      question('q1', 'Where is milk kept?', ['oven', 'fridge', 'sink', 'roof', 'car'], 'B'),
      question('q2', 'What do birds use to fly?', ['wings', 'fins', 'wheels', 'roots', 'hooves'], 'A'),
      question('q3', 'What opens a door?', ['song', 'cloud', 'key', 'spoon', 'hat'], 'C'),
      question('q4', 'Where do fish live?', ['desert', 'attic', 'oven', 'pond', 'library'], 'D'),
      question('q5', 'What do you wear on feet?', ['hats', 'belts', 'gloves', 'scarves', 'shoes'], 'E'),
      question('q6', 'What keeps rain off?', ['umbrella', 'sponge', 'fan', 'net', 'sieve'], 'A'),
    ].join('\n') + '\n');
  });

  it('bad input exits 2: malformed data (with its line), a bad model, an unknown preset', async () => {
    const bad = join(root, 'bad.jsonl');
    await writeFile(bad, `${question('q1', 'Q?', ['a', 'b'], 'A')}\n{"nope": 1}\n`);
    const r = await cli('--task', 'csqa', '--model', model, '--data', bad, '--preset', 'micro', '--out', join(root, 'x'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad.jsonl: 1 malformed line:\n\s+line 2: "question" is not an object/);
    const m = await cli('--task', 'csqa', '--model', join(root, 'nope'), '--data', data, '--preset', 'micro', '--out', join(root, 'x'));
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/neither a folder nor a Hub repo id/);
    expect((await cli('--task', 'csqa', '--model', model, '--data', data, '--preset', 'huge', '--out', join(root, 'x'))).stderr).toMatch(/Unknown preset "huge" for --task csqa/);
    expect((await cli('--task', 'chess', '--out', join(root, 'x'))).stderr).toMatch(/Known tasks: arithmetic, csqa/);
  });

  // Direct mode: the one mode that fine-tunes a random tiny model for sure (STaR keeps nothing it gets
  // wrong); generation runs in both evaluations. The loop's phases are tested with the arithmetic task.
  it('a micro direct run on the tiny model: evaluate, fine-tune through the Hub tokenizer, evaluate', async () => {
    const out = join(root, 'csqa-direct');
    const r = await cli('--task', 'csqa', '--model', model, '--data', data, '--preset', 'micro', '--mode', 'direct', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    expect(summary.task).toBe('csqa');
    expect(summary.iterations).toHaveLength(2);
    const it1 = summary.iterations[1];
    expect(it1.trainExamples).toBe(2);
    expect(it1.trainSteps).toBe(2);
    expect(it1.losses.every(Number.isFinite)).toBe(true);
    expect(Object.keys(it1.evalAccuracyByDigits).every((k: string) => /^\([a-e]\)$/.test(k))).toBe(true);
    const evaluate = JSON.parse(await readFile(join(out, 'iteration-1', 'evaluate.json'), 'utf8'));
    expect(evaluate.tokensGenerated).toBeGreaterThan(0);
  });

  it('--lora: fine-tunes adapters and writes a PEFT folder, plus the merged model with --merged', async () => {
    const out = join(root, 'csqa-lora');
    const r = await cli('--task', 'csqa', '--model', model, '--data', data, '--preset', 'micro', '--mode', 'direct', '--lora', '4', '--lora-targets', 'q,v,down', '--merged', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
    expect(run.lora).toEqual({ rank: 4, alpha: 8, targets: ['q', 'v', 'down'], dropout: 0 });
    const peft = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    expect(peft).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj', 'down_proj'], base_model_name_or_path: model });
    const adapters = parseSafetensors(new Uint8Array(await readFile(join(out, 'adapter_model.safetensors'))));
    const bNames = Object.keys(adapters.header).filter((n) => n.endsWith('lora_B.weight'));
    expect(bNames.length).toBeGreaterThan(0);
    expect(bNames.some((n) => tensorToF32(adapters, n).some((x) => x !== 0))).toBe(true); // trained
    const merged = parseSafetensors(new Uint8Array(await readFile(join(out, 'model.safetensors'))));
    expect(merged.header['model.layers.0.self_attn.q_proj.weight']).toBeDefined();
    // Merged into the base the adapters were trained against: the f16-rounded matrices (an untargeted one is
    // exactly the rounded original), f32 norms as they were.
    const base = parseSafetensors(new Uint8Array(await readFile(join(model, 'model.safetensors'))));
    const k = 'model.layers.0.self_attn.k_proj.weight';
    expect(Array.from(tensorToF32(merged, k))).toEqual(Array.from(roundToF16(tensorToF32(base, k))));
    expect(Array.from(tensorToF32(merged, k))).not.toEqual(Array.from(tensorToF32(base, k)));
    const norm = 'model.layers.0.input_layernorm.weight';
    expect(Array.from(tensorToF32(merged, norm))).toEqual(Array.from(tensorToF32(base, norm)));
    expect(JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).model_type).toBe('llama');
  });

  it('bad LoRA flags exit 2', async () => {
    const args = ['--task', 'csqa', '--model', model, '--data', data, '--preset', 'micro', '--out', join(root, 'y')];
    expect((await cli(...args, '--lora', '4', '--lora-targets', 'q,ears')).stderr).toMatch(/Unknown LoRA target "ears"/);
    expect((await cli(...args, '--merged')).stderr).toMatch(/--merged needs LoRA adapters/);
    expect((await cli(...args, '--lora', '0', '--lora-targets', 'q')).stderr).toMatch(/rank 0 \(full fine-tuning\)/);
  });
});
