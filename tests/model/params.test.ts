// The flat parameter layout: named views, segments when the binding limit requires a split, and
// weight import from f32/f16/bf16 safetensors.
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/device';
import { f32ToBf16, tensorToF32, writeSafetensorsTyped, parseSafetensors } from '../../src/hub/safetensors';
import { presetConfig } from '../../src/model/config';
import { initParams, layoutParams, paramSpecs } from '../../src/model/params';
import { createGpuEngine } from '../../src/star/gpu_engine';
import { arithmeticTokenizer } from '../../src/star/tasks/char_tokenizer';
import { DEFAULT_OPTIM } from '../../src/train/config';
import { createTrainer } from '../../src/train/trainer';
import { rng } from '../../src/util/random';
import { testGpu } from '../helpers/gpu';

const cfg = presetConfig('micro');

/** The same device, claiming a smaller per-binding limit. */
function withBindingLimit(gpu: Gpu, bytes: number): Gpu {
  const limits: Record<string, unknown> = {};
  for (const k in gpu.limits) limits[k] = gpu.limits[k as keyof GPUSupportedLimits];
  return { ...gpu, limits: { ...limits, maxStorageBufferBindingSize: bytes } as unknown as GPUSupportedLimits };
}

describe('parameter layout', () => {
  it('puts decayed matrices before norm weights, 256-byte aligned, HF names', () => {
    const layout = layoutParams(cfg);
    expect(layout.segmentSizes).toHaveLength(1);
    for (const e of layout.entries) {
      expect(e.offset % 64).toBe(0);
      expect(e.offset < layout.decayEnds[0]).toBe(e.decay);
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
