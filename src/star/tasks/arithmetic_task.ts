// The arithmetic task as the STaR loop sees it (a TaskAdapter over ./arithmetic.ts). The base model is
// trained from scratch on small problems, so the task supplies a seed set; half of it is shown with the
// hint, so the base model already knows how to use one when rationalization asks it to.

import type { StarConfig } from '../config';
import type { Example, TaskAdapter } from '../types';
import { directTarget, isCorrect, makeProblem, parseAnswer, type Problem, problemPrompt, sampleProblems, scratchpad } from './arithmetic';
import { arithmeticTokenizer } from './char_tokenizer';

export type ArithmeticTaskOptions = Pick<StarConfig, 'minDigits' | 'maxDigits' | 'seedMinDigits' | 'seedMaxDigits'>;

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
  return {
    name: 'arithmetic',
    trainProblems: (n, seed) => sampleProblems(n, { ...range, seed }),
    // Same digit range as training: the paper reports accuracy per digit count over the trained range.
    evalProblems: (n, seed) => sampleProblems(n, { ...range, seed }),
    seedExamples(n, seed): Example[] {
      const problems = sampleProblems(n, { minDigits: opts.seedMinDigits, maxDigits: opts.seedMaxDigits, seed });
      // Alternate plain and hinted prompts: exactly half teach the model to follow a hint.
      return problems.map((p, i) => ({ prompt: problemPrompt(p, i % 2 === 1), target: scratchpad(p) }));
    },
    prompt: problemPrompt,
    directTarget,
    isCorrect,
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
