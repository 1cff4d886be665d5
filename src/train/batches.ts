// Fine-tuning batches from (prompt, target) examples. Each sequence is [BOS] + prompt + target + [EOS];
// the model reads it shifted by one, and the loss covers only the predictions of target tokens and the
// EOS: the model learns to write rationales and to stop, never to reproduce prompts. Rows are padded on
// the right (the trainer's `start` stays 0), so positions count from the BOS.

import { rng, shuffle as shuffleInPlace } from '../util/random';
import type { Batch } from './trainer';

/** One fine-tuning example: the loss is taken on `target` (and the EOS after it) only, never on `prompt`. */
export interface Example {
  prompt: string;
  target: string;
}

export interface BatchTokenizer {
  encode(s: string): number[];
  bos: number;
  eos: number;
  pad: number;
}

/** Whether the token at ids[t] is a key token (a prediction worth a loss of its own: a sum digit, a carry). */
export type KeyToken = (ids: readonly number[], t: number) => boolean;

export interface BatchOptions {
  /** Sequences per batch. */
  B: number;
  /** Positions per sequence: an example needs 1 + prompt + target tokens (the EOS is a target only). */
  T: number;
  /** Seeds the example order when `shuffle` is set. */
  seed: number;
  shuffle: boolean;
  /** Marks key target tokens (Batch.key); omitted: batches carry no key mask. */
  keyToken?: KeyToken;
  /**
   * batchIterator only: group examples of similar length. Each window of this many batches' examples is sorted
   * by length and cut into batches, and each batch is padded only to its own longest example (rounded up to a
   * multiple of BUCKET_T, at most T), so short examples are not trained at the longest one's length. Batches of
   * an epoch come in a shuffled order. Omitted or 0: every batch is T long, examples in shuffled order.
   */
  bucket?: number;
}

/** Bucketed batches are padded to a multiple of this many positions. */
export const BUCKET_T = 16;

interface Encoded {
  /** [BOS, ...prompt, ...target, EOS]. */
  ids: number[];
  /** Prompt tokens; the first trained prediction is at position promptLen (it predicts target[0]). */
  promptLen: number;
}

function checkOptions({ B, T }: BatchOptions): void {
  if (!Number.isInteger(B) || B < 1) throw new Error(`makeBatches: B must be a positive integer, got ${B}`);
  if (!Number.isInteger(T) || T < 1) throw new Error(`makeBatches: T must be a positive integer, got ${T}`);
}

/** Prompt and target are encoded separately, so the boundary between them is exact whatever the tokenizer. */
function encodeAll(examples: Example[], tok: BatchTokenizer, T: number): Encoded[] {
  return examples.map((ex, i) => {
    const prompt = tok.encode(ex.prompt);
    const target = tok.encode(ex.target);
    const ids = [tok.bos, ...prompt, ...target, tok.eos];
    const need = ids.length - 1; // the last token is only ever a target
    if (need > T) {
      const preview = JSON.stringify(ex.prompt.length > 40 ? `${ex.prompt.slice(0, 40)}...` : ex.prompt);
      throw new Error(
        `makeBatches: example ${i} (prompt ${preview}) needs ${need} positions (BOS + ${prompt.length} prompt + ` +
          `${target.length} target tokens; the EOS is predicted, not read) but T is ${T}`,
      );
    }
    return { ids, promptLen: prompt.length };
  });
}

/** Packs the examples at `order[first..first+B)` into one batch of B rows, padding rows past the end. */
function packOne(encoded: Encoded[], order: number[], first: number, B: number, T: number, pad: number, keyToken?: KeyToken): Batch {
  const tokens = new Uint32Array(B * T).fill(pad);
  const targets = new Uint32Array(B * T).fill(pad);
  const mask = new Float32Array(B * T);
  const key = keyToken ? new Float32Array(B * T) : undefined;
  for (let b = 0; b < B && first + b < order.length; b++) {
    const { ids, promptLen } = encoded[order[first + b]];
    const row = b * T;
    for (let t = 0; t < ids.length - 1; t++) {
      tokens[row + t] = ids[t];
      targets[row + t] = ids[t + 1];
      if (t >= promptLen) {
        mask[row + t] = 1;
        if (key && keyToken!(ids, t + 1)) key[row + t] = 1;
      }
    }
  }
  return key ? { tokens, targets, mask, key } : { tokens, targets, mask };
}

/** Packs the examples at `order` into batches of B rows; the last batch is filled with all-padding rows. */
function pack(encoded: Encoded[], order: number[], B: number, T: number, pad: number, keyToken?: KeyToken): Batch[] {
  const batches: Batch[] = [];
  for (let first = 0; first < order.length; first += B) batches.push(packOne(encoded, order, first, B, T, pad, keyToken));
  return batches;
}

function indices(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** All examples once, in batches of B (the last one padded); shuffled by `seed` when asked. */
export function makeBatches(examples: Example[], tok: BatchTokenizer, opts: BatchOptions): Batch[] {
  checkOptions(opts);
  const encoded = encodeAll(examples, tok, opts.T);
  const order = indices(encoded.length);
  if (opts.shuffle) shuffleInPlace(order, rng(opts.seed));
  return pack(encoded, order, opts.B, opts.T, tok.pad, opts.keyToken);
}

/**
 * `steps` batches, cycling through the examples epoch after epoch, each epoch in a fresh order drawn
 * from one seeded stream; the first epoch is exactly makeBatches(examples, tok, opts).
 */
export function* batchIterator(examples: Example[], tok: BatchTokenizer, opts: BatchOptions & { steps: number }): Generator<Batch> {
  checkOptions(opts);
  if (!Number.isInteger(opts.steps) || opts.steps < 0) throw new Error(`batchIterator: steps must be an integer >= 0, got ${opts.steps}`);
  if (examples.length === 0 && opts.steps > 0) throw new Error('batchIterator: no examples to train on');
  const encoded = encodeAll(examples, tok, opts.T);
  const r = rng(opts.seed);
  const { B, T } = opts;
  let step = 0;
  while (step < opts.steps) {
    const order = indices(encoded.length);
    if (opts.shuffle) shuffleInPlace(order, r);
    if (opts.bucket) {
      // Windows sorted by length, cut into batches whose order is shuffled; each batch as long as it needs.
      const batches: number[][] = [];
      for (let w = 0; w < order.length; w += B * opts.bucket) {
        const win = order.slice(w, w + B * opts.bucket).sort((a, b) => encoded[a].ids.length - encoded[b].ids.length);
        for (let i = 0; i < win.length; i += B) batches.push(win.slice(i, i + B));
      }
      if (opts.shuffle) shuffleInPlace(batches, r);
      for (const rows of batches) {
        if (step++ >= opts.steps) return;
        const need = rows.reduce((n, i) => Math.max(n, encoded[i].ids.length - 1), 1);
        yield packOne(encoded, rows, 0, B, Math.min(T, Math.ceil(need / BUCKET_T) * BUCKET_T), tok.pad, opts.keyToken);
      }
      continue;
    }
    // One batch at a time: an epoch of a million examples is never held at once.
    for (let first = 0; first < order.length; first += B) {
      if (step++ >= opts.steps) return;
      yield packOne(encoded, order, first, B, T, tok.pad, opts.keyToken);
    }
  }
}
