// The kernel-profile switch (src/ops/profile.ts): each op dispatches the variant its table names, under
// each profile. Values are the kernel tests' business (they run every op under both profiles); this test
// pins which entry point runs where, so a change to the switch shows here first.

import { describe, expect, it } from 'vitest';
import type { Dispatch } from '../../src/gpu/kernel';
import { attention } from '../../src/ops/attention';
import { crossEntropy } from '../../src/ops/cross_entropy';
import { matmul } from '../../src/ops/matmul';
import { attentionFusedKeyRows, attentionVariant, matmulVariant, perRow } from '../../src/ops/profile';
import { rmsnorm } from '../../src/ops/rmsnorm';
import { sample } from '../../src/ops/sampling';
import { f32View, gpuWith, u32View, withLimits } from '../helpers/gpu';

/** The entry point a dispatch's pipeline was compiled for (the pipeline cache's key: shader:entry:constants). */
const entryOf = (d: Dispatch) => d.pipeline.label.split(':')[1];

describe('the kernel-profile switch', () => {
  it('picks every op\'s variant by profile, as its table says', async () => {
    const picked: Record<string, Record<string, string[]>> = {};
    for (const profile of ['gpu', 'cpu'] as const) {
      const gpu = await gpuWith(profile);
      const z = (n: number) => f32View(gpu, new Float32Array(n));
      const [rows, C, V, B, T, H, D] = [6, 8, 5, 2, 3, 2, 8];
      const attn = (d: number) => attention(gpu, { q: z(B * T * H * d), k: z(B * T * H * d), v: z(B * T * H * d), out: z(B * T * H * d), lse: z(B * H * T), start: u32View(gpu, [0, 0]), B, Tq: T, Tk: T, H, Hkv: H, D: d });
      const greedy = (temperature: number) => sample(gpu, { logits: z(B * V), out: u32View(gpu, [0, 0]), done: u32View(gpu, [0, 0]), B, V, eosId: 2, padId: 0, params: { temperature, topK: 0, topP: 1, seed: 1 } });
      picked[profile] = {
        rmsnorm: rmsnorm(gpu, { x: z(rows * C), w: z(C), y: z(rows * C), rstd: z(rows), rows, C, eps: 1e-5 }).map(entryOf),
        crossEntropy: crossEntropy(gpu, { logits: z(rows * V), targets: u32View(gpu, new Array(rows).fill(0)), weights: z(rows), losses: z(rows), rows, V }).map(entryOf),
        matmul: matmul(gpu, { a: z(rows * C), b: z(C * C), c: z(rows * C), M: rows, N: C, K: C }).map(entryOf),
        attentionD8: attn(D).map(entryOf),
        attentionD6: attn(6).map(entryOf),
        greedy: greedy(0).map(entryOf),
        sampled: greedy(0.7).map(entryOf),
      };
      expect(matmulVariant(gpu)).toBe(profile === 'gpu' ? 'tiled' : 'direct');
      expect(perRow(gpu, 'forward', 130).entry).toBe(profile === 'gpu' ? 'forward' : 'forward_row');
      expect(attentionVariant(gpu, 64)).toBe(profile === 'gpu' ? 'workgroup' : 'row');
    }
    expect(picked).toEqual({
      gpu: {
        rmsnorm: ['forward'], crossEntropy: ['main'], matmul: ['main'], attentionD8: ['forward'], attentionD6: ['forward'],
        greedy: ['main'], sampled: ['main'],
      },
      cpu: {
        rmsnorm: ['forward_row'], crossEntropy: ['main_row'], matmul: ['direct'], attentionD8: ['forward_row4'], attentionD6: ['forward_row'],
        greedy: ['greedy_row'], sampled: ['main'],
      },
    });
  });

  it('fuses attention\'s dk and dv kernels only for the row4 variant on an adapter binding 9 storage buffers', async () => {
    const cpu = await gpuWith('cpu');
    expect(attentionFusedKeyRows(withLimits(cpu, { maxStorageBuffersPerShaderStage: 9 }), 16)).toBe(true);
    expect(attentionFusedKeyRows(withLimits(cpu, { maxStorageBuffersPerShaderStage: 8 }), 16)).toBe(false);
    expect(attentionFusedKeyRows(withLimits(cpu, { maxStorageBuffersPerShaderStage: 12 }), 40)).toBe(false); // D 40: the row variant
    expect(attentionFusedKeyRows(withLimits(await gpuWith('gpu'), { maxStorageBuffersPerShaderStage: 12 }), 16)).toBe(false);
  });
});
