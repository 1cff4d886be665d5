// The arithmetic task as the STaR loop sees it (a TaskAdapter over ./arithmetic.ts). The base model is
// trained from scratch on small problems, so the task supplies a seed set: problems of the seed range,
// half of them shown with the hint so the base model knows how to use one when rationalization asks it to,
// and optionally worked examples of longer problems shown with the hint only (what the paper's few-shot
// rationalization prompt shows). Held-out problems (the evaluation set, the seed phase's checks) are left
// out of what is trained on wherever the digit count leaves room for it.

import { rng } from '../../util/random';
import type { StarConfig } from '../config';
import type { Example, TaskAdapter } from '../types';
import { directTarget, isCorrect, makeProblem, parseAnswer, type Problem, problemPrompt, sampleProblems, scratchpad } from './arithmetic';
import { isRationaleCorrect } from './arithmetic_rationale';
import { arithmeticTokenizer } from './char_tokenizer';

export type ArithmeticTaskOptions = Pick<StarConfig, 'minDigits' | 'maxDigits' | 'seedMinDigits' | 'seedMaxDigits'> &
  Partial<Pick<StarConfig, 'seedHinted' | 'seedHintMaxDigits'>>;

const SCRATCH_END = '</scratch>\n';

/**
 * Where a completion ends: the index just past its answer line's "\n", or -1 while it is unfinished.
 * A scratchpad completion ends at the first newline after "</scratch>\n"; a completion without
 * "<scratch>" (the direct baseline) ends at its first newline. Mirrors the parser in ./arithmetic.ts.
 */
export function arithmeticEnd(text: string): number {
  const close = text.indexOf(SCRATCH_END);
  if (close < 0 && text.includes('<scratch>')) return -1;
  const from = close < 0 ? 0 : close + SCRATCH_END.length;
  const nl = text.indexOf('\n', from);
  return nl < 0 ? -1 : nl + 1;
}

/** True once a completion is complete; generation can stop there. */
export function arithmeticStop(text: string): boolean {
  return arithmeticEnd(text) >= 0;
}

const worstLength = new Map<number, number>();

/**
 * Token budget for a d-digit problem: the longest correct completion (all nines, so every column
 * carries and the answer has d + 1 digits) plus a quarter for a model that writes extra scratch
 * lines but still lands on the answer, plus the EOS.
 */
function maxNewTokens(digits: number): number {
  let n = worstLength.get(digits);
  if (n === undefined) {
    const nines = 10 ** digits - 1;
    n = arithmeticTokenizer.encode(scratchpad(makeProblem(nines, nines))).length;
    worstLength.set(digits, n);
  }
  return Math.ceil(n * 1.25) + 1;
}

const key = (p: Problem) => `${p.a}+${p.b}`;

/** Distinct problems whose operands both have d digits (9 * 10^(d-1) choices each). */
const distinctProblems = (d: number) => (9 * 10 ** (d - 1)) ** 2;

/**
 * `n` problems drawn as sampleProblems draws them, except that a problem of `heldOut` is drawn again (same
 * digit count, a seeded stream of its own) at every digit count where leaving the held-out problems out still
 * leaves at least half of that count's problems. Below that (one digit: 81 problems in all) they stay, and
 * `poolOverlap` in the loop counts them.
 */
export function sampleAvoiding(n: number, opts: { minDigits: number; maxDigits: number; seed: number }, heldOut: Problem[] = []): Problem[] {
  const drawn = sampleProblems(n, opts);
  if (heldOut.length === 0) return drawn;
  const held = new Set(heldOut.map(key));
  const perDigits = new Map<number, number>();
  for (const k of held) {
    const d = k.indexOf('+');
    perDigits.set(d, (perDigits.get(d) ?? 0) + 1);
  }
  const roomy = (d: number) => (perDigits.get(d) ?? 0) <= distinctProblems(d) / 2;
  const r = rng((opts.seed ^ 0x5bd1e995) >>> 0);
  return drawn.map((p) => {
    let q = p;
    while (held.has(key(q)) && roomy(q.digits)) {
      const lo = 10 ** (q.digits - 1);
      const pick = () => lo + Math.floor(r() * 9 * lo);
      q = makeProblem(pick(), pick());
    }
    return q;
  });
}

export function arithmeticTask(opts: ArithmeticTaskOptions): TaskAdapter<Problem> {
  const range = { minDigits: opts.minDigits, maxDigits: opts.maxDigits };
  const seedRange = { minDigits: opts.seedMinDigits, maxDigits: opts.seedMaxDigits };
  return {
    name: 'arithmetic',
    trainProblems: (n, seed, heldOut) => sampleAvoiding(n, { ...range, seed }, heldOut),
    // Same digit range as training: the paper reports accuracy per digit count over the trained range.
    evalProblems: (n, seed) => sampleProblems(n, { ...range, seed }),
    seedCheckProblems: (n, seed, heldOut) => sampleAvoiding(n, { ...seedRange, seed }, heldOut),
    seedExamples(n, seed, heldOut): Example[] {
      const problems = sampleAvoiding(n, { ...seedRange, seed }, heldOut);
      // Alternate plain and hinted prompts: exactly half teach the model to follow a hint.
      const examples = problems.map((p, i) => ({ prompt: problemPrompt(p, i % 2 === 1), target: scratchpad(p) }));
      if (opts.seedHinted) {
        const long = { minDigits: opts.seedMinDigits, maxDigits: opts.seedHintMaxDigits ?? opts.seedMaxDigits, seed: (seed ^ 0x68e31da4) >>> 0 };
        for (const p of sampleAvoiding(opts.seedHinted, long, heldOut)) examples.push({ prompt: problemPrompt(p, true), target: scratchpad(p) });
      }
      return examples;
    },
    prompt: problemPrompt,
    directTarget,
    isCorrect,
    isRationaleCorrect,
    fromJSON(json) {
      const { a, b } = (json ?? {}) as { a?: unknown; b?: unknown };
      if (typeof a !== 'number' || typeof b !== 'number') throw new Error(`arithmetic: ${JSON.stringify(json)} is not a problem record {"a", "b"}`);
      return makeProblem(a, b);
    },
    answerOf(completion) {
      const n = parseAnswer(completion);
      return n === null ? null : String(n);
    },
    category: (p) => String(p.digits),
    maxNewTokens: (p) => maxNewTokens(p.digits),
    // The end is "the newline after the answer line", and the answer varies, so no fixed stop string can
    // say it (stopping at "\n" would end at the scratchpad's first line). Generation ends instead at the
    // EOS the model is trained to emit after every target (see train/batches.ts), at `end`, or at
    // maxNewTokens; the checker ignores anything after the answer line either way.
    stop: [],
    end: arithmeticEnd,
    toJSON: (p) => ({ a: p.a, b: p.b }),
  };
}

const tokenId = (s: string) => arithmeticTokenizer.encode(s)[0];
const DIGIT_IDS = new Set([...'0123456789'].map(tokenId));
const [SPACE, COMMA, COLON] = [' ', ',', ':'].map(tokenId);

/**
 * The scratchpad's key tokens: each line's new sum digit (after ", ") and its carry (after "C: "). Every other
 * token of a scratchpad is a copy or markup, so a mean loss over all of them hides whether the sums are right.
 */
export function arithmeticKeyToken(ids: readonly number[], t: number): boolean {
  return t >= 2 && DIGIT_IDS.has(ids[t]) && ids[t - 1] === SPACE && (ids[t - 2] === COMMA || ids[t - 2] === COLON);
}
