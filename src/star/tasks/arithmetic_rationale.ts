// The rationale check of the arithmetic task: a scratchpad is kept only if every line follows from the one
// before it and the answer is what the last line says. The answer-only check (./arithmetic.ts isCorrect)
// accepts a completion whose scratchpad is wrong as long as its last line is right, which is exactly what a
// small model does when it is shown the answer as a hint: it writes any scratchpad and copies the hint. This
// check is what the `rationale` filter keeps (src/star/config.ts).
//
// A scratch line is "<a digits> + <b digits> , <sum digits> C: <carry>" (see ./arithmetic.ts scratchpad).
// From a line with operands a_1..a_k and b_1..b_k, sum digits S and carry c, the next line must have
// operands a_1..a_{k-1} and b_1..b_{k-1}, sum digits ((a_k + b_k + c) mod 10) S and carry
// floor((a_k + b_k + c) / 10). The first line is the problem itself with no sum digits and carry 0; once no
// operand digits are left, the next line is the carry followed by the sum digits, then "</scratch>", then
// the answer: that number without leading zeros.

import type { Problem } from './arithmetic';

/** What is wrong with the first wrong line. */
export type RationaleFault =
  | 'format' // the line does not parse as a scratch line (or the markup is missing)
  | 'input' // the first line is not the problem
  | 'copy' // the operand digits are not the previous line's minus their last digit
  | 'sum' // the new sum digit is wrong
  | 'carry' // the carry is wrong
  | 'sum-copy' // the earlier sum digits were not carried over unchanged
  | 'final' // the line after the last scratch line is not the carry followed by the sum digits
  | 'answer' // the answer line is not the final line's number
  | 'truncated'; // the completion ends before its answer line

export type RationaleCheck = { ok: true } | { ok: false; line: number; fault: RationaleFault; text: string };

interface ScratchLine {
  a: number[];
  b: number[];
  sum: number[];
  carry: number;
}

const SCRATCH_LINE = /^(?:((?:\d )*\d) \+ ((?:\d )*\d) )?,(?: ((?:\d )*\d))? C: (\d)$/;
const DIGITS_LINE = /^\d( \d)*$/;

const digitsOf = (s: string | undefined): number[] => (s === undefined ? [] : s.split(' ').map(Number));
const same = (x: number[], y: number[]) => x.length === y.length && x.every((v, i) => v === y[i]);

function parseLine(line: string): ScratchLine | null {
  const m = SCRATCH_LINE.exec(line);
  if (!m) return null;
  const a = digitsOf(m[1]);
  const b = digitsOf(m[2]);
  if (a.length !== b.length) return null;
  return { a, b, sum: digitsOf(m[3]), carry: Number(m[4]) };
}

/** The first fault of one step from `prev` to `next`, or null when `next` follows. */
function stepFault(prev: ScratchLine, next: ScratchLine): RationaleFault | null {
  const k = prev.a.length;
  if (!same(next.a, prev.a.slice(0, k - 1)) || !same(next.b, prev.b.slice(0, k - 1))) return 'copy';
  const s = prev.a[k - 1] + prev.b[k - 1] + prev.carry;
  if (next.sum.length !== prev.sum.length + 1) return 'sum-copy';
  if (next.sum[0] !== s % 10) return 'sum';
  if (!same(next.sum.slice(1), prev.sum)) return 'sum-copy';
  if (next.carry !== Math.floor(s / 10)) return 'carry';
  return null;
}

/**
 * Checks a completion's scratchpad line by line against the problem. Line numbers are 1-based within the
 * completion ("<scratch>" is line 1). Anything after the answer line is ignored, as the answer check does.
 */
export function checkRationale(p: Problem, completion: string): RationaleCheck {
  const lines = completion.split('\n');
  const fail = (i: number, fault: RationaleFault): RationaleCheck => ({ ok: false, line: i + 1, fault, text: lines[i] ?? '' });
  // The answer line must end with a newline, so the last element of split() is never a complete line.
  const complete = lines.length - 1;
  if (complete < 1) return fail(0, 'truncated');
  if (lines[0] !== '<scratch>') return fail(0, 'format');
  const input: ScratchLine = { a: [...String(p.a)].map(Number), b: [...String(p.b)].map(Number), sum: [], carry: 0 };
  let prev: ScratchLine | null = null;
  let i = 1;
  for (; i <= p.digits + 1; i++) {
    if (i >= complete) return fail(i, 'truncated');
    const line = parseLine(lines[i]);
    if (line === null) return fail(i, 'format');
    if (prev === null) {
      if (!same(line.a, input.a) || !same(line.b, input.b) || line.sum.length > 0 || line.carry !== 0) return fail(i, 'input');
    } else {
      const fault = stepFault(prev, line);
      if (fault) return fail(i, fault);
    }
    prev = line;
  }
  // prev has no operand digits left: the final line, the closing tag, the answer.
  if (i >= complete) return fail(i, 'truncated');
  if (!DIGITS_LINE.test(lines[i]) || !same(digitsOf(lines[i]), [prev!.carry, ...prev!.sum])) return fail(i, 'final');
  const value = BigInt(lines[i].replace(/ /g, ''));
  i++;
  if (i >= complete) return fail(i, 'truncated');
  if (lines[i] !== '</scratch>') return fail(i, 'format');
  i++;
  if (i >= complete) return fail(i, 'truncated');
  if (lines[i] !== [...value.toString()].join(' ')) return fail(i, 'answer');
  return { ok: true };
}

/** True when the whole scratchpad is right (see checkRationale). */
export function isRationaleCorrect(p: Problem, completion: string): boolean {
  return checkRationale(p, completion).ok;
}
