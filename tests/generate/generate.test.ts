// Batched generation with the KV cache against full recomputation, batching, stopping and reproducibility.
import { describe, expect, it } from 'vitest';
import { countsNow, countsSince } from '../../src/gpu/counters';
import type { Gpu } from '../../src/gpu/device';
import { chooseBatchSize, compactSizes, createGenerator, generatorBytes, GREEDY } from '../../src/generate/generate';
import { type ModelConfig, presetConfig } from '../../src/model/config';
import { kvCacheBytes, maxBatchForBindings } from '../../src/model/inference';
import { initParams, layoutParams, type ParamTensors } from '../../src/model/params';
import { DEFAULT_OPTIM } from '../../src/train/config';
import { createTrainer, type Trainer } from '../../src/train/trainer';
import { testGpu, withBindingLimit } from '../helpers/gpu';
import { assertClose, FWD } from '../helpers/numeric';

const cfg: ModelConfig = presetConfig('micro', { vocab: 20 });
const EOS = 2;
const PAD = 0;

/** Random weights, scaled up so the logits are far from uniform and argmax ties are unlikely. */
function sharpParams(seed: number): ParamTensors {
  const p = initParams(cfg, seed);
  for (const [name, t] of p) if (name.endsWith('proj.weight') || name.includes('embed')) t.forEach((v, i) => (t[i] = v * 12));
  return p;
}

async function model(gpu: Gpu, seed: number, T = 16): Promise<Trainer> {
  const trainer = createTrainer(gpu, cfg, { B: 1, T });
  trainer.loadParams(sharpParams(seed));
  return trainer;
}

/** Logits for every position of one sequence, without a cache. */
async function fullLogits(trainer: Trainer, seq: number[]): Promise<Float32Array> {
  const T = trainer.shape.T;
  const tokens = new Uint32Array(T);
  tokens.set(seq);
  trainer.setBatch({ tokens, targets: new Uint32Array(T), mask: new Float32Array(T) });
  trainer.forward();
  return trainer.readLogits();
}

const argmax = (xs: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
};

describe('generation', () => {
  it('greedy decoding with the KV cache equals full recomputation, logits included', async () => {
    const gpu = await testGpu();
    const trainer = await model(gpu, 1);
    const gen = createGenerator(gpu, cfg, trainer.params, { B: 2, S: 32 });
    const prompt = [1, 5, 9, 3];
    const steps: Float32Array[] = [];
    const [g] = await gen.generate([prompt], { maxNewTokens: 8, eosId: 99, padId: PAD, debugLogits: (_, l) => steps.push(l.slice(0, cfg.vocab)) });
    expect(g.tokens.length).toBe(8);
    const full = await fullLogits(trainer, [...prompt, ...g.tokens]);
    for (let i = 0; i < 8; i++) {
      const row = full.subarray((prompt.length - 1 + i) * cfg.vocab, (prompt.length + i) * cfg.vocab);
      assertClose(steps[i], row, FWD, `logits at decode step ${i}`);
      expect(g.tokens[i], `token ${i}`).toBe(argmax(row));
    }
  });

  it('counts what each decode step asks of the GPU: its dispatches, one command buffer, ids read back every 4 steps', async () => {
    const gpu = await testGpu();
    const trainer = await model(gpu, 1);
    const gen = createGenerator(gpu, cfg, trainer.params, { B: 2, S: 32 });
    const call = async (maxNewTokens: number) => {
      const before = countsNow();
      const [g] = await gen.generate([[1, 5, 9, 3]], { maxNewTokens, eosId: 99, padId: PAD });
      expect(g.tokens.length).toBe(maxNewTokens);
      return countsSince(before);
    };
    const [short, long] = [await call(4), await call(12)];
    // Eight more decode steps: one command buffer each; every 4 steps the ids are read back (history and done),
    // each readback a copy in a command buffer of its own.
    expect(long.readbacks - short.readbacks).toBe(4);
    expect(long.submits - short.submits).toBe(8 + 4);
    const perStep = (long.dispatches - short.dispatches) / 8;
    expect(Number.isInteger(perStep)).toBe(true);
    // Per layer: input norm, q, k, v, RoPE, one KV write (keys and values), attention, o_proj, post-attention norm
    // (the residual add fused in), gate and up in one matmul, SwiGLU, down_proj: 12. Then the embedding, the
    // final norm, the LM head and sampling.
    expect(perStep).toBe(cfg.nLayers * 12 + 4);
    expect(short.dispatches).toBeGreaterThan(4 * perStep); // the prefill is dispatched on top
  });

  it('a batch of prompts of different lengths gives the tokens of each prompt alone', async () => {
    const gpu = await testGpu();
    const trainer = await model(gpu, 2);
    const gen = createGenerator(gpu, cfg, trainer.params, { B: 4, S: 32 });
    const prompts = [[1, 4], [1, 7, 7, 3, 9, 11, 4, 6, 8, 12], [1], [1, 3, 5]];
    const opts = { maxNewTokens: 6, eosId: 99, padId: PAD };
    const batched = await gen.generate(prompts, opts);
    for (let i = 0; i < prompts.length; i++) {
      const [alone] = await gen.generate([prompts[i]], opts);
      expect(batched[i].tokens, `prompt ${i}`).toEqual(alone.tokens);
    }
  });

  it('stops at EOS, at a stop string (cut just after it) and at max tokens, without changing the others', async () => {
    const gpu = await testGpu();
    const trainer = await model(gpu, 3);
    const gen = createGenerator(gpu, cfg, trainer.params, { B: 3, S: 32 });
    const decode = (ids: number[]) => ids.map((t) => String.fromCharCode(97 + t)).join('');
    const prompts = [[1, 2, 3], [1, 9], [1, 4, 4]];
    const free = await gen.generate(prompts, { maxNewTokens: 10, eosId: 99, padId: PAD, decode, readEvery: 3 });
    // EOS: pick the token sequence 0 produces at step 4 as "EOS" -> it ends right before it.
    const eos = free[0].tokens[4];
    const first = free[0].tokens.indexOf(eos);
    const withEos = await gen.generate(prompts, { maxNewTokens: 10, eosId: eos, padId: PAD, decode, readEvery: 3 });
    expect(withEos[0].finish).toBe('eos');
    expect(withEos[0].tokens).toEqual(free[0].tokens.slice(0, first));
    // Stop string: two characters that sequence 1 produces at steps 2-3.
    const stop = free[1].text.slice(2, 4);
    const cut = free[1].text.indexOf(stop) + 2;
    const withStop = await gen.generate(prompts, { maxNewTokens: 10, eosId: 99, padId: PAD, decode, stopStrings: [stop], readEvery: 1 });
    expect(withStop[1].finish).toBe('stop');
    expect(withStop[1].text).toBe(free[1].text.slice(0, cut));
    expect(decode(withStop[1].tokens)).toBe(withStop[1].text);
    // The sequences that did not stop are unchanged.
    for (const i of [0, 2]) if (!free[i].text.includes(stop)) expect(withStop[i].tokens).toEqual(free[i].tokens);
    expect(free[2].finish).toBe('length');
  });

  it('moves the live rows together once half have finished (greedy): the same tokens, fewer rows decoded', async () => {
    const gpu = await testGpu();
    const trainer = await model(gpu, 3);
    const gen = createGenerator(gpu, cfg, trainer.params, { B: 64, S: 48 });
    const prompts = Array.from({ length: 60 }, (_, i) => [1, 3 + (i % 7), 4 + ((i * 3) % 11), ...(i % 3 ? [5 + (i % 4)] : [])]);
    // A row stops at the first prefix (of 2 tokens or more) whose hash is 0 mod 4: about a quarter of the rows
    // at each step, so most finish early and a few run long (as one-digit sums end long before five-digit ones).
    const decode = (ids: number[]) => ids.map((t) => String.fromCharCode(65 + t)).join('');
    const hash = (t: string) => [...t].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 1_000_003, 7);
    const stopAt = (t: string) => {
      for (let k = 2; k <= t.length; k++) if (hash(t.slice(0, k)) % 4 === 0) return k;
      return -1;
    };
    const opts = { maxNewTokens: 24, eosId: 99, padId: PAD, decode, stopAt };
    const runWith = async (o: object) => {
      const before = gen.stats.decodeRows;
      const out = await gen.generate(prompts, { ...opts, ...o });
      return { out, rows: gen.stats.decodeRows - before };
    };
    expect([compactSizes(256), compactSizes(64), compactSizes(48)]).toEqual([[128, 64, 32], [32], []]); // never below 32 rows
    const still = await runWith({ compact: false });
    const moved = await runWith({});
    expect(moved.out).toEqual(still.out);
    const lengths = still.out.map((g) => g.tokens.length);
    expect(new Set(lengths).size, `stop lengths ${lengths}`).toBeGreaterThan(5);
    // Without compaction every decode step computes all 64 rows; with it (down to 32), fewer than two thirds of that here.
    expect(still.rows % 64).toBe(0);
    expect(still.rows).toBeGreaterThanOrEqual(64 * (Math.max(...lengths) - 1));
    expect(moved.rows, `lengths ${lengths}`).toBeLessThan((2 / 3) * still.rows);
    // Each prompt alone gives the same tokens (nothing leaks between rows when they move).
    for (const i of [0, 7, 59]) expect((await gen.generate([prompts[i]], opts))[0]).toEqual(still.out[i]);
    // Sampling with a temperature hashes the row into its draw: it keeps rows in place, so seeded runs repeat.
    const sampled = { ...opts, sampling: { temperature: 1, topK: 0, topP: 1, seed: 5 } };
    const a = await runWith(sampled);
    const b = await runWith({ ...sampled, compact: false });
    expect(a.out).toEqual(b.out);
    expect(a.rows).toBe(b.rows);
  });

  it('streams text as it grows and ends every stream with done', async () => {
    const gpu = await testGpu();
    const trainer = await model(gpu, 4);
    const gen = createGenerator(gpu, cfg, trainer.params, { B: 2, S: 32 });
    const seen: Record<number, string[]> = { 0: [], 1: [] };
    const dones: number[] = [];
    const decode = (ids: number[]) => ids.join(',');
    const out = await gen.generate([[1, 2], [1, 3]], {
      maxNewTokens: 5, eosId: 99, padId: PAD, decode, readEvery: 2,
      onText: (i, text, done) => {
        seen[i].push(text);
        if (done) dones.push(i);
      },
    });
    expect(seen[0].length).toBe(3); // after steps 2, 4 and 5
    expect(seen[0].at(-1)).toBe(out[0].text);
    expect(dones.sort()).toEqual([0, 1]);
  });

  it('sampling is reproducible from a seed, and temperature 0 is greedy', async () => {
    const gpu = await testGpu();
    const trainer = await model(gpu, 5);
    const gen = createGenerator(gpu, cfg, trainer.params, { B: 4, S: 32 });
    const prompts = [[1, 2], [1, 3], [1, 4], [1, 5]];
    const sampled = (seed: number) => gen.generate(prompts, { maxNewTokens: 8, eosId: 99, padId: PAD, sampling: { temperature: 1.5, topK: 0, topP: 1, seed } });
    const a = await sampled(7);
    const b = await sampled(7);
    const c = await sampled(8);
    expect(a.map((g) => g.tokens)).toEqual(b.map((g) => g.tokens));
    expect(a.map((g) => g.tokens)).not.toEqual(c.map((g) => g.tokens));
    const greedy = await gen.generate(prompts, { maxNewTokens: 8, eosId: 99, padId: PAD, sampling: GREEDY });
    const t0 = await gen.generate(prompts, { maxNewTokens: 8, eosId: 99, padId: PAD, sampling: { temperature: 0, topK: 0, topP: 1, seed: 3 } });
    expect(t0.map((g) => g.tokens)).toEqual(greedy.map((g) => g.tokens));
  });

  it('vocabSize: ids past the tokenizer\'s vocabulary (padded embedding rows) are never generated', async () => {
    const gpu = await testGpu();
    const params = sharpParams(21);
    // Make the padding ids 15..19 the most likely continuation everywhere (a large embedding row, tied head).
    const embed = params.get('model.embed_tokens.weight')!;
    for (let j = 15; j < 20; j++) for (let c = 0; c < cfg.dModel; c++) embed[j * cfg.dModel + c] *= 8;
    const trainer = await model(gpu, 21);
    trainer.loadParams(params);
    const gen = createGenerator(gpu, cfg, trainer.params, { B: 3, S: 16 });
    const prompts = [[1, 3], [1, 4, 5], [1]];
    const free = await gen.generate(prompts, { maxNewTokens: 8, eosId: EOS, padId: PAD });
    expect(free.some((g) => g.tokens.some((t) => t >= 15))).toBe(true); // the model does prefer them
    for (const sampling of [GREEDY, { temperature: 1, topK: 0, topP: 1, seed: 3 }]) {
      const out = await gen.generate(prompts, { maxNewTokens: 8, eosId: EOS, padId: PAD, vocabSize: 15, sampling });
      for (const g of out) expect(Math.max(...g.tokens)).toBeLessThan(15);
    }
    await expect(gen.generate(prompts, { maxNewTokens: 2, eosId: EOS, padId: PAD, vocabSize: 21 })).rejects.toThrow(/vocabSize must be an integer in 1..20/);
  });

  it('a micro model trained by the engine generates its memorised sequences back', async () => {
    const gpu = await testGpu();
    const seqs = [[1, 5, 6, 7, 8, 9, 10, EOS], [1, 11, 4, 12, 4, 13, EOS, 0], [1, 14, 15, 16, 17, 3, 18, EOS]];
    const T = 7;
    const trainer = createTrainer(gpu, cfg, { B: 3, T }, { ...DEFAULT_OPTIM, lr: 3e-2, warmupSteps: 5, weightDecay: 0, schedule: "constant" });
    trainer.loadParams(initParams(cfg, 6));
    const tokens = new Uint32Array(3 * T);
    const targets = new Uint32Array(3 * T);
    const mask = new Float32Array(3 * T);
    seqs.forEach((s, b) => {
      for (let t = 0; t < T; t++) {
        tokens[b * T + t] = s[t];
        targets[b * T + t] = s[t + 1];
        // Position 0 (after BOS alone) is ambiguous across the sequences, so it is not trained.
        mask[b * T + t] = t >= 1 && t < s.indexOf(EOS) ? 1 : 0;
      }
    });
    trainer.setBatch({ tokens, targets, mask });
    for (let i = 0; i < 150; i++) trainer.trainStep(150);
    expect(await trainer.readLoss()).toBeLessThan(0.05);
    const gen = createGenerator(gpu, cfg, trainer.params, { B: 3, S: 16 });
    // Prompt with the first two tokens; the rest must come back, ending at EOS.
    const out = await gen.generate(seqs.map((s) => s.slice(0, 2)), { maxNewTokens: 8, eosId: EOS, padId: PAD });
    seqs.forEach((s, i) => {
      expect(out[i].tokens, `sequence ${i}`).toEqual(s.slice(2, s.indexOf(EOS)));
      expect(out[i].finish).toBe('eos');
    });
  });

  it('rejects bad input before any GPU work, and sizes batches to a memory budget', async () => {
    const gpu = await testGpu();
    const trainer = await model(gpu, 7);
    const gen = createGenerator(gpu, cfg, trainer.params, { B: 2, S: 16 });
    const opts = { maxNewTokens: 4, eosId: EOS, padId: PAD };
    const before = gpu.stats.buffersCreated;
    await expect(gen.generate([[]], opts)).rejects.toThrow(/empty/);
    await expect(gen.generate([Array(17).fill(1)], opts)).rejects.toThrow(/more than the cache/);
    await expect(gen.generate([Array(10).fill(1)], { ...opts, maxNewTokens: 9 })).rejects.toThrow(/overflows the KV cache/);
    await expect(gen.generate([[1], [1], [1]], opts)).rejects.toThrow(/exceed/);
    await expect(gen.generate([[1, cfg.vocab]], opts)).rejects.toThrow(/outside the vocabulary/);
    expect(gpu.stats.buffersCreated).toBe(before);
    expect(() => createGenerator(gpu, cfg, trainer.params, { B: 1, S: cfg.maxSeq + 1 })).toThrow(/maxSeq/);
    expect(kvCacheBytes(cfg, 4, 32)).toBe(2 * cfg.nLayers * 4 * 32 * cfg.nKvHeads * (cfg.dModel / cfg.nHeads) * 4);
    const budget = generatorBytes(cfg, 8, 32);
    expect(chooseBatchSize(cfg, 32, budget)).toBe(8);
    expect(chooseBatchSize(cfg, 32, budget - 1)).toBe(4);
    expect(() => chooseBatchSize(cfg, 32, 10)).toThrow(/does not fit/);
  });
});

describe('generation with the embedding and LM head split under a small binding limit', () => {
  // 4 KiB: the embedding (and untied head) of 301 x 8 f32 is stored as chunks of 101, 101 and 99 rows.
  const LIMIT = 4096;
  const SMALL = { vocab: 301, dModel: 8, nHeads: 2, nKvHeads: 1, dFF: 16 };
  const configs: [string, ModelConfig][] = [
    ['tied', presetConfig('micro', SMALL)],
    ['untied, qkv bias', presetConfig('micro', { ...SMALL, tieEmbeddings: false, qkvBias: true })],
  ];
  const sharp = (c: ModelConfig, seed: number) => {
    const p = initParams(c, seed);
    for (const [name, t] of p) if (name.endsWith('proj.weight') || name.includes('embed') || name.startsWith('lm_head')) t.forEach((v, i) => (t[i] = v * 12));
    return p;
  };
  const prompts = [[1, 150, 9, 300], [1, 100, 101, 201, 202, 7, 8], [1]];

  for (const [name, c] of configs) {
    it(`${name}: the same tokens (greedy and sampled) and logits as the unsplit model, and KV-cache decoding equals full recomputation`, async () => {
      const gpu = await testGpu();
      const small = withBindingLimit(gpu, LIMIT);
      expect(layoutParams(c, LIMIT).byName.get('model.embed_tokens.weight')!.parts.map((p) => p.rows)).toEqual([101, 101, 99]);
      const params = sharp(c, 3);
      const run = async (g: Gpu, sampling = GREEDY) => {
        const trainer = createTrainer(g, c, { B: 1, T: 16 });
        trainer.loadParams(params);
        const gen = createGenerator(g, c, trainer.params, { B: 3, S: 32 });
        const logits: Float32Array[] = [];
        const out = await gen.generate(prompts, { maxNewTokens: 8, eosId: 999, padId: PAD, sampling, debugLogits: (_, l) => logits.push(l) });
        return { trainer, tokens: out.map((g) => g.tokens), logits };
      };
      const whole = await run(gpu);
      const split = await run(small);
      expect(split.tokens).toEqual(whole.tokens);
      split.logits.forEach((l, i) => assertClose(l, whole.logits[i], FWD, `logits at step ${i}`));
      const hot = { temperature: 1.5, topK: 0, topP: 0.9, seed: 11 };
      expect((await run(small, hot)).tokens).toEqual((await run(gpu, hot)).tokens);
      // The split trainer's forward (logits in row blocks) agrees with the split generator's decode steps.
      const seq = [...prompts[1], ...split.tokens[1]];
      const tokens = new Uint32Array(16);
      tokens.set(seq.slice(0, 16));
      split.trainer.setBatch({ tokens, targets: new Uint32Array(16), mask: new Float32Array(16) });
      split.trainer.forward();
      expect(split.trainer.acts.logits.length).toBeGreaterThan(1);
      const full = await split.trainer.readLogits();
      for (let i = 0; i < 8; i++) {
        const row = full.subarray((prompts[1].length - 1 + i) * c.vocab, (prompts[1].length + i) * c.vocab);
        assertClose(split.logits[i].subarray(c.vocab, 2 * c.vocab), row, FWD, `sequence 1, decode step ${i}`);
        expect(split.tokens[1][i]).toBe(argmax(row));
      }
    });
  }

  it('refuses a batch whose logits [B, V] exceed one binding, and sizes batches to fit', async () => {
    const c = configs[0][1];
    const small = withBindingLimit(await testGpu(), LIMIT);
    const trainer = createTrainer(small, c, { B: 1, T: 4 });
    // One row of logits is 1204 bytes: three fit in 4 KiB.
    expect(maxBatchForBindings(c, 32, 1, LIMIT)).toBe(3);
    const before = small.stats.buffersCreated;
    expect(() => createGenerator(small, c, trainer.params, { B: 4, S: 32 })).toThrow(/4 sequences .*needs 4816 bytes for the logits.*generation batch of at most 3/);
    expect(small.stats.buffersCreated).toBe(before);
    expect(chooseBatchSize(c, 32, 1 << 30, 16, 256, LIMIT)).toBe(2);
    expect(chooseBatchSize(c, 32, 1 << 30, 16, 256)).toBe(256);
  });
});
