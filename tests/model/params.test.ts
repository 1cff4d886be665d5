// The flat parameter layout: named views, segments when the binding limit requires a split, and
// weight import from f32/f16/bf16 safetensors.
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/device';
import { f32ToBf16, tensorToF32, writeSafetensorsTyped, parseSafetensors } from '../../src/hub/safetensors';
import { presetConfig } from '../../src/model/config';
import { asStored, createParamBuffers, downloadParams, initParams, layoutParams, paramSpecs, uploadParams } from '../../src/model/params';
import { createGpuEngine } from '../../src/star/gpu_engine';
import { arithmeticTokenizer } from '../../src/star/tasks/char_tokenizer';
import { DEFAULT_OPTIM } from '../../src/train/config';
import { createTrainer } from '../../src/train/trainer';
import { roundToF16 } from '../../src/util/half';
import { rng } from '../../src/util/random';
import { readF32, testGpu, withBindingLimit } from '../helpers/gpu';

const cfg = presetConfig('micro');

describe('parameter layout', () => {
  it('puts decayed matrices before norm weights, 256-byte aligned, HF names', () => {
    const layout = layoutParams(cfg);
    expect(layout.segmentSizes).toHaveLength(1);
    for (const e of layout.entries) {
      expect(e.parts).toHaveLength(1);
      expect(e.parts[0].offset % 64).toBe(0);
      expect(e.parts[0].offset < layout.decayEnds[0]).toBe(e.decay);
    }
    expect(layout.byName.get('model.layers.1.mlp.down_proj.weight')!.shape).toEqual([cfg.dModel, cfg.dFF]);
    expect(layout.count).toBe(paramSpecs(cfg).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0));
  });

  it('splits into segments under a small binding limit and trains identically', async () => {
    const gpu = await testGpu();
    const limit = 4096; // bytes: forces several segments for the micro model
    expect(layoutParams(cfg, limit).segmentSizes.length).toBeGreaterThan(2);
    expect(() => layoutParams(cfg, 512)).toThrow(/more than this GPU can bind/);
    const r = rng(1);
    const batch = {
      tokens: Uint32Array.from({ length: 12 }, () => Math.floor(r() * cfg.vocab)),
      targets: Uint32Array.from({ length: 12 }, () => Math.floor(r() * cfg.vocab)),
      mask: new Float32Array(12).fill(1),
    };
    const losses = async (g: Gpu) => {
      const t = createTrainer(g, cfg, { B: 2, T: 6 }, { ...DEFAULT_OPTIM, lr: 1e-2, warmupSteps: 1, maxGradNorm: 0.1 });
      t.loadParams(initParams(cfg, 3));
      t.setBatch(batch);
      const out: number[] = [];
      for (let i = 0; i < 4; i++) {
        t.trainStep(4);
        out.push(await t.readLoss());
      }
      return out;
    };
    const one = await losses(gpu);
    const split = await losses(withBindingLimit(gpu, limit));
    for (let i = 0; i < one.length; i++) expect(Math.abs(split[i] - one[i])).toBeLessThan(1e-5 * Math.abs(one[i]) + 1e-6);
  });

  it('stores an embedding and LM head over the limit as uneven row chunks, joined again at the Hugging Face boundary', async () => {
    const gpu = await testGpu();
    const big = presetConfig('micro', { vocab: 301, dModel: 8, nHeads: 2, nKvHeads: 1, dFF: 16, tieEmbeddings: false });
    const limit = 4096;
    const layout = layoutParams(big, limit);
    for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
      const e = layout.byName.get(name)!;
      expect(e.shape).toEqual([301, 8]);
      expect(e.parts.map((p) => [p.first, p.rows])).toEqual([[0, 101], [101, 101], [202, 99]]);
      for (const p of e.parts) expect(p.size * 4).toBeLessThanOrEqual(limit);
    }
    expect(Math.max(...layout.segmentSizes) * 4).toBeLessThanOrEqual(limit);
    expect(layout.entries.map((e) => e.name)).toEqual(layoutParams(big).entries.map((e) => e.name));
    const bufs = createParamBuffers(withBindingLimit(gpu, limit), layout, 'split');
    const tensors = initParams(big, 8);
    uploadParams(gpu, bufs, tensors);
    const back = await downloadParams(gpu, bufs);
    for (const [name, t] of tensors) expect(back.get(name), name).toEqual(t);
    // The middle chunk holds rows 101..201 of the tensor.
    const mid = await readF32(gpu, bufs.chunks('lm_head.weight')[1].view);
    expect(mid).toEqual(tensors.get('lm_head.weight')!.slice(101 * 8, 202 * 8));
    expect(() => bufs.view('model.embed_tokens.weight')).toThrow(/stored as 3 row chunks.*chunks\(name\)/);
    expect(bufs.chunks('model.norm.weight')).toHaveLength(1);
  });

  it('stores the matrices of an f16 layout as packed halves (norm weights f32), chunked by their f16 size', async () => {
    const gpu = await testGpu();
    const big = presetConfig('micro', { vocab: 301, dModel: 8, nHeads: 2, nKvHeads: 1, dFF: 16, tieEmbeddings: false });
    const limit = 4096;
    const layout = layoutParams(big, limit, 'f16');
    for (const e of layout.entries) {
      expect(e.dtype, e.name).toBe(e.decay ? 'f16' : 'f32');
      for (const p of e.parts) expect(p.offset % 64, `${e.name} offset`).toBe(0);
    }
    // 301 x 8 halves are 4816 bytes: two chunks under 4 KiB (f32 needed three).
    expect(layout.byName.get('lm_head.weight')!.parts.map((p) => [p.first, p.rows])).toEqual([[0, 151], [151, 150]]);
    expect(Math.max(...layout.segmentSizes) * 4).toBeLessThanOrEqual(limit);
    const bufs = createParamBuffers(withBindingLimit(gpu, limit), layout, 'f16');
    const last = bufs.chunks('lm_head.weight')[1];
    expect([last.dtype, last.view.size]).toEqual(['f16', 150 * 8 * 2]);
    expect([bufs.dtype('model.norm.weight'), bufs.view('model.norm.weight').size]).toEqual(['f32', big.dModel * 4]);
    const tensors = initParams(big, 9);
    uploadParams(gpu, bufs, tensors);
    const back = await downloadParams(gpu, bufs);
    const want = asStored(layout, tensors);
    for (const [name, t] of want) expect(back.get(name), name).toEqual(t);
    expect(want.get('model.norm.weight')).toBe(tensors.get('model.norm.weight'));
    expect(back.get('lm_head.weight')).not.toEqual(tensors.get('lm_head.weight'));
    expect(back.get('lm_head.weight')).toEqual(roundToF16(tensors.get('lm_head.weight')!));
  });

  it('loads bf16 weights by name and rejects a shape mismatch', async () => {
    const gpu = await testGpu();
    const engine = createGpuEngine(gpu, cfg, arithmeticTokenizer, { trainBatch: 1, genBatch: 1 });
    const params = initParams(cfg, 5);
    const bytes = writeSafetensorsTyped(
      layoutParams(cfg).entries.map((e) => ({ name: e.name, dtype: 'BF16' as const, data: f32ToBf16(params.get(e.name)!), shape: e.shape })),
    );
    await engine.loadWeights(bytes);
    const back = await engine.readParams();
    const file = parseSafetensors(bytes);
    for (const e of layoutParams(cfg).entries) expect(back.get(e.name)).toEqual(tensorToF32(file, e.name));
    const bad = writeSafetensorsTyped([{ name: 'model.embed_tokens.weight', dtype: 'F32', data: new Float32Array(6), shape: [2, 3] }]);
    await expect(engine.loadWeights(bad)).rejects.toThrow(/model.embed_tokens.weight has shape 2x3/);
  });
});
