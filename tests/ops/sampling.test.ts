import { describe, expect, it } from 'vitest';
import { createBuffer } from '../../src/gpu/buffers';
import type { Gpu } from '../../src/gpu/device';
import { run } from '../../src/gpu/kernel';
import { sample, type SampleArgs, type SamplingParams, setSampleStep } from '../../src/ops/sampling';
import * as ref from '../../src/reference/sampling';
import { randn, rng } from '../../src/util/random';
import { f32View, gpuWith, KERNEL_PROFILES, readU32, testGpu, u32View } from '../helpers/gpu';

const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1, seed: 0 };

interface Case {
  logits: Float32Array; // [B, stride]
  B: number;
  V: number;
  stride?: number;
  done?: number[];
  eosId?: number;
  padId?: number;
  params: SamplingParams;
}

/** Runs `steps` decode steps (0, 1, ...) on the same logits; returns each step's ids, the final done flags and the history. */
async function gpuSample(gpu: Gpu, c: Case, steps = 1) {
  const { B, V } = c;
  const args: SampleArgs = {
    logits: f32View(gpu, c.logits),
    out: createBuffer(gpu, B * 4),
    done: u32View(gpu, c.done ?? new Array(B).fill(0)),
    history: createBuffer(gpu, B * steps * 4),
    B,
    V,
    stride: c.stride,
    maxNew: steps,
    eosId: c.eosId ?? 0xffffffff,
    padId: c.padId ?? 0,
    params: c.params,
  };
  const dispatches = sample(gpu, args);
  const outs: Uint32Array[] = [];
  for (let s = 0; s < steps; s++) {
    setSampleStep(gpu, dispatches, args, s);
    await run(gpu, dispatches);
    outs.push(await readU32(gpu, args.out));
  }
  return { outs, done: await readU32(gpu, args.done), history: await readU32(gpu, args.history!) };
}

/** A plain argmax with the lowest index on ties (independent of the reference). */
function argmaxRow(logits: Float32Array, b: number, V: number): number {
  let best = 0;
  for (let j = 1; j < V; j++) if (logits[b * V + j] > logits[b * V + best]) best = j;
  return best;
}

for (const kernels of KERNEL_PROFILES) describe(`sample: greedy, ${kernels} kernels`, () => {
  for (const [B, V] of [[5, 37], [3, 5000], [2, 1]]) {
    it(`is the exact argmax with the lowest id on ties (B=${B}, V=${V})`, async () => {
      const gpu = await gpuWith(kernels);
      const r = rng(B * 31 + V);
      const logits = randn(B * V, r, 2);
      if (V > 1) {
        // Row 0: its max tied at two places that different threads read (and for V=5000, different strides).
        const [i, j] = V > 300 ? [4000, 257] : [30, 7];
        logits[i] = logits[j] = 100;
        // Row 1 (when present): a constant row, so every token ties.
        if (B > 1) logits.fill(-1.5, V, 2 * V);
      }
      const want = Array.from({ length: B }, (_, b) => argmaxRow(logits, b, V));
      if (V > 1) expect(want[0]).toBe(V > 300 ? 257 : 7);
      if (B > 1) expect(want[1]).toBe(0);
      const { outs } = await gpuSample(gpu, { logits, B, V, params: GREEDY });
      expect(Array.from(outs[0])).toEqual(want);
      expect(Array.from(ref.sample({ logits, B, V, done: new Array(B).fill(0), eosId: -1, padId: 0, params: GREEDY, step: 0 }).out)).toEqual(want);
    });
  }

  it('ties -0 with +0 and never picks NaN', async () => {
    const gpu = await gpuWith(kernels);
    const V = 6;
    const logits = Float32Array.from([-3, NaN, -0, -1, 0, NaN]);
    const { outs } = await gpuSample(gpu, { logits, B: 1, V, params: GREEDY });
    expect(outs[0][0]).toBe(2);
  });

  it('topK = 1 is greedy whatever the temperature and seed', async () => {
    const gpu = await gpuWith(kernels);
    const B = 24;
    const V = 37;
    const logits = randn(B * V, rng(5), 0.3); // flat rows: sampling would often miss the argmax
    const want = Array.from({ length: B }, (_, b) => argmaxRow(logits, b, V));
    const { outs } = await gpuSample(gpu, { logits, B, V, params: { temperature: 1.7, topK: 1, topP: 1, seed: 99 } }, 2);
    expect(Array.from(outs[0])).toEqual(want);
    expect(Array.from(outs[1])).toEqual(want);
    // The same rows sampled at temperature 1.7 do leave the argmax (so the check above can fail).
    const sampled = await gpuSample(gpu, { logits, B, V, params: { temperature: 1.7, topK: 0, topP: 1, seed: 99 } });
    expect(Array.from(sampled.outs[0]).filter((x, b) => x !== want[b]).length).toBeGreaterThan(B / 4);
  });
});

describe('sample: draws', () => {
  const settings: [string, SamplingParams][] = [
    ['temperature 1', { temperature: 1, topK: 0, topP: 1, seed: 1234 }],
    ['temperature 0.7, topK 5', { temperature: 0.7, topK: 5, topP: 1, seed: 77 }],
    ['temperature 1.2, topP 0.9', { temperature: 1.2, topK: 0, topP: 0.9, seed: 4242 }],
    ['temperature 0.8, topK 20, topP 0.7', { temperature: 0.8, topK: 20, topP: 0.7, seed: 0xfffffffe }],
  ];
  // V = 5000 runs the 256-thread pipeline, the narrower rows the 64-thread one.
  for (const [V, B] of [[37, 16], [1000, 6], [5000, 3]]) {
    for (const [name, params] of settings) {
      it(`equal the reference draws exactly (${name}, V=${V})`, async () => {
        const gpu = await testGpu();
        const logits = randn(B * V, rng(V + params.seed), 2);
        // Row 0 ties its 2nd..4th largest logits, so top-k thresholds land on a tie.
        logits[3] = logits[11] = logits[20] = Math.max(...logits.subarray(0, V)) - 0.5;
        const steps = 3;
        const got = await gpuSample(gpu, { logits, B, V, params }, steps);
        for (let s = 0; s < steps; s++) {
          const want = ref.sample({ logits, B, V, done: new Array(B).fill(0), eosId: -1, padId: 0, params, step: s }).out;
          expect(Array.from(got.outs[s]), `step ${s}`).toEqual(Array.from(want));
          for (let b = 0; b < B; b++) expect(got.history[b * steps + s]).toBe(want[b]);
        }
        // Draws vary with the step (not one fixed token per row).
        const changed = got.outs[1].filter((x, b) => x !== got.outs[0][b]).length;
        if (params.topK === 0 || params.topK > 3) expect(changed).toBeGreaterThan(0);
      });
    }
  }

  it('the same seed gives the same ids, another seed other ids', async () => {
    const gpu = await testGpu();
    const B = 96;
    const V = 50;
    const logits = randn(B * V, rng(8), 0.5);
    const params = { temperature: 1, topK: 0, topP: 1, seed: 2024 };
    const a = (await gpuSample(gpu, { logits, B, V, params })).outs[0];
    const b = (await gpuSample(gpu, { logits, B, V, params })).outs[0];
    const c = (await gpuSample(gpu, { logits, B, V, params: { ...params, seed: 2025 } })).outs[0];
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(a.filter((x, i) => x !== c[i]).length).toBeGreaterThan(B / 2);
  });
});

describe('sample: a candidate vocabulary narrower than the logits rows (padded embeddings)', () => {
  it('never returns an id >= V, greedy or sampled, and draws as the reference does on the first V columns', async () => {
    const gpu = await testGpu();
    const [B, V, stride] = [6, 23, 32];
    const logits = randn(B * stride, rng(5), 2);
    for (let b = 0; b < B; b++) logits[b * stride + V + (b % (stride - V))] = 50; // the true argmax is a padding id
    const firstV = Float32Array.from({ length: B * V }, (_, i) => logits[Math.floor(i / V) * stride + (i % V)]);
    const greedy = await gpuSample(gpu, { logits, B, V, stride, params: GREEDY });
    expect(Array.from(greedy.outs[0])).toEqual(Array.from({ length: B }, (_, b) => argmaxRow(firstV, b, V)));
    const params = { temperature: 1.5, topK: 0, topP: 1, seed: 9 };
    const drawn = await gpuSample(gpu, { logits, B, V, stride, params }, 4);
    for (let s = 0; s < 4; s++) {
      const want = ref.sample({ logits: firstV, B, V, done: new Array(B).fill(0), eosId: -1, padId: 0, params, step: s }).out;
      expect(Array.from(drawn.outs[s]), `step ${s}`).toEqual(Array.from(want));
    }
    expect(() => sample(gpu, { ...greedyArgs(gpu, B, V), stride: V - 1 })).toThrow(/stride/);
  });
});

function greedyArgs(gpu: Gpu, B: number, V: number): SampleArgs {
  return { logits: createBuffer(gpu, B * V * 4), out: createBuffer(gpu, B * 4), done: createBuffer(gpu, B * 4), B, V, eosId: 0, padId: 0, params: GREEDY };
}

for (const kernels of KERNEL_PROFILES) describe(`sample: done, eos, history, ${kernels} kernels`, () => {
  it('finished rows output padId and stay done; sampling eos finishes a row', async () => {
    const gpu = await gpuWith(kernels);
    const B = 6;
    const V = 37;
    const eosId = 5;
    const padId = 36;
    const logits = randn(B * V, rng(3));
    for (const b of [1, 2]) logits[b * V + eosId] = 50; // rows 1 and 2 will pick eos
    const done = [1, 0, 1, 0, 0, 0]; // row 2 is already finished: pad, even though it would pick eos
    const params = { temperature: 0.9, topK: 0, topP: 1, seed: 7 };
    const got = await gpuSample(gpu, { logits, B, V, done, eosId, padId, params }, 3);
    const cur = done.slice();
    for (let s = 0; s < 3; s++) {
      const want = ref.sample({ logits, B, V, done: cur, eosId, padId, params, step: s });
      expect(Array.from(got.outs[s]), `step ${s}`).toEqual(Array.from(want.out));
      cur.splice(0, B, ...want.done);
    }
    // Step 0: row 1 outputs eos itself and finishes; rows 0 and 2 output pad.
    expect(got.outs[0][1]).toBe(eosId);
    expect([got.outs[0][0], got.outs[0][2]]).toEqual([padId, padId]);
    // Later steps: row 1 is padded too.
    expect(got.outs[1][1]).toBe(padId);
    expect(Array.from(got.done)).toEqual([1, 1, 1, ...cur.slice(3)]);
    expect(Array.from(got.history.subarray(3, 6))).toEqual([eosId, padId, padId]); // row 1's history
  });

  it('writes history only at the step column and does not allocate per step', async () => {
    const gpu = await gpuWith(kernels);
    const B = 3;
    const V = 37;
    const maxNew = 5;
    const logits = randn(B * V, rng(11));
    const history = u32View(gpu, new Array(B * maxNew).fill(777));
    const args: SampleArgs = {
      logits: f32View(gpu, logits),
      out: createBuffer(gpu, B * 4),
      done: u32View(gpu, [0, 0, 0]),
      history,
      B,
      V,
      maxNew,
      eosId: 1000,
      padId: 0,
      params: GREEDY,
    };
    const dispatches = sample(gpu, args);
    const before = gpu.stats.buffersCreated;
    setSampleStep(gpu, dispatches, args, 3);
    expect(gpu.stats.buffersCreated).toBe(before);
    await run(gpu, dispatches);
    const h = await readU32(gpu, history);
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < maxNew; s++) expect(h[b * maxNew + s]).toBe(s === 3 ? argmaxRow(logits, b, V) : 777);
    }
    expect(() => setSampleStep(gpu, dispatches, args, maxNew)).toThrow(/step/);
    // The pipeline is specialised for its mode: switching from greedy to sampling needs a new sample().
    expect(() => setSampleStep(gpu, dispatches, { ...args, params: { ...GREEDY, temperature: 1 } }, 0)).toThrow(/mode/);
    expect(() => setSampleStep(gpu, dispatches, { ...args, params: { ...GREEDY, seed: 5 } }, 0)).not.toThrow();
  });
});

/** Chi-square statistic of counts against probabilities (cells with p = 0 must be empty). */
function chiSquare(counts: number[], p: ArrayLike<number>, n: number): { stat: number; dof: number } {
  let stat = 0;
  let cells = 0;
  for (let i = 0; i < counts.length; i++) {
    if (p[i] === 0) {
      expect(counts[i], `token ${i} is outside the kept set`).toBe(0);
      continue;
    }
    const e = n * p[i];
    stat += (counts[i] - e) ** 2 / e;
    cells++;
  }
  return { stat, dof: cells - 1 };
}

// Chi-square critical values at p = 0.001 by degrees of freedom.
const CHI2_999 = [NaN, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588, 31.264];

describe('sample: distribution (chi-square, p = 0.001)', () => {
  const row = [1.0, 0.2, -0.5, 2.0, 0.0, -1.0, 1.5, 0.7, -0.3, 0.4, 1.1];
  const V = row.length;
  const B = 500;
  const steps = 8;
  const n = B * steps;
  const logits = new Float32Array(B * V);
  for (let b = 0; b < B; b++) logits.set(row, b * V);

  async function counts(params: SamplingParams): Promise<number[]> {
    const gpu = await testGpu();
    const { outs } = await gpuSample(gpu, { logits, B, V, params }, steps);
    const c = new Array(V).fill(0);
    for (const o of outs) for (const t of o) c[t]++;
    return c;
  }

  function softmax(xs: number[], T: number): number[] {
    const e = xs.map((x) => Math.exp(x / T));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  }

  it('temperature 1.3 matches softmax(logits / T)', async () => {
    const params = { temperature: 1.3, topK: 0, topP: 1, seed: 31337 };
    const c = await counts(params);
    const want = softmax(row, 1.3);
    const { stat, dof } = chiSquare(c, want, n);
    expect(dof).toBe(V - 1);
    expect(stat).toBeLessThan(CHI2_999[dof]);
    // The probabilities function agrees, and the test has power: T = 1 is rejected.
    Array.from(ref.probabilities(row, params)).forEach((x, i) => expect(x).toBeCloseTo(want[i], 6));
    expect(chiSquare(c, softmax(row, 1), n).stat).toBeGreaterThan(CHI2_999[dof]);
  });

  it('topK = 3 draws from the renormalised top 3 only', async () => {
    const params = { temperature: 1, topK: 3, topP: 1, seed: 5 };
    const want = ref.probabilities(row, params);
    expect(Array.from(want).map((x, i) => (x > 0 ? i : -1)).filter((i) => i >= 0)).toEqual([3, 6, 10]);
    const { stat, dof } = chiSquare(await counts(params), want, n);
    expect(dof).toBe(2);
    expect(stat).toBeLessThan(CHI2_999[dof]);
  });

  it('topP = 0.8 draws from the smallest set with mass >= 0.8 only', async () => {
    const params = { temperature: 1, topK: 0, topP: 0.8, seed: 6 };
    const want = ref.probabilities(row, params);
    // Softmax masses of the logits 2.0, 1.5, 1.1, 1.0, 0.7, 0.4 add up to 0.30, 0.47, 0.59, 0.70, 0.78, 0.84.
    expect(Array.from(want).map((x, i) => (x > 0 ? i : -1)).filter((i) => i >= 0)).toEqual([0, 3, 6, 7, 9, 10]);
    const { stat, dof } = chiSquare(await counts(params), want, n);
    expect(dof).toBe(5);
    expect(stat).toBeLessThan(CHI2_999[dof]);
  });
});

describe('probabilities (reference)', () => {
  it('keeps every token tied at the top-k and top-p thresholds', () => {
    const row = [3, 1, 2, 2, 0];
    const kept = (params: SamplingParams) => Array.from(ref.probabilities(row, params)).map((x) => (x > 0 ? 1 : 0));
    expect(kept({ temperature: 1, topK: 2, topP: 1, seed: 0 })).toEqual([1, 0, 1, 1, 0]);
    expect(kept({ temperature: 1, topK: 3, topP: 1, seed: 0 })).toEqual([1, 0, 1, 1, 0]);
    expect(kept({ temperature: 1, topK: 4, topP: 1, seed: 0 })).toEqual([1, 1, 1, 1, 0]);
    // p(3) = 0.61, p(2) = 0.22 each: 0.7 needs the tie group, which comes in whole.
    expect(kept({ temperature: 1, topK: 0, topP: 0.7, seed: 0 })).toEqual([1, 0, 1, 1, 0]);
    expect(kept({ temperature: 1, topK: 0, topP: 0.5, seed: 0 })).toEqual([1, 0, 0, 0, 0]);
    const p = ref.probabilities(row, { temperature: 2, topK: 0, topP: 1, seed: 0 });
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('has a GPU twin that honours the ties (many draws, only the kept tokens appear)', async () => {
    const gpu = await testGpu();
    const V = 5;
    const B = 64;
    const row = [3, 1, 2, 2, 0];
    const logits = new Float32Array(B * V);
    for (let b = 0; b < B; b++) logits.set(row, b * V);
    const { outs } = await gpuSample(gpu, { logits, B, V, params: { temperature: 1, topK: 2, topP: 1, seed: 321 } });
    const seen = new Set(outs[0]);
    expect([...seen].sort()).toEqual([0, 2, 3]);
  });
});

describe('sample: errors before any GPU work', () => {
  it('rejects bad params and small views', async () => {
    const gpu = await testGpu();
    const B = 2;
    const V = 10;
    const base: SampleArgs = {
      logits: createBuffer(gpu, B * V * 4),
      out: createBuffer(gpu, B * 4),
      done: createBuffer(gpu, B * 4),
      B,
      V,
      eosId: 1,
      padId: 0,
      params: { temperature: 1, topK: 0, topP: 1, seed: 1 },
    };
    const before = gpu.stats.buffersCreated;
    const bad: [Partial<SampleArgs> | Partial<SamplingParams>, RegExp, boolean][] = [
      [{ temperature: -0.1 }, /temperature/, true],
      [{ temperature: NaN }, /temperature/, true],
      [{ topP: 0 }, /topP/, true],
      [{ topP: 1.01 }, /topP/, true],
      [{ topP: NaN }, /topP/, true],
      [{ topK: -1 }, /topK/, true],
      [{ topK: 2.5 }, /topK/, true],
      [{ seed: -1 }, /seed/, true],
      [{ logits: createBuffer(gpu, (B * V - 1) * 4) }, /logits/, false],
      [{ out: createBuffer(gpu, 4) }, /out/, false],
      [{ done: createBuffer(gpu, 4) }, /done/, false],
      [{ history: createBuffer(gpu, B * 4) }, /maxNew/, false],
      [{ history: createBuffer(gpu, (B * 3 - 1) * 4), maxNew: 3 }, /history/, false],
      [{ V: 0 }, /V/, false],
    ];
    const made = gpu.stats.buffersCreated - before; // the views built for the table above
    for (const [patch, msg, isParam] of bad) {
      const args = isParam ? { ...base, params: { ...base.params, ...patch } } : { ...base, ...patch };
      expect(() => sample(gpu, args as SampleArgs), msg.source).toThrow(msg);
    }
    expect(gpu.stats.buffersCreated - before).toBe(made); // no uniform buffer was made for any of them
  });
});

describe('sample: kernel choice', () => {
  it('CPU drivers decode greedily with a thread per row; sampling, and every GPU, keep a workgroup per row', async () => {
    const entry = (kernels: 'gpu' | 'cpu', params: SampleArgs['params'], history = false) => async () => {
      const gpu = await gpuWith(kernels);
      const args = greedyArgs(gpu, 3, 37);
      const d = sample(gpu, { ...args, params, ...(history ? { history: u32View(gpu, new Uint32Array(3 * 4)), maxNew: 4 } : {}) });
      return d[0].pipeline.label.split(':')[1];
    };
    const hot = { temperature: 1, topK: 0, topP: 1, seed: 1 };
    expect(await entry('cpu', GREEDY)()).toBe('greedy_row');
    expect(await entry('cpu', GREEDY, true)()).toBe('greedy_history_row');
    expect(await entry('cpu', hot)()).toBe('main');
    expect(await entry('gpu', GREEDY)()).toBe('main');
    expect(await entry('gpu', GREEDY, true)()).toBe('main_history');
  });
});
