// Batches of similar lengths, each only as long as it needs, trained by trainers of several lengths that share
// the weights and one optimizer: the same training as padding every batch to the longest, only cheaper.

import { describe, expect, it } from 'vitest';
import { allocateActs } from '../../src/model/activations';
import { presetConfig } from '../../src/model/config';
import { downloadParams, initParams } from '../../src/model/params';
import { makeProblem, problemPrompt, sampleProblems, scratchpad } from '../../src/star/tasks/arithmetic';
import { arithmeticTokenizer as tok } from '../../src/star/tasks/char_tokenizer';
import { batchIterator, BUCKET_T, type Example } from '../../src/train/batches';
import { DEFAULT_OPTIM } from '../../src/train/config';
import { type Batch, createTrainer } from '../../src/train/trainer';
import { testGpu } from '../helpers/gpu';
import { assertClose, FWD } from '../helpers/numeric';

const examples: Example[] = sampleProblems(40, { minDigits: 1, maxDigits: 3, seed: 2 }).map((p, i) => ({ prompt: problemPrompt(p, i % 3 === 0), target: scratchpad(p) }));
const need = (ex: Example) => 1 + tok.encode(ex.prompt).length + tok.encode(ex.target).length;

/** The rows of a batch back as (prompt + target) texts, padding rows left out. */
function rowsOf(b: Batch, B: number): string[] {
  const T = b.tokens.length / B;
  const out: string[] = [];
  for (let r = 0; r < B; r++) {
    const ids = Array.from(b.tokens.slice(r * T, (r + 1) * T));
    if (ids[0] === tok.pad) continue;
    out.push(tok.decode(ids));
  }
  return out;
}

describe('bucketed batches', () => {
  it('show every example once per epoch, each batch padded to its own longest (a multiple of 16, at most T)', () => {
    const B = 4;
    const T = 128;
    const steps = 10; // one epoch of 40 examples
    const batches = [...batchIterator(examples, tok, { B, T, seed: 5, shuffle: true, steps, bucket: 3 })];
    expect(batches).toHaveLength(steps);
    const seen = batches.flatMap((b) => rowsOf(b, B)).sort();
    expect(seen).toEqual(examples.map((ex) => ex.prompt + ex.target).sort());
    const lengths = batches.map((b) => b.tokens.length / B);
    for (const [i, b] of batches.entries()) {
      const longest = Math.max(...rowsOf(b, B).map((text) => tok.encode(text).length + 1)); // + BOS
      expect(lengths[i] % BUCKET_T).toBe(0);
      expect(lengths[i]).toBeGreaterThanOrEqual(longest);
      expect(lengths[i] - longest).toBeLessThan(BUCKET_T);
      expect(b.mask.length).toBe(b.tokens.length);
    }
    expect(new Set(lengths).size).toBeGreaterThan(1); // short batches really are shorter
    const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
    expect(mean).toBeLessThan(Math.ceil(Math.max(...examples.map(need)) / BUCKET_T) * BUCKET_T);
    // Deterministic for a seed.
    const again = [...batchIterator(examples, tok, { B, T, seed: 5, shuffle: true, steps, bucket: 3 })];
    expect(again.map((b) => Array.from(b.tokens))).toEqual(batches.map((b) => Array.from(b.tokens)));
  });

  it('trainers of two lengths sharing one optimizer and one set of activations train as one padded to the longest does', async () => {
    const gpu = await testGpu();
    const cfg = presetConfig('micro');
    const B = 2;
    const short = [makeProblem(3, 4), makeProblem(5, 2)].map((p) => ({ prompt: problemPrompt(p), target: scratchpad(p) }));
    const long = [makeProblem(123, 456), makeProblem(999, 101)].map((p) => ({ prompt: problemPrompt(p), target: scratchpad(p) }));
    const pad = (exs: Example[], T: number) => [...batchIterator(exs, tok, { B, T, seed: 0, shuffle: false, steps: 1 })][0];
    const [T1, T2] = [48, 112];
    const optim = { ...DEFAULT_OPTIM, lr: 1e-2, warmupSteps: 1 };
    const init = initParams(cfg, 3);

    // Bucketed: the short batches on a T=48 trainer, the long one on a T=112 trainer, one optimizer, and both in
    // the activations of one batch at the model's longest sequence (as the engine shares them).
    const arena = allocateActs(gpu, cfg, B, cfg.maxSeq);
    const big = createTrainer(gpu, cfg, { B, T: T2 }, optim, { actsArena: arena });
    big.loadParams(init);
    const bytes = () => gpu.stats.bytesCreated;
    let before = bytes();
    const small = createTrainer(gpu, cfg, { B, T: T1 }, optim, { shared: big.params, optimizer: big.optimizer, actsArena: arena });
    const inArena = bytes() - before;
    before = bytes();
    createTrainer(gpu, cfg, { B, T: T1 }, optim, { shared: big.params, optimizer: big.optimizer }).destroy();
    expect(inArena).toBeLessThan((bytes() - before) / 10); // its activations cost nothing: they are the arena's
    // Padded: every batch at T=112 on its own trainer.
    const ref = createTrainer(gpu, cfg, { B, T: T2 }, optim);
    ref.loadParams(init);
    const plan: [Example[], boolean][] = [[short, true], [long, false], [short, true]];
    const losses: [number, number][] = [];
    for (const [exs, isShort] of plan) {
      const tr = isShort ? small : big;
      tr.setBatch(pad(exs, isShort ? T1 : T2));
      tr.trainStep(3);
      ref.setBatch(pad(exs, T2));
      ref.trainStep(3);
      losses.push([await tr.readLoss(), await ref.readLoss()]);
    }
    expect(big.step).toBe(3);
    expect(small.step).toBe(3);
    for (const [a, b] of losses) expect(a).toBeCloseTo(b, 4);
    const [got, want] = await Promise.all([downloadParams(gpu, big.params), downloadParams(gpu, ref.params)]);
    for (const [name, w] of want) assertClose(got.get(name)!, w, FWD, name);
    small.destroy();
    big.destroy();
    ref.destroy();
    for (const v of Object.values(arena).flat()) if (v && typeof v === 'object' && 'buffer' in v) (v as { buffer: GPUBuffer }).buffer.destroy();
  });
});
