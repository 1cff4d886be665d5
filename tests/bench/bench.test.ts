// The benchmark harness works: FLOP accounting, timing arithmetic, the JSON document's shape, and the
// smallest case end to end on micro shapes. No timed assertions: benchmarks print numbers, tests don't judge them.
import { describe, expect, it } from 'vitest';
import { matmulCase, matmulName } from '../../bench/cases/kernels';
import { starRun } from '../../bench/cases/star';
import { runConfig } from '../../src/star/run_config';
import {
  attentionBackwardFlops, attentionForwardFlops, causalPairs, crossEntropyBytes, linearParams, matmulFlops, mfu, paramCount,
  rmsnormBytes, trainStepFlops,
} from '../../bench/flops';
import { type BenchDocument, checkDocument, formatTable, withPeer } from '../../bench/report';
import { GROUPS, parseMatmulShapes, plan } from '../../bench/suite';
import { itersFor, median, timeIt } from '../../bench/timing';
import { presetConfig } from '../../src/model/config';
import { paramSpecs } from '../../src/model/params';
import { testGpu } from '../helpers/gpu';

describe('FLOP and byte accounting', () => {
  it('matmul is two FLOPs per multiply-add', () => {
    expect(matmulFlops(2, 3, 4)).toBe(48);
  });

  it('causal attention counts exactly the kept query-key pairs', () => {
    const [B, T, H, D] = [2, 5, 3, 4];
    let pairs = 0;
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) for (let j = 0; j <= i; j++) pairs++;
    expect(causalPairs(B, H, T)).toBe(pairs);
    expect(attentionForwardFlops(B, T, H, D)).toBe(pairs * 4 * D);
    expect(attentionBackwardFlops(B, T, H, D)).toBe(2.5 * pairs * 4 * D);
  });

  it('linear parameters are the weight matrices that multiply activations, the LM head once', () => {
    for (const preset of ['micro', 'arithmetic', 'gpt5m']) {
      const cfg = presetConfig(preset);
      const matrices = paramSpecs(cfg).filter((s) => s.shape.length === 2).reduce((a, s) => a + s.shape[0] * s.shape[1], 0);
      // Tied: the embedding matrix is the head. Untied: the gather table is not a matmul.
      expect(linearParams(cfg)).toBe(cfg.tieEmbeddings ? matrices : matrices - cfg.vocab * cfg.dModel);
    }
    expect(paramCount(presetConfig('gpt5m'))).toBeGreaterThan(4e6);
    expect(paramCount(presetConfig('gpt5m'))).toBeLessThan(8e6);
  });

  it('a training step is 6·N·tokens plus forward and backward attention; MFU needs a peak', () => {
    const cfg = presetConfig('micro');
    const [B, T] = [3, 7];
    const D = cfg.dModel / cfg.nHeads;
    const attn = cfg.nLayers * 3.5 * attentionForwardFlops(B, T, cfg.nHeads, D);
    expect(trainStepFlops(cfg, B, T)).toBeCloseTo(6 * B * T * linearParams(cfg) + attn, 6);
    expect(mfu(2e12, 1, 4)).toBeCloseTo(0.5);
    expect(mfu(2e12, 1, undefined)).toBeUndefined();
  });

  it('memory-bound kernels count their minimum traffic in f32', () => {
    expect(rmsnormBytes(10, 8)).toBe(4 * (2 * 80 + 8 + 10));
    expect(crossEntropyBytes(10, 32, false)).toBe(4 * (320 + 30));
    expect(crossEntropyBytes(10, 32, true)).toBe(4 * (640 + 30));
  });
});

describe('timing', () => {
  it('median, iteration counts and repeats', async () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(itersFor(0.01, 0.5)).toBe(50);
    expect(itersFor(2, 0.5)).toBe(1);
    expect(itersFor(1e-6, 0.5, 200)).toBe(200);
    let runs = 0;
    let syncs = 0;
    const t = await timeIt(() => void runs++, async () => void syncs++, { warmup: 2, iters: 3, repeats: 4 });
    expect(runs).toBe(2 + 3 * 4);
    expect(syncs).toBe(1 + 4);
    expect(t.samples).toHaveLength(4);
    await expect(timeIt(() => {}, async () => {}, { warmup: 0, iters: 0, repeats: 1 })).rejects.toThrow(/iters/);
  });
});

describe('the suite', () => {
  it('quick keeps the big squares and the 5M training out; full has them', () => {
    const quick = plan(true);
    const full = plan(false);
    expect(quick.matmul.every((s) => s.M * s.N * s.K < 1024 ** 3)).toBe(true);
    expect(full.matmul.filter((s) => s.label === 'square' && !s.f16B).map((s) => s.M)).toEqual([1024, 2048, 4096]);
    expect(full.train.map((s) => s.preset)).toEqual(['arithmetic', 'gpt5m']);
    expect(full.generate.map((s) => s.B)).toEqual([1, 64, 256]);
    expect(quick.decode.map((s) => s.B)).toEqual([1, 64, 256]);
    for (const d of quick.decode) expect(d.from + 1 + quick.generateRepeats * d.steps).toBeLessThanOrEqual(256);
    for (const d of full.decode) expect(d.from + 1 + full.generateRepeats * d.steps).toBeLessThanOrEqual(256);
    expect([...GROUPS]).toContain('star');
    // The full suite times one iteration of the default run preset as users run it; the quick one the test preset.
    expect(full.star).toBe('five');
    expect(quick.star).toBe('micro');
    expect(starRun('five')).toEqual(runConfig('five', { iterations: 1 }));
    expect(starRun('small').star.trainSize).toBeLessThan(starRun('five').star.trainSize);
    // Both suites time the packed-f16 weights the LoRA base uses, and only there B is not f32.
    expect(quick.matmul.filter((s) => s.f16B).map(matmulName)).toEqual(['matmul gpt5m mlp.up [BT,C]x[F,C]^T 64x768x256 f16 B']);
    expect(full.matmul.filter((s) => s.f16B).map((s) => `${s.M}x${s.N}x${s.K}`)).toEqual(['4096x768x256', '1024x1024x1024', '4096x4096x4096']);
  });

  it('parses matmul shapes, with B transposed (t) and in f16 (h)', () => {
    expect(parseMatmulShapes('8x12x16,8x12x16t,8x12x16h,8x12x16th')).toEqual([
      { label: 'plain', M: 8, N: 12, K: 16, transB: false },
      { label: 'linear x·W^T', M: 8, N: 12, K: 16, transB: true },
      { label: 'plain', M: 8, N: 12, K: 16, transB: false, f16B: true },
      { label: 'linear x·W^T', M: 8, N: 12, K: 16, transB: true, f16B: true },
    ]);
    expect(() => parseMatmulShapes('8x12x16ht')).toThrow(/MxNxKth/);
  });

  it('times an f16-B matmul: same FLOPs, named as such', async () => {
    const gpu = await testGpu();
    const c = await matmulCase(gpu, { label: 'micro', M: 8, N: 12, K: 16, transB: true, f16B: true }, { targetSeconds: 0.01, repeats: 2, maxSeconds: 0.05 });
    expect(c.name).toBe('matmul micro 8x12x16 f16 B');
    expect(c.flops).toBe(2 * 8 * 12 * 16);
    expect(c.params).toMatchObject({ bDtype: 'f16 (packed)' });
  });

  it('runs the smallest case on micro shapes and produces a valid JSON document', async () => {
    const gpu = await testGpu();
    const shape = { label: 'micro', M: 8, N: 12, K: 16, transB: true };
    const c = await matmulCase(gpu, shape, { targetSeconds: 0.01, repeats: 2, maxSeconds: 0.05 });
    expect(c.flops).toBe(2 * 8 * 12 * 16);
    expect(c.unit).toBe('GFLOP/s');
    expect(c.value).toBeCloseTo(c.flops! / 1e9 / c.seconds, 9);
    // A peer that took twice as long: ratio 2 (we are faster) and half our rate.
    const both = withPeer(c, 'tfjs', 2 * c.seconds);
    expect(both.ratio).toBeCloseTo(2);
    expect(both.peerValue).toBeCloseTo(c.value / 2);
    expect(both.peers).toHaveLength(1);
    const doc: BenchDocument = {
      suite: 'quick', date: new Date().toISOString(), adapter: gpu.adapter, runtime: 'vitest', peakTflops: null,
      peerStatus: { tfjs: 'fake' }, cases: [both],
    };
    checkDocument(doc);
    const parsed = JSON.parse(JSON.stringify(doc)) as BenchDocument;
    expect(Object.keys(parsed.cases[0])).toEqual(expect.arrayContaining(['name', 'value', 'unit', 'peer', 'peerValue', 'ratio']));
    expect(() => checkDocument({ ...doc, cases: [{ ...both, ratio: undefined }] })).toThrow(/ratio/);
    const table = formatTable(doc.cases);
    expect(table).toContain('x vs tfjs');
    expect(table).toContain('2.00x');
  });
});
