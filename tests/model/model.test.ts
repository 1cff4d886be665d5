// The whole model on the GPU against its float64 CPU twin: logits, loss, every parameter gradient,
// ten AdamW steps, no allocations after the first step, and a micro model overfitting one batch.
import { describe, expect, it } from 'vitest';
import { memoryReport } from '../../src/model/activations';
import { type ModelConfig, presetConfig } from '../../src/model/config';
import { downloadParams, initParams, type ParamTensors } from '../../src/model/params';
import { lossWeights } from '../../src/ops/cross_entropy';
import { adamw as refAdamw } from '../../src/reference/adamw';
import { modelForwardBackward } from '../../src/reference/model';
import { DEFAULT_OPTIM, type OptimConfig } from '../../src/train/config';
import { lrAt } from '../../src/train/schedule';
import { type Batch, createTrainer } from '../../src/train/trainer';
import { rng, shuffle } from '../../src/util/random';
import { gpuWith, KERNEL_PROFILES, testGpu } from '../helpers/gpu';
import { assertClose, FWD, GRAD } from '../helpers/numeric';

function randomBatch(cfg: ModelConfig, B: number, T: number, seed: number, start?: number[]): Batch {
  const r = rng(seed);
  const tokens = Uint32Array.from({ length: B * T }, () => Math.floor(r() * cfg.vocab));
  const targets = Uint32Array.from({ length: B * T }, () => Math.floor(r() * cfg.vocab));
  // Train only some tokens, as STaR does (never the prompt), and never padding.
  const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T >= (start?.[Math.floor(i / T)] ?? 0) && r() < 0.7 ? 1 : 0));
  return { tokens, targets, mask, start: start ? Uint32Array.from(start) : undefined };
}

function refBatch(b: Batch, B: number, T: number) {
  return { B, T, tokens: b.tokens, targets: b.targets, weights: lossWeights(b.mask), start: b.start ?? new Uint32Array(B) };
}

const cases: { name: string; cfg: ModelConfig; B: number; T: number; start?: number[] }[] = [
  { name: 'micro, GQA, tied', cfg: presetConfig('micro'), B: 2, T: 7, start: [0, 2] },
  { name: 'micro, untied, qkv bias, MHA', cfg: presetConfig('micro', { tieEmbeddings: false, qkvBias: true, nKvHeads: 2, vocab: 37 }), B: 1, T: 5 },
];

describe('whole model vs CPU reference', () => {
  for (const c of cases.flatMap((c) => KERNEL_PROFILES.map((kernels) => ({ ...c, kernels })))) {
    it(`${c.name}, ${c.kernels} kernels: logits, loss and every gradient match`, async () => {
      const gpu = await gpuWith(c.kernels);
      const params = initParams(c.cfg, 1);
      // Larger weights than init make the check meaningful (init-scale activations are tiny).
      for (const [name, t] of params) if (!name.endsWith('layernorm.weight') && name !== 'model.norm.weight') t.forEach((v, i) => (t[i] = v * 10));
      const trainer = createTrainer(gpu, c.cfg, { B: c.B, T: c.T });
      trainer.loadParams(params);
      const batch = randomBatch(c.cfg, c.B, c.T, 7, c.start);
      trainer.setBatch(batch);
      const ref = modelForwardBackward(c.cfg, params, refBatch(batch, c.B, c.T));

      trainer.forward();
      assertClose(await trainer.readLogits(), ref.logits, FWD, 'logits');
      assertClose([await trainer.readLoss()], [ref.loss], FWD, 'loss');

      trainer.trainStep(10);
      const grads = await downloadParams(gpu, trainer.grads);
      for (const [name, g] of ref.grads) assertClose(grads.get(name)!, g, GRAD, `grad ${name}`);
      expect(ref.grads.size).toBe(trainer.params.layout.entries.length);
    });
  }

  it.each(KERNEL_PROFILES)('ten AdamW steps give the reference losses (1e-3 relative), %s kernels', async (kernels) => {
    const gpu = await gpuWith(kernels);
    const cfg = presetConfig('micro');
    const [B, T] = [2, 6];
    const optim: OptimConfig = { ...DEFAULT_OPTIM, lr: 1e-2, warmupSteps: 3, maxGradNorm: 0.5 };
    const trainer = createTrainer(gpu, cfg, { B, T }, optim);
    let ref: ParamTensors = initParams(cfg, 2);
    trainer.loadParams(ref);
    const batch = randomBatch(cfg, B, T, 3);
    trainer.setBatch(batch);
    const layout = trainer.params.layout;
    const m = new Map([...ref].map(([k, v]) => [k, new Float64Array(v.length)]));
    const v = new Map([...ref].map(([k, v]) => [k, new Float64Array(v.length)]));
    for (let step = 1; step <= 10; step++) {
      trainer.trainStep(10);
      const gpuLoss = await trainer.readLoss();
      const out = modelForwardBackward(cfg, ref, refBatch(batch, B, T));
      expect(Math.abs(gpuLoss - out.loss) / Math.abs(out.loss), `step ${step}: gpu ${gpuLoss} vs ref ${out.loss}`).toBeLessThan(1e-3);
      // The reference optimizer over all tensors at once (one global norm), decaying matrices only.
      const names = layout.entries.map((e) => e.name);
      const flat = (src: Map<string, ArrayLike<number>>) => Float64Array.from(names.flatMap((n) => Array.from(src.get(n)!)));
      const decayEnd = layout.entries.filter((e) => e.decay).reduce((a, e) => a + e.size, 0);
      const lr = lrAt(step, { lr: optim.lr, warmupSteps: optim.warmupSteps, totalSteps: 10, kind: optim.schedule, minLrRatio: optim.minLrRatio });
      const r = refAdamw({
        params: flat(ref), grads: flat(out.grads), m: flat(m), v: flat(v), n: layout.count, decayEnd,
        hyper: { lr, beta1: optim.beta1, beta2: optim.beta2, eps: optim.eps, weightDecay: optim.weightDecay, step, maxGradNorm: optim.maxGradNorm },
      });
      let off = 0;
      const next: ParamTensors = new Map();
      for (const n of names) {
        const size = ref.get(n)!.length;
        next.set(n, Float32Array.from(r.params.subarray(off, off + size)));
        m.set(n, r.m.slice(off, off + size));
        v.set(n, r.v.slice(off, off + size));
        off += size;
      }
      ref = next;
    }
  });

  it('steps 2..N allocate nothing new', async () => {
    const gpu = await testGpu();
    const cfg = presetConfig('micro');
    const trainer = createTrainer(gpu, cfg, { B: 2, T: 8 });
    trainer.loadParams(initParams(cfg, 4));
    trainer.setBatch(randomBatch(cfg, 2, 8, 5));
    trainer.trainStep(5);
    await trainer.readLoss();
    const before = gpu.stats.buffersCreated;
    for (let i = 0; i < 4; i++) {
      trainer.setBatch(randomBatch(cfg, 2, 8, 6 + i));
      trainer.trainStep(5);
    }
    await gpu.device.queue.onSubmittedWorkDone();
    expect(gpu.stats.buffersCreated).toBe(before);
  });

  it('memory report counts exactly what the trainer allocates', async () => {
    const gpu = await testGpu();
    const cfg = presetConfig('micro');
    const report = memoryReport(cfg, { B: 3, T: 9 });
    const before = gpu.stats.bytesCreated;
    createTrainer(gpu, cfg, { B: 3, T: 9 });
    const allocated = gpu.stats.bytesCreated - before;
    // Everything but the small uniform buffers of each dispatch is in the report.
    expect(report.total).toBeLessThanOrEqual(allocated);
    expect(allocated - report.total).toBeLessThan(0.1 * allocated);
    expect(report.optimizer).toBe(2 * report.params);
  });

  it('a micro model overfits one batch to a loss below 0.05', async () => {
    const gpu = await testGpu();
    const cfg = presetConfig('micro');
    const [B, T] = [2, 12];
    const trainer = createTrainer(gpu, cfg, { B, T }, { ...DEFAULT_OPTIM, lr: 3e-2, warmupSteps: 5, weightDecay: 0, schedule: 'constant' });
    trainer.loadParams(initParams(cfg, 9));
    // Distinct tokens in a random order: the batch is learnable exactly, so the loss can reach ~0.
    const seq = shuffle(Array.from({ length: cfg.vocab }, (_, i) => i), rng(11)).slice(0, B * (T + 1));
    const tokens = new Uint32Array(B * T);
    const targets = new Uint32Array(B * T);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        tokens[b * T + t] = seq[b * (T + 1) + t];
        targets[b * T + t] = seq[b * (T + 1) + t + 1];
      }
    }
    trainer.setBatch({ tokens, targets, mask: new Float32Array(B * T).fill(1) });
    let loss = Infinity;
    let steps = 0;
    for (; steps < 400 && loss >= 0.05; steps += 25) {
      for (let i = 0; i < 25; i++) trainer.trainStep(400);
      loss = await trainer.readLoss();
    }
    expect(loss, `loss after ${steps} steps`).toBeLessThan(0.05);
  });

  it('rejects invalid configs and batches before any GPU work', async () => {
    const gpu = await testGpu();
    expect(() => presetConfig('micro', { nHeads: 3 })).toThrow(/must divide dModel/);
    expect(() => presetConfig('micro', { nKvHeads: 3, nHeads: 4 })).toThrow(/must divide nHeads/);
    expect(() => presetConfig('nope')).toThrow(/Unknown model preset/);
    const cfg = presetConfig('micro');
    expect(() => createTrainer(gpu, cfg, { B: 1, T: cfg.maxSeq + 1 })).toThrow(/Sequence length/);
    const trainer = createTrainer(gpu, cfg, { B: 1, T: 4 });
    const bad = { tokens: Uint32Array.from([1, 2, cfg.vocab, 3]), targets: new Uint32Array(4), mask: new Float32Array(4) };
    expect(() => trainer.setBatch(bad)).toThrow(/outside the vocabulary/);
    expect(() => trainer.setBatch({ ...bad, tokens: new Uint32Array(3) })).toThrow(/B\*T/);
  });
});
