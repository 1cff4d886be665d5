import { describe, expect, it } from 'vitest';
import { createBuffer, type View } from '../../src/gpu/buffers';
import type { Gpu } from '../../src/gpu/device';
import { run } from '../../src/gpu/kernel';
import { attention, attentionBackward, setAttentionOffset } from '../../src/ops/attention';
import * as ref from '../../src/reference/attention';
import { randn, rng } from '../../src/util/random';
import { f32View, gpuWith, KERNEL_PROFILES, readF32, testGpu, u32View, withLimits } from '../helpers/gpu';
import { assertClose, dot, finiteDiff, FWD, GRAD } from '../helpers/numeric';

interface Case {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
  start?: number[];
  scale?: number;
}

const name = (c: Case) => `B=${c.B} T=${c.T} H=${c.H} Hkv=${c.Hkv} D=${c.D}${c.start ? ` start=[${c.start}]` : ''}`;

const CASES: Case[] = [
  { B: 1, T: 1, H: 1, Hkv: 1, D: 4 },
  { B: 2, T: 7, H: 4, Hkv: 2, D: 8 },
  { B: 1, T: 5, H: 3, Hkv: 3, D: 16 }, // MHA
  { B: 1, T: 9, H: 6, Hkv: 1, D: 8 }, // MQA
  { B: 2, T: 6, H: 2, Hkv: 1, D: 5, scale: 0.7 }, // odd D, explicit scale
  { B: 2, T: 7, H: 4, Hkv: 2, D: 8, start: [0, 3] }, // left padding
  { B: 2, T: 70, H: 2, Hkv: 1, D: 128, start: [0, 5] }, // > one chunk of 64 keys, two dims per thread
  { B: 1, T: 150, H: 2, Hkv: 1, D: 6, scale: 1 }, // three key chunks: the running max must move
  { B: 2, T: 11, H: 4, Hkv: 2, D: 32, start: [2, 0] }, // CPU drivers: the widest row4 kernel (8 vec4 chunks)
  { B: 1, T: 6, H: 2, Hkv: 2, D: 12 }, // CPU drivers: a partial row4 kernel (3 chunks)
];

function inputs(c: Case, seed: number, Tk = c.T) {
  const r = rng(seed);
  return {
    q: randn(c.B * c.T * c.H * c.D, r),
    k: randn(c.B * Tk * c.Hkv * c.D, r),
    v: randn(c.B * Tk * c.Hkv * c.D, r),
    dout: randn(c.B * c.T * c.H * c.D, r),
    start: c.start ?? new Array(c.B).fill(0),
  };
}

/** Rows [t0, t0 + n) of every batch of a [B, T, W] tensor. */
function rows(x: ArrayLike<number>, B: number, T: number, W: number, t0: number, n: number): Float32Array {
  const o = new Float32Array(B * n * W);
  for (let b = 0; b < B; b++) for (let t = 0; t < n; t++) for (let w = 0; w < W; w++) o[(b * n + t) * W + w] = x[(b * T + t0 + t) * W + w];
  return o;
}

async function gpuForward(gpu: Gpu, c: Case, x: ReturnType<typeof inputs>) {
  const { B, T, H, Hkv, D } = c;
  const out = createBuffer(gpu, B * T * H * D * 4);
  const lse = createBuffer(gpu, B * H * T * 4);
  const views = { q: f32View(gpu, x.q), k: f32View(gpu, x.k), v: f32View(gpu, x.v), start: u32View(gpu, x.start) };
  await run(gpu, attention(gpu, { ...views, out, lse, B, Tq: T, Tk: T, H, Hkv, D, scale: c.scale }));
  return { views, out, lse };
}

describe('attention backward', () => {
  // Tiny shapes with GQA and left padding: the reference backward against central differences.
  for (const c of [
    { B: 2, T: 4, H: 4, Hkv: 2, D: 3, start: [0, 2] },
    { B: 1, T: 3, H: 3, Hkv: 1, D: 2, scale: 1.3 },
  ] as Case[]) {
    it(`reference backward matches finite differences for ${name(c)}`, () => {
      const x = inputs(c, 11);
      const shape = { B: c.B, T: c.T, H: c.H, Hkv: c.Hkv, D: c.D, scale: c.scale };
      const fwd = (q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) =>
        dot(ref.attention({ q, k, v, start: x.start, ...shape, Tq: c.T, Tk: c.T }).out, x.dout);
      const g = ref.attentionBackward({ ...x, ...shape });
      assertClose(g.dq, finiteDiff((q) => fwd(q, x.k, x.v), x.q), GRAD, 'dq');
      assertClose(g.dk, finiteDiff((k) => fwd(x.q, k, x.v), x.k), GRAD, 'dk');
      assertClose(g.dv, finiteDiff((v) => fwd(x.q, x.k, v), x.v), GRAD, 'dv');
    });
  }
});

for (const kernels of KERNEL_PROFILES) {
  describe(`attention forward, ${kernels} kernels`, () => {
    for (const c of CASES) {
      it(`matches the reference for ${name(c)}`, async () => {
        const gpu = await gpuWith(kernels);
        const x = inputs(c, c.T * 31 + c.D);
        const { out, lse } = await gpuForward(gpu, c, x);
        const want = ref.attention({ ...x, B: c.B, Tq: c.T, Tk: c.T, H: c.H, Hkv: c.Hkv, D: c.D, scale: c.scale });
        const gotOut = await readF32(gpu, out);
        const gotLse = await readF32(gpu, lse);
        assertClose(gotOut, want.out, FWD, 'out');
        assertClose(gotLse, want.lse, FWD, 'lse');
        // Padding rows are exactly zero (the reference would also accept tiny values).
        x.start.forEach((s, b) => {
          for (let t = 0; t < s; t++) {
            for (let i = 0; i < c.H * c.D; i++) expect(gotOut[(b * c.T + t) * c.H * c.D + i]).toBe(0);
            for (let h = 0; h < c.H; h++) expect(gotLse[(b * c.H + h) * c.T + t]).toBe(0);
          }
        });
      });
    }
  });

  describe(`attention decoding, ${kernels} kernels`, () => {
    const c: Case = { B: 2, T: 9, H: 4, Hkv: 2, D: 8, start: [0, 3] };
    const cap = 12; // KV cache capacity; keys past the current position hold garbage and must be masked
    const W = c.H * c.D;
    const x = inputs(c, 5, cap);
    const full = ref.attention({ ...x, k: rows(x.k, c.B, cap, c.Hkv * c.D, 0, c.T), v: rows(x.v, c.B, cap, c.Hkv * c.D, 0, c.T), B: c.B, Tq: c.T, Tk: c.T, H: c.H, Hkv: c.Hkv, D: c.D });
    const lseRows = (t0: number, n: number) => rows(full.lse, c.B * c.H, c.T, 1, t0, n);

    async function decode(gpu: Gpu, t0: number, n: number) {
      const out = createBuffer(gpu, c.B * n * W * 4);
      const lse = createBuffer(gpu, c.B * c.H * n * 4);
      const args = {
        q: f32View(gpu, rows(x.q, c.B, c.T, W, t0, n)),
        k: f32View(gpu, x.k),
        v: f32View(gpu, x.v),
        start: u32View(gpu, x.start),
        out,
        lse,
        B: c.B,
        Tq: n,
        Tk: cap,
        H: c.H,
        Hkv: c.Hkv,
        D: c.D,
      };
      return { args, out, lse };
    }

    it('one query at qOffset 8 equals the last row of the full computation', async () => {
      const gpu = await gpuWith(kernels);
      const { args, out, lse } = await decode(gpu, 8, 1);
      await run(gpu, attention(gpu, { ...args, qOffset: 8 }));
      assertClose(await readF32(gpu, out), rows(full.out, c.B, c.T, W, 8, 1), FWD, 'out');
      assertClose(await readF32(gpu, lse), lseRows(8, 1), FWD, 'lse');
    });

    it('a chunk of 3 queries at qOffset 4 equals rows 4..6', async () => {
      const gpu = await gpuWith(kernels);
      const { args, out, lse } = await decode(gpu, 4, 3);
      await run(gpu, attention(gpu, { ...args, qOffset: 4 }));
      assertClose(await readF32(gpu, out), rows(full.out, c.B, c.T, W, 4, 3), FWD, 'out');
      assertClose(await readF32(gpu, lse), lseRows(4, 3), FWD, 'lse');
    });

    it('setAttentionOffset moves the query row of prebuilt dispatches', async () => {
      const gpu = await gpuWith(kernels);
      const { args, out, lse } = await decode(gpu, 0, 1);
      const dispatches = attention(gpu, args); // built once at qOffset 0
      // Row 1 of batch 1 is padding (start 3): zeros; the others attend a growing prefix.
      for (const t of [5, 1, 8]) {
        const q = f32View(gpu, rows(x.q, c.B, c.T, W, t, 1));
        const enc = gpu.device.createCommandEncoder();
        enc.copyBufferToBuffer(q.buffer, q.offset, args.q.buffer, args.q.offset, q.size);
        gpu.device.queue.submit([enc.finish()]);
        setAttentionOffset(gpu, dispatches, args, t);
        await run(gpu, dispatches);
        assertClose(await readF32(gpu, out), rows(full.out, c.B, c.T, W, t, 1), FWD, `out at ${t}`);
        assertClose(await readF32(gpu, lse), lseRows(t, 1), FWD, `lse at ${t}`);
      }
      expect(() => setAttentionOffset(gpu, dispatches, args, cap)).toThrow(/exceeds the key capacity/);
    });
  });

  describe(`attention backward, ${kernels} kernels`, () => {
    for (const c of CASES) {
      it(`GPU matches the reference for ${name(c)}`, async () => {
        const gpu = await gpuWith(kernels);
        const x = inputs(c, c.T * 7 + c.H);
        const { views, out, lse } = await gpuForward(gpu, c, x);
        const { B, T, H, Hkv, D } = c;
        const grads = {
          dq: createBuffer(gpu, B * T * H * D * 4),
          dk: createBuffer(gpu, B * T * Hkv * D * 4),
          dv: createBuffer(gpu, B * T * Hkv * D * 4),
          delta: createBuffer(gpu, B * H * T * 4),
        };
        const dispatches = attentionBackward(gpu, { ...views, out, lse, dout: f32View(gpu, x.dout), ...grads, B, T, H, Hkv, D, scale: c.scale });
        await run(gpu, dispatches);
        const want = ref.attentionBackward({ ...x, B, T, H, Hkv, D, scale: c.scale });
        const dq = await readF32(gpu, grads.dq);
        assertClose(dq, want.dq, GRAD, 'dq');
        assertClose(await readF32(gpu, grads.dk), want.dk, GRAD, 'dk');
        assertClose(await readF32(gpu, grads.dv), want.dv, GRAD, 'dv');
        // Deterministic: a second run gives the same bits.
        await run(gpu, dispatches);
        expect(await readF32(gpu, grads.dq)).toEqual(dq);
      });
    }
  });
}

/** Forward and backward arguments over fresh, unfilled buffers; the row buffers are sized for one sequence (callers pass B = 1). */
function blankArgs(gpu: Gpu, B: number, T: number, H: number, Hkv: number, D: number) {
  const v = (n: number): View => createBuffer(gpu, n * 4);
  const fwd = { q: v(T * H * D), k: v(T * Hkv * D), v: v(T * Hkv * D), out: v(T * H * D), lse: v(H * T), start: v(B), B, Tq: T, Tk: T, H, Hkv, D };
  const bwd = { ...fwd, T, dout: v(T * H * D), dq: v(T * H * D), dk: v(T * Hkv * D), dv: v(T * Hkv * D), delta: v(H * T) };
  return { fwd, bwd };
}

describe('attention shape checks', () => {
  it('throws before any GPU work', async () => {
    const gpu = await testGpu();
    const v = (n: number): View => createBuffer(gpu, n * 4);
    const B = 1, T = 4, H = 4, Hkv = 2, D = 8;
    const { fwd, bwd } = blankArgs(gpu, B, T, H, Hkv, D);
    const short = { kv: v(T * Hkv * D - 1), rows: v(H * T - 1) }; // one element too few
    const before = gpu.stats.buffersCreated;
    expect(() => attention(gpu, { ...fwd, Hkv: 3 })).toThrow(/multiple of Hkv/);
    expect(() => attentionBackward(gpu, { ...bwd, H: 6, Hkv: 4 })).toThrow(/multiple of Hkv/);
    expect(() => attention(gpu, { ...fwd, k: short.kv })).toThrow(/k holds/);
    expect(() => attention(gpu, { ...fwd, lse: short.rows })).toThrow(/lse holds/);
    expect(() => attention(gpu, { ...fwd, Tq: 2, qOffset: 3 })).toThrow(/exceeds the key capacity/);
    expect(() => attention(gpu, { ...fwd, D: 129 })).toThrow(/head dim/);
    expect(() => attention(gpu, { ...fwd, Tq: 0 })).toThrow(/Tq must be a positive integer/);
    expect(() => attentionBackward(gpu, { ...bwd, dk: short.kv })).toThrow(/dk holds/);
    expect(() => attentionBackward(gpu, { ...bwd, delta: short.rows })).toThrow(/delta holds/);
    expect(gpu.stats.buffersCreated).toBe(before);
    // The unmodified arguments are valid.
    expect(attention(gpu, fwd)).toHaveLength(1);
    // delta, dq, dk, dv; dk and dv in one dispatch on CPU drivers that bind 9 storage buffers.
    expect(attentionBackward(gpu, bwd)).toHaveLength(gpu.kernels === 'cpu' && gpu.limits.maxStorageBuffersPerShaderStage >= 9 ? 3 : 4);
  });
});

describe('attention backward on CPU drivers: dk and dv fused or apart', () => {
  it('gives the bits of the separate kernels', async () => {
    const fused = await gpuWith('cpu');
    const apart = withLimits(fused, { maxStorageBuffersPerShaderStage: 8 });
    const c: Case = { B: 2, T: 9, H: 4, Hkv: 2, D: 16, start: [0, 3] };
    const x = inputs(c, 5);
    const { views, out, lse } = await gpuForward(fused, c, x);
    const { B, T, H, Hkv, D } = c;
    const grads = (gpu: Gpu) => {
      const g = { dq: createBuffer(gpu, B * T * H * D * 4), dk: createBuffer(gpu, B * T * Hkv * D * 4), dv: createBuffer(gpu, B * T * Hkv * D * 4), delta: createBuffer(gpu, B * H * T * 4) };
      return { g, ds: attentionBackward(gpu, { ...views, out, lse, dout: f32View(gpu, x.dout), ...g, B, T, H, Hkv, D }) };
    };
    const [a, b] = [grads(fused), grads(apart)];
    expect(a.ds.map((d) => d.label)).toContain('attention.bwd_dkv');
    expect(b.ds.map((d) => d.label)).toEqual(expect.arrayContaining(['attention.bwd_dk', 'attention.bwd_dv']));
    await run(fused, [...a.ds, ...b.ds]);
    for (const k of ['dk', 'dv'] as const) expect(await readF32(fused, a.g[k]), k).toEqual(await readF32(fused, b.g[k]));
  });
});

describe('attention kernel choice', () => {
  it('CPU drivers get the vec4-chunk row kernels where D is a multiple of 4 up to 32, the array ones elsewhere', async () => {
    const gpu = await gpuWith('cpu');
    const entries = (D: number) => {
      const { fwd, bwd } = blankArgs(gpu, 1, 3, 2, 1, D);
      return [...attention(gpu, fwd), ...attentionBackward(gpu, bwd)].map((d) => d.pipeline.label.split(':').slice(0, 2).join(':'));
    };
    // dk and dv in one kernel where 9 storage buffers bind (SwiftShader: 12), in two where only the default 8 do.
    expect(gpu.limits.maxStorageBuffersPerShaderStage).toBeGreaterThanOrEqual(9);
    expect(entries(16)).toEqual(['attention_row:forward_row4', 'attention:bwd_delta', 'attention_row:bwd_dq_row4', 'attention_row:bwd_dkv_row4']);
    expect(entries(32)[0]).toBe('attention_row:forward_row4');
    expect(entries(36)[0]).toBe('attention_row:forward_row');
    expect(entries(6)[0]).toBe('attention_row:forward_row');
    const gpuProfile = await gpuWith('gpu');
    expect(attention(gpuProfile, blankArgs(gpuProfile, 1, 1, 1, 1, 16).fwd)[0].pipeline.label).toMatch(/^attention:forward:/);
  });
});
