// The arithmetic task as the STaR loop sees it (a TaskAdapter over ./arithmetic.ts). The base model is
// trained from scratch on small problems, so the task supplies a seed set: problems of the seed range,
// half of them shown with the hint so the base model knows how to use one when rationalization asks it to,
// and optionally worked examples of longer problems shown with the hint only (what the paper's few-shot
// rationalization prompt shows). Every problem belongs to one split (./arithmetic.ts splitOf): the
// evaluation set, the seed phase's checks and everything trained on never share a problem of two digits
// or more.

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

export function arithmeticTask(opts: ArithmeticTaskOptions): TaskAdapter<Problem> {
  const range = { minDigits: opts.minDigits, maxDigits: opts.maxDigits };
  const seedRange = { minDigits: opts.seedMinDigits, maxDigits: opts.seedMaxDigits };
  return {
    name: 'arithmetic',
    trainProblems: (n, seed) => sampleProblems(n, { ...range, seed, split: 'train' }),
    // Same digit range as training: the paper reports accuracy per digit count over the trained range.
    evalProblems: (n, seed) => sampleProblems(n, { ...range, seed, split: 'eval' }),
    seedCheckProblems(n, seed) {
      const plain = sampleProblems(n, { ...seedRange, seed, split: 'check' });
      const longest = opts.seedHinted ? opts.seedHintMaxDigits ?? opts.seedMaxDigits : opts.seedMaxDigits;
      const longer = { minDigits: opts.seedMaxDigits + 1, maxDigits: longest, seed: (seed ^ 0x2c1b3c6d) >>> 0, split: 'check' as const };
      return { plain, hinted: longest > opts.seedMaxDigits ? sampleProblems(n, longer) : [] };
    },
    seedExamples(n, seed): Example[] {
      const problems = sampleProblems(n, { ...seedRange, seed, split: 'train' });
      // Alternate plain and hinted prompts: exactly half teach the model to follow a hint.
      const examples = problems.map((p, i) => ({ prompt: problemPrompt(p, i % 2 === 1), target: scratchpad(p) }));
      if (opts.seedHinted) {
        const long = { minDigits: opts.seedMinDigits, maxDigits: opts.seedHintMaxDigits ?? opts.seedMaxDigits, seed: (seed ^ 0x68e31da4) >>> 0, split: 'train' as const };
        for (const p of sampleProblems(opts.seedHinted, long)) examples.push({ prompt: problemPrompt(p, true), target: scratchpad(p) });
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
