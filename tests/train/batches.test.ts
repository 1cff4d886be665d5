import { describe, expect, it } from 'vitest';
import { arithmeticTokenizer } from '../../src/star/tasks/char_tokenizer';
import { makeProblem, problemPrompt, scratchpad } from '../../src/star/tasks/arithmetic';
import { batchIterator, type Example, makeBatches } from '../../src/train/batches';

// Letters only: 'a' -> 3, 'b' -> 4, ...; PAD 0, BOS 1, EOS 2.
const tok = {
  encode: (s: string) => [...s].map((c) => {
    if (c < 'a' || c > 'z') throw new Error(`test tokenizer: ${c}`);
    return c.charCodeAt(0) - 94;
  }),
  pad: 0,
  bos: 1,
  eos: 2,
};
const [PAD, BOS, EOS] = [0, 1, 2];
const [a, b, c, d, e] = [3, 4, 5, 6, 7];

const row = (arr: ArrayLike<number>, r: number, T: number) => Array.from(arr).slice(r * T, (r + 1) * T);

describe('makeBatches', () => {
  it('lays out [BOS] prompt target [EOS], shifted by one, with the mask exactly on target + EOS', () => {
    const [batch] = makeBatches([{ prompt: 'ab', target: 'cde' }], tok, { B: 1, T: 8, seed: 0, shuffle: false });
    expect(Array.from(batch.tokens)).toEqual([BOS, a, b, c, d, e, PAD, PAD]);
    expect(Array.from(batch.targets)).toEqual([a, b, c, d, e, EOS, PAD, PAD]);
    expect(Array.from(batch.mask)).toEqual([0, 0, 1, 1, 1, 1, 0, 0]);
    expect(batch.start).toBeUndefined(); // right padding: every row starts at 0
  });

  it('masks exactly the target tokens and the EOS, never the prompt, for every row', () => {
    const examples: Example[] = [
      { prompt: 'abc', target: 'd' },
      { prompt: 'a', target: 'bcde' },
      { prompt: 'edcba', target: 'ab' },
    ];
    const T = 9;
    const [batch] = makeBatches(examples, tok, { B: 3, T, seed: 0, shuffle: false });
    examples.forEach((ex, r) => {
      const mask = row(batch.mask, r, T);
      const targets = row(batch.targets, r, T);
      const trained = targets.filter((_, t) => mask[t] === 1);
      expect(trained).toEqual([...tok.encode(ex.target), EOS]);
      // The shift: each real position's target is the next position's input.
      const tokens = row(batch.tokens, r, T);
      const n = 1 + ex.prompt.length + ex.target.length;
      for (let t = 0; t + 1 < n; t++) expect(targets[t]).toBe(tokens[t + 1]);
      expect(tokens.slice(n)).toEqual(new Array(T - n).fill(PAD));
      expect(mask.slice(0, ex.prompt.length)).toEqual(new Array(ex.prompt.length).fill(0));
    });
  });

  it('trains only the EOS when the target is empty', () => {
    const [batch] = makeBatches([{ prompt: 'ab', target: '' }], tok, { B: 1, T: 3, seed: 0, shuffle: false });
    expect(Array.from(batch.targets)).toEqual([a, b, EOS]);
    expect(Array.from(batch.mask)).toEqual([0, 0, 1]);
  });

  it('fills the last batch with all-padding rows that carry no loss', () => {
    const examples = ['a', 'b', 'c', 'd'].map((p) => ({ prompt: p, target: 'e' }));
    const batches = makeBatches(examples, tok, { B: 3, T: 4, seed: 0, shuffle: false });
    expect(batches).toHaveLength(2);
    const last = batches[1];
    expect(row(last.tokens, 0, 4)).toEqual([BOS, d, e, PAD]);
    for (const r of [1, 2]) {
      expect(row(last.tokens, r, 4)).toEqual([PAD, PAD, PAD, PAD]);
      expect(row(last.mask, r, 4)).toEqual([0, 0, 0, 0]);
    }
  });

  it('accepts an example that fills T exactly and names one that does not fit', () => {
    // [BOS] + 2 + 3 + [EOS] = 7 tokens = 6 positions.
    expect(() => makeBatches([{ prompt: 'ab', target: 'cde' }], tok, { B: 1, T: 6, seed: 0, shuffle: false })).not.toThrow();
    const examples = [{ prompt: 'a', target: 'b' }, { prompt: 'ab', target: 'cde' }];
    expect(() => makeBatches(examples, tok, { B: 1, T: 5, seed: 0, shuffle: false })).toThrow(/example 1 \(prompt "ab"\) needs 6 positions .* T is 5/);
  });

  it('rejects bad shapes', () => {
    expect(() => makeBatches([], tok, { B: 0, T: 4, seed: 0, shuffle: false })).toThrow(/B must be a positive integer/);
    expect(() => makeBatches([], tok, { B: 2, T: 1.5, seed: 0, shuffle: false })).toThrow(/T must be a positive integer/);
    expect(makeBatches([], tok, { B: 2, T: 4, seed: 0, shuffle: false })).toEqual([]);
  });

  it('shuffles deterministically from the seed and keeps the order without shuffle', () => {
    const examples = 'abcdefghij'.split('').map((p) => ({ prompt: p, target: 'a' }));
    const firstTokens = (bs: ReturnType<typeof makeBatches>) => bs.flatMap((bt) => [0, 1].map((r) => bt.tokens[r * 3 + 1]));
    const opts = { B: 2, T: 3, seed: 7, shuffle: true };
    const once = firstTokens(makeBatches(examples, tok, opts));
    expect(firstTokens(makeBatches(examples, tok, opts))).toEqual(once);
    expect(firstTokens(makeBatches(examples, tok, { ...opts, seed: 8 }))).not.toEqual(once);
    expect([...once].sort((x, y) => x - y)).toEqual(examples.map((ex) => tok.encode(ex.prompt)[0]));
    expect(firstTokens(makeBatches(examples, tok, { ...opts, shuffle: false }))).toEqual(examples.map((ex) => tok.encode(ex.prompt)[0]));
  });

  it('masks an arithmetic scratchpad exactly (real tokenizer)', () => {
    const p = makeProblem(29, 57);
    const ex = { prompt: problemPrompt(p), target: scratchpad(p) };
    const [batch] = makeBatches([ex], arithmeticTokenizer, { B: 1, T: 128, seed: 0, shuffle: false });
    const trained = Array.from(batch.targets).filter((_, t) => batch.mask[t] === 1);
    expect(trained.at(-1)).toBe(arithmeticTokenizer.eos);
    expect(arithmeticTokenizer.decode(trained)).toBe(scratchpad(p));
  });
});

describe('batchIterator', () => {
  const examples = 'abcde'.split('').map((p) => ({ prompt: p, target: 'a' }));
  const opts = { B: 2, T: 3, seed: 3, shuffle: true };
  const prompts = (bt: { tokens: Uint32Array; mask: Float32Array }) => [0, 1].map((r) => bt.tokens[r * 3 + 1]).filter((x) => x !== PAD);

  it('yields exactly `steps` batches, the first epoch being makeBatches', () => {
    const all = [...batchIterator(examples, tok, { ...opts, steps: 7 })];
    expect(all).toHaveLength(7);
    expect(all.slice(0, 3)).toEqual(makeBatches(examples, tok, opts));
  });

  it('covers every example once per epoch, reshuffling each epoch, deterministically', () => {
    const all = [...batchIterator(examples, tok, { ...opts, steps: 9 })];
    const epochs = [all.slice(0, 3), all.slice(3, 6), all.slice(6, 9)].map((ep) => ep.flatMap(prompts));
    for (const ep of epochs) expect([...ep].sort()).toEqual([a, b, c, d, e]);
    expect(epochs.some((ep) => ep.join() !== epochs[0].join())).toBe(true); // a fresh order per epoch
    expect([...batchIterator(examples, tok, { ...opts, steps: 9 })]).toEqual(all);
  });

  it('rejects no examples and bad step counts', () => {
    expect(() => [...batchIterator([], tok, { ...opts, steps: 1 })]).toThrow(/no examples/);
    expect([...batchIterator([], tok, { ...opts, steps: 0 })]).toEqual([]);
    expect(() => [...batchIterator(examples, tok, { ...opts, steps: -1 })]).toThrow(/steps must be an integer/);
  });
});
