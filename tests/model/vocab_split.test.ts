// A model whose embedding, LM head and logits exceed the device's binding limit (claimed small with
// withBindingLimit): the embedding and LM head live in uneven vocabulary row chunks, the logits in row
// blocks, and logits, loss, every gradient, AdamW steps and the memory report must be those of the
// unsplit model and of the CPU reference.
import { describe, expect, it } from 'vitest';
import type { View } from '../../src/gpu/buffers';
import type { Gpu } from '../../src/gpu/device';
import { activationSizes, memoryReport } from '../../src/model/activations';
import { type ModelConfig, presetConfig } from '../../src/model/config';
import { initLora, type LoraConfig } from '../../src/model/lora';
import { downloadParams, initParams, layoutParams, type ParamTensors } from '../../src/model/params';
import { lossWeights } from '../../src/ops/cross_entropy';
import { modelForwardBackward } from '../../src/reference/model';
import { DEFAULT_OPTIM, type OptimConfig } from '../../src/train/config';
import { type Batch, createTrainer } from '../../src/train/trainer';
import { randn, rng } from '../../src/util/random';
import { gpuWith, KERNEL_PROFILES, withBindingLimit } from '../helpers/gpu';
import { assertClose, FWD, GRAD } from '../helpers/numeric';

/** 4 KiB: the embedding (301 x 8 f32 = 9.4 KiB) splits into chunks of 101, 101 and 99 rows; one logits row is 1204 bytes. */
const LIMIT = 4096;
const SMALL = { vocab: 301, dModel: 8, nHeads: 2, nKvHeads: 1, dFF: 16 };

const cases: { name: string; cfg: ModelConfig; B: number; T: number; start?: number[]; blocks: number[] }[] = [
  { name: 'tied, GQA, left padding', cfg: presetConfig('micro', SMALL), B: 2, T: 7, start: [0, 2], blocks: [3, 3, 3, 3, 2] },
  { name: 'untied, qkv bias, MHA', cfg: presetConfig('micro', { ...SMALL, tieEmbeddings: false, qkvBias: true, nKvHeads: 2 }), B: 1, T: 8, blocks: [3, 3, 2] },
];

function randomBatch(cfg: ModelConfig, B: number, T: number, seed: number, start?: number[]): Batch {
  const r = rng(seed);
  const tokens = Uint32Array.from({ length: B * T }, () => Math.floor(r() * cfg.vocab));
  tokens[0] = 0; // the first and last rows of the vocabulary, and both sides of the chunk borders
  tokens[1] = cfg.vocab - 1;
  tokens[2] = 100;
  tokens[3] = 101;
  const targets = Uint32Array.from({ length: B * T }, () => Math.floor(r() * cfg.vocab));
  targets[0] = 201;
  targets[1] = 202;
  const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T >= (start?.[Math.floor(i / T)] ?? 0) && r() < 0.8 ? 1 : 0));
  return { tokens, targets, mask, start: start ? Uint32Array.from(start) : undefined };
}

/** Init weights scaled up (norm weights kept), so that activations are far from zero. */
function sharp(cfg: ModelConfig, seed: number): ParamTensors {
  const p = initParams(cfg, seed);
  for (const [name, t] of p) if (!name.endsWith('layernorm.weight') && name !== 'model.norm.weight') t.forEach((v, i) => (t[i] = v * 10));
  return p;
}

const small = async (kernels: 'gpu' | 'cpu'): Promise<Gpu> => withBindingLimit(await gpuWith(kernels), LIMIT);

describe('embedding, LM head and logits split under a small binding limit', () => {
  for (const c of cases) {
    it(`${c.name}: the split is real (uneven chunks, several logits blocks, nothing over the limit)`, async () => {
      const heads = c.cfg.tieEmbeddings ? ['model.embed_tokens.weight'] : ['model.embed_tokens.weight', 'lm_head.weight'];
      for (const name of heads) expect(layoutParams(c.cfg, LIMIT).byName.get(name)!.parts.map((p) => p.rows)).toEqual([101, 101, 99]);
      const trainer = createTrainer(await small('gpu'), c.cfg, { B: c.B, T: c.T });
      expect(trainer.acts.logits.map((v) => v.size / (4 * c.cfg.vocab))).toEqual(c.blocks);
      for (const v of [...trainer.params.segments, ...trainer.grads.segments, ...trainer.acts.logits]) expect(v.size).toBeLessThanOrEqual(LIMIT);
      trainer.destroy();
    });

    for (const kernels of KERNEL_PROFILES) {
      it(`${c.name}, ${kernels} kernels: logits, loss and every gradient match the CPU reference`, async () => {
        const gpu = await small(kernels);
        const params = sharp(c.cfg, 1);
        const trainer = createTrainer(gpu, c.cfg, { B: c.B, T: c.T });
        trainer.loadParams(params);
        const batch = randomBatch(c.cfg, c.B, c.T, 7, c.start);
        trainer.setBatch(batch);
        const ref = modelForwardBackward(c.cfg, params, {
          B: c.B, T: c.T, tokens: batch.tokens, targets: batch.targets, weights: lossWeights(batch.mask), start: batch.start ?? new Uint32Array(c.B),
        });
        trainer.forward();
        assertClose(await trainer.readLogits(), ref.logits, FWD, 'logits');
        assertClose([await trainer.readLoss()], [ref.loss], FWD, 'loss');
        trainer.trainStep(10);
        const grads = await downloadParams(gpu, trainer.grads);
        expect(grads.size).toBe(ref.grads.size);
        for (const [name, g] of ref.grads) assertClose(grads.get(name)!, g, GRAD, `grad ${name}`);
        trainer.destroy();
      });
    }
  }

  for (const kernels of KERNEL_PROFILES) {
    it(`ten AdamW steps give the unsplit model's losses and weights, ${kernels} kernels`, async () => {
      const c = cases[1];
      const optim: OptimConfig = { ...DEFAULT_OPTIM, lr: 1e-2, warmupSteps: 3, maxGradNorm: 0.5 };
      const batch = randomBatch(c.cfg, c.B, c.T, 3, c.start);
      const train = async (gpu: Gpu) => {
        const t = createTrainer(gpu, c.cfg, { B: c.B, T: c.T }, optim);
        t.loadParams(sharp(c.cfg, 2));
        t.setBatch(batch);
        const losses: number[] = [];
        for (let i = 0; i < 10; i++) {
          t.trainStep(10);
          losses.push(await t.readLoss());
        }
        const params = await t.readParams();
        t.destroy();
        return { losses, params };
      };
      const whole = await train(await gpuWith(kernels));
      const split = await train(await small(kernels));
      assertClose(split.losses, whole.losses, { atol: 1e-6, rtol: 1e-5 }, 'losses');
      expect(whole.losses[9]).toBeLessThan(whole.losses[0]); // the steps do train
      for (const [name, p] of whole.params) assertClose(split.params.get(name)!, p, FWD, `after 10 steps: ${name}`);
    });
  }

  it('LoRA on a split base: the loss and every adapter gradient of the unsplit model', async () => {
    const c = cases[1];
    const lora: LoraConfig = { rank: 2, alpha: 4, targets: ['q', 'v', 'down'], dropout: 0 };
    const adapters = initLora(c.cfg, lora, 5);
    for (const [name, t] of adapters) if (name.includes('lora_B')) t.set(randn(t.length, rng(t.length)));
    const batch = randomBatch(c.cfg, c.B, c.T, 9, c.start);
    const step = async (gpu: Gpu) => {
      const t = createTrainer(gpu, c.cfg, { B: c.B, T: c.T }, DEFAULT_OPTIM, { lora });
      t.loadParams(sharp(c.cfg, 4));
      t.loadAdapters(adapters);
      t.setBatch(batch);
      t.trainStep(10);
      const out = { loss: await t.readLoss(), grads: await downloadParams(gpu, t.grads) };
      t.destroy();
      return out;
    };
    const whole = await step(await gpuWith('gpu'));
    const split = await step(await small('gpu'));
    assertClose([split.loss], [whole.loss], FWD, 'loss');
    for (const [name, g] of whole.grads) assertClose(split.grads.get(name)!, g, GRAD, `grad ${name}`);
  });

  it('the memory report counts exactly what the trainer allocates, by category', async () => {
    const gpu = await small('gpu');
    const c = cases[0];
    const report = memoryReport(c.cfg, { B: c.B, T: c.T, maxBindingBytes: LIMIT });
    const before = gpu.stats.bytesCreated;
    const trainer = createTrainer(gpu, c.cfg, { B: c.B, T: c.T });
    const allocated = gpu.stats.bytesCreated - before;
    const bytes = (views: View[]) => views.reduce((a, v) => a + v.size, 0);
    const actViews: View[] = [];
    const visit = (x: unknown): void => {
      if (Array.isArray(x)) x.forEach(visit);
      else if (x && typeof x === 'object' && 'buffer' in x) actViews.push(x as View);
      else if (x && typeof x === 'object') Object.values(x).forEach(visit);
    };
    visit(trainer.acts);
    expect(report.params).toBe(bytes(trainer.params.segments));
    expect(report.grads).toBe(bytes(trainer.grads.segments));
    expect(report.optimizer).toBe(2 * report.params);
    expect(report.activations).toBe(bytes(actViews));
    expect(report.total).toBeLessThanOrEqual(allocated);
    trainer.destroy();
  });

  it('Qwen2.5-0.5B shapes at 128 MiB: logits of 4 x 1024 tokens in row blocks that each fit, summing to [BT, V]', () => {
    const qwen = presetConfig('micro', { vocab: 151936, dModel: 896, nHeads: 14, nKvHeads: 2, dFF: 4864, nLayers: 24, qkvBias: true, maxSeq: 1024 });
    const limit = 128 << 20;
    const logits = activationSizes(qwen, 4, 1024, undefined, limit).logits;
    expect(logits.reduce((a, b) => a + b, 0)).toBe(4 * 1024 * 151936);
    for (const n of logits) expect(n * 4).toBeLessThanOrEqual(limit);
    expect(logits).toHaveLength(Math.ceil(4096 / Math.floor(limit / (4 * 151936))));
    const report = memoryReport(qwen, { B: 4, T: 1024, maxBindingBytes: limit });
    expect(report.activations).toBeGreaterThan(4 * 1024 * 151936 * 4);
  });

  it('refuses a batch with another activation over the limit, naming the largest that fits', async () => {
    const gpu = await small('gpu');
    const before = gpu.stats.buffersCreated;
    // [B*T, dFF] f32 = 64 bytes a row: at most 64 rows bind in 4 KiB.
    expect(() => createTrainer(gpu, cases[0].cfg, { B: 8, T: 16 })).toThrow(/layers\.0\.gate of a batch of 8 x 16 tokens needs 8192 bytes.*batch x sequence length at most 64/);
    expect(gpu.stats.buffersCreated).toBe(before);
    createTrainer(gpu, cases[0].cfg, { B: 4, T: 16 }).destroy();
  });
});
