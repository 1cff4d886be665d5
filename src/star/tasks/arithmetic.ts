// n-digit addition with a scratchpad: the arithmetic task of STaR (Zelikman et al. 2022, section 4.1),
// which takes the scratchpad format from Nye et al. 2021. For 29 + 57 the full text is
//
//   Input:
//   2 9 + 5 7
//   Target:
//   <scratch>
//   2 9 + 5 7 , C: 0
//   2 + 5 , 6 C: 1
//   , 8 6 C: 0
//   0 8 6
//   </scratch>
//   8 6
//
// Digits are separated by spaces so each one is its own token. Every scratch line shows the digits still
// to add, the sum digits produced so far and the carry; the line before </scratch> is the final carry
// followed by the sum digits; the last line is the answer without leading zeros.

import { randInt, rng } from '../../util/random';

export interface Problem {
  a: number;
  b: number;
  digits: number;
}

/** Sums stay exact in float64 up to 15-digit operands (2 * 10^15 < 2^53). */
const MAX_DIGITS = 15;

function digitCount(x: number): number {
  return String(x).length;
}

/** "29" or [2, 9] -> "2 9". */
function spaced(digits: string | number[]): string {
  return (typeof digits === 'string' ? [...digits] : digits).join(' ');
}

export function makeProblem(a: number, b: number): Problem {
  for (const [name, x] of [['a', a], ['b', b]] as const) {
    if (!Number.isInteger(x) || x < 0) throw new Error(`makeProblem: ${name} = ${x} is not a non-negative integer`);
    if (digitCount(x) > MAX_DIGITS) throw new Error(`makeProblem: ${name} = ${x} has more than ${MAX_DIGITS} digits`);
  }
  if (digitCount(a) !== digitCount(b)) {
    throw new Error(`makeProblem: ${a} and ${b} have different digit counts (${digitCount(a)} vs ${digitCount(b)})`);
  }
  return { a, b, digits: digitCount(a) };
}

/** The answer line's text, e.g. "8 6" (no leading zeros: 50 + 50 -> "1 0 0"). */
function answerLine(p: Problem): string {
  return spaced(String(p.a + p.b));
}

/**
 * The prompt the model continues. Without a hint: "Input:\n2 9 + 5 7\nTarget:\n".
 *
 * With `hint` (STaR's rationalization, where the model is shown the correct answer and asked to produce
 * a rationale for it) the answer follows "Target:" on the same line, after one space:
 * "Input:\n2 9 + 5 7\nTarget: 8 6\n". The completion format is unchanged, so a rationalized scratchpad
 * can be trained on with the plain (hint-free) prompt, as the paper does.
 */
export function problemPrompt(p: Problem, hint = false): string {
  const target = hint ? `Target: ${answerLine(p)}\n` : 'Target:\n';
  return `Input:\n${spaced(String(p.a))} + ${spaced(String(p.b))}\n${target}`;
}

/** The full target completion: "<scratch>\n...\n</scratch>\n8 6\n". */
export function scratchpad(p: Problem): string {
  const a = [...String(p.a)].map(Number);
  const b = [...String(p.b)].map(Number);
  const sum: number[] = []; // most significant first; each step prepends one digit
  let carry = 0;
  const lines = ['<scratch>'];
  for (let left = p.digits; left >= 0; left--) {
    const remaining = left > 0 ? `${spaced(a.slice(0, left))} + ${spaced(b.slice(0, left))}` : '';
    // Empty parts are dropped rather than joined, which gives "2 9 + 5 7 , C: 0" on the first line
    // (no sum digits yet) and ", 8 6 C: 0" on the last (no operand digits left).
    lines.push([remaining, ',', spaced(sum), 'C:', String(carry)].filter((s) => s !== '').join(' '));
    if (left > 0) {
      const s = a[left - 1] + b[left - 1] + carry;
      sum.unshift(s % 10);
      carry = Math.floor(s / 10);
    }
  }
  lines.push(spaced([carry, ...sum]), '</scratch>', answerLine(p));
  return lines.join('\n') + '\n';
}

/** The "direct" baseline's target (answer with no rationale): "8 6\n". */
export function directTarget(p: Problem): string {
  return `${answerLine(p)}\n`;
}

const ANSWER_LINE = /^\d( \d)*$/;

/**
 * The answer line of a completion, or null. In a scratchpad completion it is the line after "</scratch>";
 * a completion with no "<scratch>" at all is read as a direct-baseline completion whose first line is the
 * answer. The line must end with "\n": without it the output was cut off and may be missing digits.
 * Anything after the answer line is ignored (the sampler may run on past it).
 */
function answerText(completion: string): string | null {
  let rest = completion;
  const close = completion.indexOf('</scratch>\n');
  if (close >= 0) rest = completion.slice(close + '</scratch>\n'.length);
  else if (completion.includes('<scratch>')) return null; // rationale never closed: truncated
  const end = rest.indexOf('\n');
  if (end < 0) return null;
  const line = rest.slice(0, end);
  return ANSWER_LINE.test(line) ? line : null;
}

export function parseAnswer(completion: string): number | null {
  const line = answerText(completion);
  return line === null ? null : Number(line.replace(/ /g, ''));
}

/** Exact text match of the answer line, so "0 8 6" (a leading zero) does not count as 86. */
export function isCorrect(p: Problem, completion: string): boolean {
  return answerText(completion) === answerLine(p);
}

/**
 * Which split a problem belongs to, fixed by the problem alone: 'eval' (a tenth of the problems), 'check' (a
 * tenth: the seed phase's mastery checks) or 'train'. Problems of a split are never drawn for another, whatever
 * the seeds, sizes and digit ranges of a run, so a model never trains on a problem it is scored on; except with
 * one digit, where there are only 81 problems and every split draws from all of them.
 */
export type Split = 'eval' | 'check' | 'train';

export function splitOf(p: Problem): Split {
  if (p.digits === 1) return 'train';
  let h = 0x811c9dc5; // FNV-1a of "a+b"
  for (const ch of `${p.a}+${p.b}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  const bucket = h % 10;
  return bucket === 0 ? 'eval' : bucket === 1 ? 'check' : 'train';
}

/**
 * `n` problems: the digit count uniform in [minDigits, maxDigits], then both operands uniform among the
 * numbers with exactly that many digits (leading digit nonzero, so 1-digit operands are 1..9). With `split`,
 * only problems of that split (see splitOf; one-digit problems belong to every split). Deterministic for a seed.
 */
export function sampleProblems(n: number, opts: { minDigits: number; maxDigits: number; seed: number; split?: Split }): Problem[] {
  const { minDigits, maxDigits, seed, split } = opts;
  if (!Number.isInteger(n) || n < 0) throw new Error(`sampleProblems: n = ${n} is not a non-negative integer`);
  if (!Number.isInteger(minDigits) || !Number.isInteger(maxDigits) || minDigits < 1 || maxDigits < minDigits || maxDigits > MAX_DIGITS) {
    throw new Error(`sampleProblems: need integers 1 <= minDigits <= maxDigits <= ${MAX_DIGITS}, got ${minDigits}..${maxDigits}`);
  }
  const r = rng(seed);
  const out: Problem[] = [];
  for (let i = 0; i < n; i++) {
    const d = randInt(r, minDigits, maxDigits);
    const lo = 10 ** (d - 1);
    const hi = 10 ** d - 1;
    let p = makeProblem(randInt(r, lo, hi), randInt(r, lo, hi));
    while (split !== undefined && d > 1 && splitOf(p) !== split) p = makeProblem(randInt(r, lo, hi), randInt(r, lo, hi));
    out.push(p);
  }
  return out;
}

/** One line of a problems file, `{"a": 123, "b": 456}`; errors name the (1-based, caller-given) line. */
export function parseProblemLine(line: string, lineNo: number): Problem {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    throw new Error(`line ${lineNo}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`line ${lineNo}: expected an object like {"a": 123, "b": 456}`);
  }
  const obj = value as Record<string, unknown>;
  for (const key of ['a', 'b']) {
    if (!Object.hasOwn(obj, key)) throw new Error(`line ${lineNo}: missing field "${key}"`);
    const x = obj[key];
    if (typeof x !== 'number') throw new Error(`line ${lineNo}: field "${key}" is not a number`);
    // Checked here, before String(x) counts digits: 1e21 prints as "1e+21", five characters.
    if (x >= 10 ** MAX_DIGITS) throw new Error(`line ${lineNo}: field "${key}" = ${x} has more than ${MAX_DIGITS} digits`);
  }
  try {
    return makeProblem(obj.a as number, obj.b as number);
  } catch (e) {
    throw new Error(`line ${lineNo}: ${(e as Error).message.replace(/^makeProblem: /, '')}`);
  }
}

/** Longest line a problems file may hold: a real one is a few dozen characters; this bounds memory on a file with no newlines. */
export const MAX_PROBLEM_LINE = 4096;

/**
 * Every problem of a problems file (a JSON object per line, blank lines skipped), read chunk by chunk
 * (a file stream, a fetch body decoded to text), so a file of any size is never held as one string.
 * Errors name `fileName` and the first bad line, with its 1-based number; a file with no problem is an error.
 */
export async function parseProblemsFile(chunks: AsyncIterable<string> | Iterable<string>, fileName = 'problems file'): Promise<Problem[]> {
  const problems: Problem[] = [];
  let lineNo = 0;
  let rest = ''; // the line the last chunk cut short
  const tooLong = (n: number) =>
    new Error(`${fileName}: line ${n} is longer than ${MAX_PROBLEM_LINE} characters; each line holds one problem, like {"a": 123, "b": 456}.`);
  const line = (text: string) => {
    lineNo++;
    if (text.length > MAX_PROBLEM_LINE) throw tooLong(lineNo);
    if (text.trim() === '') return;
    try {
      problems.push(parseProblemLine(text, lineNo));
    } catch (e) {
      throw new Error(`${fileName}: ${(e as Error).message}`);
    }
  };
  for await (const chunk of chunks) {
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl >= 0; nl = chunk.indexOf('\n', start)) {
      line(rest + chunk.slice(start, nl));
      rest = '';
      start = nl + 1;
    }
    rest += chunk.slice(start);
    if (rest.length > MAX_PROBLEM_LINE) throw tooLong(lineNo + 1); // before the file's end: memory stays bounded
  }
  line(rest);
  if (problems.length === 0) throw new Error(`${fileName} holds no problems.`);
  return problems;
}
