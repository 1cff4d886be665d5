import { describe, expect, it } from 'vitest';
import { isCorrect, makeProblem, sampleProblems, scratchpad } from '../../src/star/tasks/arithmetic';
import { checkRationale, isRationaleCorrect } from '../../src/star/tasks/arithmetic_rationale';

const lines = (...xs: string[]) => xs.join('\n') + '\n';
const p29 = makeProblem(29, 57);

describe('the arithmetic rationale check', () => {
  it('accepts the task\'s own scratchpad for every problem, with or without trailing text', () => {
    for (const p of sampleProblems(300, { minDigits: 1, maxDigits: 7, seed: 3 })) {
      expect(checkRationale(p, scratchpad(p))).toEqual({ ok: true });
      expect(isRationaleCorrect(p, `${scratchpad(p)}Input:\n1`)).toBe(true);
    }
    for (const [a, b] of [[999, 999], [500, 500], [5, 5], [1, 1]]) expect(isRationaleCorrect(makeProblem(a, b), scratchpad(makeProblem(a, b)))).toBe(true);
  });

  // Each case: a completion that reaches the right answer line (so the answer-only check accepts it) but
  // whose scratchpad is wrong in one way; the check names the line and the fault.
  const wrong: [string, string, number, string][] = [
    ['the first line is not the problem', lines('<scratch>', '2 8 + 5 7 , C: 0', '2 + 5 , 5 C: 1', ', 8 5 C: 0', '0 8 5', '</scratch>', '8 6'), 2, 'input'],
    ['operand digits dropped from the wrong end', lines('<scratch>', '2 9 + 5 7 , C: 0', '9 + 7 , 6 C: 1', ', 8 6 C: 0', '0 8 6', '</scratch>', '8 6'), 3, 'copy'],
    ['a wrong sum digit', lines('<scratch>', '2 9 + 5 7 , C: 0', '2 + 5 , 7 C: 1', ', 8 7 C: 0', '0 8 7', '</scratch>', '8 6'), 3, 'sum'],
    ['a wrong carry', lines('<scratch>', '2 9 + 5 7 , C: 0', '2 + 5 , 6 C: 0', ', 8 6 C: 0', '0 8 6', '</scratch>', '8 6'), 3, 'carry'],
    ['earlier sum digits changed', lines('<scratch>', '2 9 + 5 7 , C: 0', '2 + 5 , 6 C: 1', ', 8 5 C: 0', '0 8 6', '</scratch>', '8 6'), 4, 'sum-copy'],
    ['a sum digit missing', lines('<scratch>', '2 9 + 5 7 , C: 0', '2 + 5 , 6 C: 1', ', 8 C: 0', '0 8 6', '</scratch>', '8 6'), 4, 'sum-copy'],
    ['a final line that is not the carry and the sums', lines('<scratch>', '2 9 + 5 7 , C: 0', '2 + 5 , 6 C: 1', ', 8 6 C: 0', '1 8 6', '</scratch>', '8 6'), 5, 'final'],
    ['a garbled line', lines('<scratch>', '2 9 + 5 7 , C: 0', '2 + 5 6 C: 1', ', 8 6 C: 0', '0 8 6', '</scratch>', '8 6'), 3, 'format'],
    ['operands of different lengths', lines('<scratch>', '2 9 + 5 7 , C: 0', '2 + 5 7 , 6 C: 1', ', 8 6 C: 0', '0 8 6', '</scratch>', '8 6'), 3, 'format'],
    ['a scratch line too many', lines('<scratch>', '2 9 + 5 7 , C: 0', '2 + 5 , 6 C: 1', ', 8 6 C: 0', ', 8 6 C: 0', '0 8 6', '</scratch>', '8 6'), 5, 'final'],
    ['a scratch line too few', lines('<scratch>', '2 9 + 5 7 , C: 0', ', 8 6 C: 0', '0 8 6', '</scratch>', '8 6'), 3, 'copy'],
    ['no opening tag', lines('2 9 + 5 7 , C: 0', '2 + 5 , 6 C: 1', ', 8 6 C: 0', '0 8 6', '</scratch>', '8 6'), 1, 'format'],
    ['no closing tag', lines('<scratch>', '2 9 + 5 7 , C: 0', '2 + 5 , 6 C: 1', ', 8 6 C: 0', '0 8 6', '8 6'), 6, 'format'],
  ];
  for (const [what, text, line, fault] of wrong) {
    it(`rejects ${what} (line ${line}: ${fault})`, () => {
      const check = checkRationale(p29, text);
      expect(check).toMatchObject({ ok: false, line, fault });
    });
  }

  it('most of those wrong scratchpads pass the answer-only check: that is why the rationale filter exists', () => {
    const passing = wrong.filter(([, text]) => isCorrect(p29, text));
    expect(passing.length).toBeGreaterThanOrEqual(wrong.length - 2);
  });

  it('rejects a wrong answer after a right scratchpad, and every truncation', () => {
    const right = scratchpad(p29);
    expect(checkRationale(p29, right.replace(/8 6\n$/, '8 7\n'))).toMatchObject({ ok: false, line: 7, fault: 'answer' });
    expect(checkRationale(p29, right.replace(/8 6\n$/, '0 8 6\n'))).toMatchObject({ ok: false, fault: 'answer' });
    for (let cut = 0; cut < right.length; cut++) {
      const check = checkRationale(p29, right.slice(0, cut));
      expect(check.ok, `cut at ${cut}`).toBe(false);
    }
    expect(checkRationale(p29, '')).toMatchObject({ ok: false, fault: 'truncated' });
    expect(checkRationale(p29, right.slice(0, -1))).toMatchObject({ ok: false, fault: 'truncated' });
  });

  it('checks 15-digit problems exactly (sums past 2^53 stay exact)', () => {
    const p = makeProblem(999_999_999_999_999, 999_999_999_999_999);
    expect(isRationaleCorrect(p, scratchpad(p))).toBe(true);
  });
});
