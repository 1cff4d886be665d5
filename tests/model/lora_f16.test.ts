// LoRA on a frozen base stored in f16 (packed halves, f32 arithmetic): logits, loss and every adapter gradient
// against the float64 twin run on the f16-rounded base, in both kernel profiles, whole and split into
// vocabulary chunks; close to (but not the same as) the f32-base run; the memory report at 2 bytes per base
// matrix element, counting what the trainer allocates; KV-cache generation against full recomputation; the
// engine's load / save / readParams; and the refusals (f16 without LoRA).
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/device';
import { createGenerator } from '../../src/generate/generate';
import { writeSafetensors } from '../../src/hub/safetensors';
import { memoryReport } from '../../src/model/activations';
import { type ModelConfig, presetConfig } from '../../src/model/config';
import { DEFAULT_LORA, LORA_TARGETS, type LoraConfig } from '../../src/model/lora';
import { asStored, downloadParams, layoutParams } from '../../src/model/params';
import { modelForwardBackward } from '../../src/reference/model';
import { createGpuEngine } from '../../src/star/gpu_engine';
import { arithmeticTokenizer } from '../../src/star/tasks/char_tokenizer';
import { DEFAULT_OPTIM } from '../../src/train/config';
import { createTrainer } from '../../src/train/trainer';
import { gpuWith, KERNEL_PROFILES, testGpu, withBindingLimit } from '../helpers/gpu';
import { randomAdapters, randomBatch, refBatch, sharpBase } from '../helpers/lora_inputs';
import { assertClose, FWD, GRAD } from '../helpers/numeric';

const ALL: LoraConfig = { rank: 4, alpha: 8, targets: [...LORA_TARGETS], dropout: 0 };
const Q_V_DOWN: LoraConfig = { rank: 3, alpha: 5, targets: ['down', 'q', 'v'], dropout: 0 };
/** 4 KiB: a 301 x 8 f16 embedding (4.7 KiB) splits into chunks of 151 and 150 rows; logits into blocks of 3 rows. */
const LIMIT = 4096;
const SMALL = { vocab: 301, dModel: 8, nHeads: 2, nKvHeads: 1, dFF: 16 };
const Q_WEIGHT = 'model.layers.0.self_attn.q_proj.weight';


/** ||a - b|| / ||b||, in float64. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let [num, den] = [0, 0];
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

function bitEqual(a: Float32Array, b: Float32Array, label: string): void {
  expect(a.length, label).toBe(b.length);
  const bad = a.findIndex((v, i) => !Object.is(v, b[i]));
  expect(bad, `${label}: first difference at [${bad}]: ${a[bad]} vs ${b[bad]}`).toBe(-1);
}

const cases: { name: string; cfg: ModelConfig; lora: LoraConfig; B: number; T: number; start?: number[]; limit?: number }[] = [
  { name: 'micro, GQA, tied, every target', cfg: presetConfig('micro'), lora: ALL, B: 2, T: 7, start: [0, 2] },
  { name: 'micro, untied, qkv bias, MHA, q v down', cfg: presetConfig('micro', { tieEmbeddings: false, qkvBias: true, nKvHeads: 2, vocab: 37 }), lora: Q_V_DOWN, B: 1, T: 5 },
  { name: 'split under a 4 KiB binding limit, tied, every target', cfg: presetConfig('micro', SMALL), lora: ALL, B: 2, T: 7, start: [0, 2], limit: LIMIT },
  { name: 'split under a 4 KiB binding limit, untied, qkv bias', cfg: presetConfig('micro', { ...SMALL, tieEmbeddings: false, qkvBias: true, nKvHeads: 2 }), lora: Q_V_DOWN, B: 1, T: 8, limit: LIMIT },
];

describe('LoRA on an f16 base vs the CPU reference on the f16-rounded base', () => {
  for (const c of cases) {
    for (const kernels of KERNEL_PROFILES) {
      it(`${c.name}, ${kernels} kernels: logits, loss and every adapter gradient match; close to the f32 base`, async () => {
        const plain = await gpuWith(kernels);
        const gpu = c.limit ? withBindingLimit(plain, c.limit) : plain;
        const base = sharpBase(c.cfg, 1);
        const adapters = randomAdapters(c.cfg, c.lora, 2);
        const batch = randomBatch(c.cfg, c.B, c.T, 7, c.start, true);
        const make = (baseDtype?: 'f32') => {
          const t = createTrainer(gpu, c.cfg, { B: c.B, T: c.T }, DEFAULT_OPTIM, { lora: c.lora, baseDtype });
          t.loadParams(base);
          t.loadAdapters(adapters);
          t.setBatch(batch);
          return t;
        };
        const trainer = make(); // f16, the default under LoRA
        expect(trainer.params.dtype(Q_WEIGHT)).toBe('f16');
        expect(trainer.params.dtype('model.layers.0.input_layernorm.weight')).toBe('f32');
        const embed = trainer.params.chunks('model.embed_tokens.weight');
        expect(embed.map((k) => [k.rows, k.dtype])).toEqual(c.limit ? [[151, 'f16'], [150, 'f16']] : [[c.cfg.vocab, 'f16']]);
        if (c.limit) for (const v of [...trainer.params.segments, ...trainer.acts.logits]) expect(v.size).toBeLessThanOrEqual(c.limit);

        const stored = asStored(trainer.params.layout, base);
        const back = await trainer.readParams();
        for (const [name, t] of stored) bitEqual(back.get(name)!, t, `stored ${name}`);
        expect(back.get(Q_WEIGHT)).not.toEqual(base.get(Q_WEIGHT)); // it really is rounded
        const ref = modelForwardBackward(c.cfg, stored, refBatch(batch, c.B, c.T), { config: c.lora, adapters });

        trainer.forward();
        const logits = await trainer.readLogits();
        const loss = await trainer.readLoss();
        assertClose(logits, ref.logits, FWD, 'logits');
        assertClose([loss], [ref.loss], FWD, 'loss');
        trainer.trainStep(10);
        const grads = await downloadParams(gpu, trainer.grads);
        expect([...grads.keys()].sort()).toEqual([...ref.loraGrads.keys()].sort());
        for (const [name, g] of ref.loraGrads) assertClose(grads.get(name)!, g, GRAD, `grad ${name}`);

        // The f32 base: another model (the f16 one is not secretly f32), but a close one.
        const full = make('f32');
        full.forward();
        const logits32 = await full.readLogits();
        const d = relDiff(logits, logits32);
        expect(d, 'relative logits difference f16 vs f32 base').toBeGreaterThan(0);
        expect(d, 'relative logits difference f16 vs f32 base').toBeLessThan(1e-2);
        expect(Math.abs(loss - (await full.readLoss())) / loss).toBeLessThan(1e-3);
        full.trainStep(10);
        const grads32 = await downloadParams(gpu, full.grads);
        for (const [name, g] of grads32) expect(relDiff(grads.get(name)!, g), `grad ${name} f16 vs f32 base`).toBeLessThan(2e-2);
        trainer.destroy();
        full.destroy();
      });
    }
  }
});

describe('the memory of an f16 base', () => {
  it('counts the base at 2 bytes per matrix element, exactly what the trainer allocates', async () => {
    const gpu = await testGpu();
    const cfg = presetConfig('micro');
    const report = memoryReport(cfg, { B: 3, T: 9, lora: ALL }); // f16: the default under LoRA
    const before = gpu.stats.bytesCreated;
    const trainer = createTrainer(gpu, cfg, { B: 3, T: 9 }, DEFAULT_OPTIM, { lora: ALL });
    const allocated = gpu.stats.bytesCreated - before;
    expect(report.baseDtype).toBe('f16');
    expect(trainer.params.segments.reduce((a, s) => a + s.size, 0)).toBe(report.frozenParams);
    expect(report.total).toBeLessThanOrEqual(allocated);
    expect(allocated - report.total).toBeLessThan(0.1 * allocated);
    trainer.destroy();
  });

  it('halves the base of SmolLM2-135M and leaves every other category as it was', () => {
    const smol = presetConfig('micro', { vocab: 49152, dModel: 576, nLayers: 30, nHeads: 9, nKvHeads: 3, dFF: 1536, maxSeq: 1024 });
    const shape = { B: 4, T: 256, lora: DEFAULT_LORA, maxBindingBytes: 128 << 20 };
    const f16 = memoryReport(smol, shape);
    const f32 = memoryReport(smol, { ...shape, baseDtype: 'f32' });
    const layout = layoutParams(smol, shape.maxBindingBytes, 'f16');
    const matrices = layout.entries.filter((e) => e.decay).reduce((a, e) => a + e.size, 0);
    const vectors = layout.count - matrices;
    const parts = layout.entries.reduce((a, e) => a + e.parts.length, 0);
    expect(f16.frozenParams).toBeGreaterThanOrEqual(2 * matrices + 4 * vectors);
    expect(f16.frozenParams).toBeLessThan(2 * matrices + 4 * vectors + 256 * parts); // alignment padding only
    expect(f32.frozenParams).toBeGreaterThanOrEqual(4 * layout.count);
    expect(f16.frozenParams / f32.frozenParams).toBeGreaterThan(0.5);
    expect(f16.frozenParams / f32.frozenParams).toBeLessThan(0.502);
    for (const k of ['trainableParams', 'grads', 'optimizer', 'activations', 'kvCache'] as const) expect(f16[k], k).toBe(f32[k]);
    expect(f32.total - f16.total).toBe(f32.frozenParams - f16.frozenParams);
  });

  it('refuses an f16 base without LoRA (full fine-tuning trains every weight in f32), before any GPU work', async () => {
    const gpu = await testGpu();
    const cfg = presetConfig('micro');
    const count = gpu.stats.buffersCreated;
    const msg = /baseDtype f16 keeps a frozen base in half precision, but full fine-tuning trains every weight in f32/;
    expect(() => memoryReport(cfg, { B: 1, T: 4, baseDtype: 'f16' })).toThrow(msg);
    expect(() => createTrainer(gpu, cfg, { B: 1, T: 4 }, DEFAULT_OPTIM, { baseDtype: 'f16' })).toThrow(msg);
    expect(() => createGpuEngine(gpu, cfg, arithmeticTokenizer, { trainBatch: 1, genBatch: 1, baseDtype: 'f16' })).toThrow(msg);
    expect(gpu.stats.buffersCreated).toBe(count);
    const shared = createTrainer(gpu, cfg, { B: 1, T: 4 }, DEFAULT_OPTIM, { lora: DEFAULT_LORA });
    // A weight that f16 cannot hold is refused before anything is uploaded.
    const base = sharpBase(cfg, 5);
    shared.loadParams(base);
    const huge = new Map(base);
    huge.set('model.layers.1.mlp.up_proj.weight', Float32Array.from(base.get('model.layers.1.mlp.up_proj.weight')!, (v, i) => (i === 7 ? 7e4 : v)));
    huge.set('model.embed_tokens.weight', new Float32Array(base.get('model.embed_tokens.weight')!.length).fill(1));
    expect(() => shared.loadParams(huge)).toThrow(/model\.layers\.1\.mlp\.up_proj\.weight holds 70000 at \[7\], beyond the range of the f16 base store \(largest 65504\); load this model with baseDtype f32/);
    const kept = await shared.readParams();
    for (const [name, t] of asStored(shared.params.layout, base)) bitEqual(kept.get(name)!, t, `after the refusal: ${name}`);
    expect(() => createTrainer(gpu, cfg, { B: 1, T: 8 }, DEFAULT_OPTIM, { shared: shared.params, baseDtype: 'f32' })).toThrow(/baseDtype f32 differs from the shared weights, which store their matrices in f16/);
    shared.destroy();
  });
});

describe('generation on an f16 base', () => {
  const configs: [string, ModelConfig, number?][] = [
    ['whole', presetConfig('micro', { vocab: 20 })],
    ['embedding and head in f16 vocabulary chunks', presetConfig('micro', { ...SMALL, tieEmbeddings: false, qkvBias: true }), LIMIT],
  ];
  for (const [name, cfg, limit] of configs) {
    it(`${name}: KV-cache prefill and decode give the full recomputation's logits and its argmax tokens`, async () => {
      const plain = await testGpu();
      const gpu: Gpu = limit ? withBindingLimit(plain, limit) : plain;
      const T = 16;
      const trainer = createTrainer(gpu, cfg, { B: 1, T }, DEFAULT_OPTIM, { lora: ALL });
      expect(trainer.params.chunks('model.embed_tokens.weight').length).toBe(limit ? 2 : 1);
      trainer.loadParams(sharpBase(cfg, 21, 12));
      trainer.loadAdapters(randomAdapters(cfg, ALL, 22));
      const gen = createGenerator(gpu, cfg, trainer.params, { B: 2, S: 32 });
      const prompt = [1, 5, 9, 3, cfg.vocab - 1];
      const steps: Float32Array[] = [];
      const [g] = await gen.generate([prompt], { maxNewTokens: 8, eosId: 999, padId: 0, debugLogits: (_, l) => steps.push(l.slice(0, cfg.vocab)) });
      expect(g.tokens).toHaveLength(8);
      const tokens = new Uint32Array(T);
      tokens.set([...prompt, ...g.tokens].slice(0, T));
      trainer.setBatch({ tokens, targets: new Uint32Array(T), mask: new Float32Array(T) });
      trainer.forward();
      const full = await trainer.readLogits();
      for (let i = 0; i < 8; i++) {
        const row = full.subarray((prompt.length - 1 + i) * cfg.vocab, (prompt.length + i) * cfg.vocab);
        assertClose(steps[i], row, FWD, `decode step ${i}`);
        expect(g.tokens[i], `token ${i}`).toBe(row.indexOf(Math.max(...row)));
      }
      trainer.destroy();
    });
  }
});

describe('the engine with an f16 base', () => {
  const cfg = presetConfig('micro');
  const base = sharpBase(cfg, 31, 5);
  const baseFile = () => writeSafetensors(layoutParams(cfg).entries.map((e) => ({ name: e.name, data: base.get(e.name)!, shape: e.shape })));
  const examples = [{ prompt: '12+3', target: '15' }, { prompt: '4+4', target: '8' }, { prompt: '7+9', target: '16' }];
  const gen = { temperature: 0, maxNewTokens: 6, stop: [], seed: 0 };

  it('loads the base rounded to f16, keeps it through fine-tunes, saves and loads adapters, and reads f32 tensors back', async () => {
    const gpu = await testGpu();
    const lora: LoraConfig = { ...DEFAULT_LORA, targets: ['q', 'v', 'down'] };
    const engine = createGpuEngine(gpu, cfg, arithmeticTokenizer, { trainBatch: 2, genBatch: 2, lora, optim: { ...DEFAULT_OPTIM, lr: 3e-2, warmupSteps: 1 } });
    expect(engine.baseDtype).toBe('f16');
    expect(engine.params.segments.reduce((a, s) => a + s.size, 0)).toBe(memoryReport(cfg, { B: 1, T: 1, lora, maxBindingBytes: gpu.limits.maxStorageBufferBindingSize }).frozenParams);
    await engine.loadWeights(baseFile());
    const stored = asStored(engine.params.layout, base);
    const read = await engine.readParams();
    expect([...read.keys()].sort()).toEqual([...base.keys()].sort());
    for (const [name, t] of stored) bitEqual(read.get(name)!, t, name);

    const prompts = ['1+1', '23+4'];
    const before = (await engine.generate(prompts, gen)).map((o) => o.text);
    const first = await engine.finetune(examples, { steps: 6, seed: 3 });
    expect(first.losses.every(Number.isFinite)).toBe(true);
    expect(first.losses.at(-1)!).toBeLessThan(first.losses[0]);
    const trained = await engine.saveWeights();
    for (const [name, t] of await engine.readParams()) bitEqual(t, stored.get(name)!, `after fine-tuning: ${name}`);
    const texts = (await engine.generate(prompts, gen)).map((o) => o.text);
    await engine.loadWeights(baseFile()); // fresh adapters: the base model again
    expect((await engine.generate(prompts, gen)).map((o) => o.text)).toEqual(before);
    await engine.loadWeights(trained);
    expect((await engine.generate(prompts, gen)).map((o) => o.text)).toEqual(texts);

    const f32 = createGpuEngine(gpu, cfg, arithmeticTokenizer, { trainBatch: 2, genBatch: 2, lora, baseDtype: 'f32' });
    await f32.loadWeights(baseFile());
    for (const [name, t] of await f32.readParams()) bitEqual(t, base.get(name)!, `f32 base: ${name}`);
  });
});
