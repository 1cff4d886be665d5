import { describe, expect, it } from 'vitest';
import {
  directTarget,
  isCorrect,
  makeProblem,
  parseAnswer,
  parseProblemLine,
  problemPrompt,
  sampleProblems,
  scratchpad,
} from '../../src/star/tasks/arithmetic';
import { arithmeticTokenizer as tok, createCharTokenizer } from '../../src/star/tasks/char_tokenizer';

const lines = (...xs: string[]) => xs.join('\n') + '\n';

describe('arithmetic format', () => {
  it('renders 29 + 57 exactly as in the paper', () => {
    const p = makeProblem(29, 57);
    expect(problemPrompt(p) + scratchpad(p)).toBe(
      lines(
        'Input:',
        '2 9 + 5 7',
        'Target:',
        '<scratch>',
        '2 9 + 5 7 , C: 0',
        '2 + 5 , 6 C: 1',
        ', 8 6 C: 0',
        '0 8 6',
        '</scratch>',
        '8 6',
      ),
    );
  });

  it('carries through every column (999 + 999)', () => {
    expect(scratchpad(makeProblem(999, 999))).toBe(
      lines(
        '<scratch>',
        '9 9 9 + 9 9 9 , C: 0',
        '9 9 + 9 9 , 8 C: 1',
        '9 + 9 , 9 8 C: 1',
        ', 9 9 8 C: 1',
        '1 9 9 8',
        '</scratch>',
        '1 9 9 8',
      ),
    );
  });

  it('carries only out of the top column (500 + 500)', () => {
    expect(scratchpad(makeProblem(500, 500))).toBe(
      lines('<scratch>', '5 0 0 + 5 0 0 , C: 0', '5 0 + 5 0 , 0 C: 0', '5 + 5 , 0 0 C: 0', ', 0 0 0 C: 1', '1 0 0 0', '</scratch>', '1 0 0 0'),
    );
  });

  it('handles no carries (123 + 456)', () => {
    expect(scratchpad(makeProblem(123, 456))).toBe(
      lines('<scratch>', '1 2 3 + 4 5 6 , C: 0', '1 2 + 4 5 , 9 C: 0', '1 + 4 , 7 9 C: 0', ', 5 7 9 C: 0', '0 5 7 9', '</scratch>', '5 7 9'),
    );
  });

  it('handles 1-digit problems with and without a carry', () => {
    expect(scratchpad(makeProblem(5, 7))).toBe(lines('<scratch>', '5 + 7 , C: 0', ', 2 C: 1', '1 2', '</scratch>', '1 2'));
    expect(scratchpad(makeProblem(3, 4))).toBe(lines('<scratch>', '3 + 4 , C: 0', ', 7 C: 0', '0 7', '</scratch>', '7'));
  });

  it('drops leading zeros from the answer but keeps a lone zero', () => {
    expect(directTarget(makeProblem(50, 50))).toBe('1 0 0\n');
    expect(directTarget(makeProblem(29, 57))).toBe('8 6\n');
    expect(directTarget(makeProblem(0, 0))).toBe('0\n');
  });

  it('puts the answer in the prompt only when hinted', () => {
    const p = makeProblem(29, 57);
    expect(problemPrompt(p)).toBe('Input:\n2 9 + 5 7\nTarget:\n');
    expect(problemPrompt(p, true)).toBe('Input:\n2 9 + 5 7\nTarget: 8 6\n');
    expect(problemPrompt(p)).not.toContain('8 6');
  });

  it('rejects operands of different lengths, negative or fractional', () => {
    expect(() => makeProblem(99, 1)).toThrow(/different digit counts/);
    expect(() => makeProblem(-12, 34)).toThrow(/non-negative integer/);
    expect(() => makeProblem(1.5, 2)).toThrow(/non-negative integer/);
    expect(() => makeProblem(NaN, 2)).toThrow(/non-negative integer/);
  });
});

describe('answer checking', () => {
  const p = makeProblem(29, 57);

  it('accepts the reference scratchpad and the direct target', () => {
    expect(parseAnswer(scratchpad(p))).toBe(86);
    expect(isCorrect(p, scratchpad(p))).toBe(true);
    expect(isCorrect(p, directTarget(p))).toBe(true);
    // Whatever the sampler produced after the answer line does not matter.
    expect(isCorrect(p, scratchpad(p) + 'Input:\n1 2')).toBe(true);
  });

  it('rejects a wrong answer', () => {
    const wrong = scratchpad(p).replace(/8 6\n$/, '8 7\n');
    expect(parseAnswer(wrong)).toBe(87);
    expect(isCorrect(p, wrong)).toBe(false);
  });

  it('rejects a leading zero by exact match, though it parses', () => {
    const padded = scratchpad(p).replace(/8 6\n$/, '0 8 6\n');
    expect(parseAnswer(padded)).toBe(86);
    expect(isCorrect(p, padded)).toBe(false);
  });

  it('returns null for truncated or malformed output', () => {
    const full = scratchpad(p);
    for (const cut of [0, 10, full.indexOf('</scratch>'), full.length - 2, full.length - 1]) {
      expect(parseAnswer(full.slice(0, cut)), `cut at ${cut}`).toBeNull();
      expect(isCorrect(p, full.slice(0, cut))).toBe(false);
    }
    expect(parseAnswer('<scratch>\n</scratch>\n8  6\n')).toBeNull();
    expect(parseAnswer('<scratch>\n</scratch>\n86\n')).toBeNull();
    expect(parseAnswer('<scratch>\n</scratch>\n\n')).toBeNull();
    expect(parseAnswer('<scratch>\n</scratch>\nC: 1\n')).toBeNull();
  });
});

describe('sampleProblems', () => {
  it('is deterministic for a seed', () => {
    const opts = { minDigits: 1, maxDigits: 5, seed: 42 };
    expect(sampleProblems(50, opts)).toEqual(sampleProblems(50, opts));
    expect(sampleProblems(50, opts)).not.toEqual(sampleProblems(50, { ...opts, seed: 43 }));
  });

  it('draws digit counts uniformly and operands with exactly that many digits', () => {
    const ps = sampleProblems(4000, { minDigits: 2, maxDigits: 5, seed: 7 });
    const counts = new Map<number, number>();
    for (const p of ps) {
      expect(String(p.a).length).toBe(p.digits);
      expect(String(p.b).length).toBe(p.digits);
      counts.set(p.digits, (counts.get(p.digits) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([2, 3, 4, 5]);
    // Each of 4 counts expects 1000; +-150 is more than 5 standard deviations (sd ~ 27).
    for (const c of counts.values()) expect(Math.abs(c - 1000)).toBeLessThan(150);
  });

  it('uses 1..9 for 1-digit operands', () => {
    const ps = sampleProblems(500, { minDigits: 1, maxDigits: 1, seed: 1 });
    const seen = new Set(ps.flatMap((p) => [p.a, p.b]));
    expect([...seen].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('rejects bad ranges', () => {
    expect(() => sampleProblems(1, { minDigits: 0, maxDigits: 2, seed: 1 })).toThrow(/minDigits/);
    expect(() => sampleProblems(1, { minDigits: 3, maxDigits: 2, seed: 1 })).toThrow(/minDigits/);
    expect(() => sampleProblems(1, { minDigits: 1, maxDigits: 16, seed: 1 })).toThrow(/maxDigits/);
  });
});

describe('parseProblemLine', () => {
  it('parses a problem', () => {
    expect(parseProblemLine('{"a": 123, "b": 456}', 1)).toEqual({ a: 123, b: 456, digits: 3 });
  });

  it('names the line in every error', () => {
    expect(() => parseProblemLine('{"a": 12, "b": ', 3)).toThrow(/^line 3: not valid JSON/);
    expect(() => parseProblemLine('[1, 2]', 4)).toThrow(/^line 4: expected an object/);
    expect(() => parseProblemLine('{"a": 12}', 5)).toThrow(/^line 5: missing field "b"/);
    expect(() => parseProblemLine('{"a": "12", "b": 34}', 6)).toThrow(/^line 6: field "a" is not a number/);
    expect(() => parseProblemLine('{"a": 123, "b": 45}', 7)).toThrow(/^line 7: .*different digit counts/);
    expect(() => parseProblemLine('{"a": -12, "b": 45}', 8)).toThrow(/^line 8: .*non-negative integer/);
  });
});

describe('char tokenizer', () => {
  it('round-trips every character and word, one token each', () => {
    for (const piece of [...'0123456789 +,C:\n', '<scratch>', '</scratch>', 'Input:', 'Target:']) {
      const ids = tok.encode(piece);
      expect(ids, JSON.stringify(piece)).toHaveLength(1);
      expect(ids[0]).toBeGreaterThan(tok.eos);
      expect(tok.decode(ids)).toBe(piece);
      expect(tok.tokenText(ids[0])).toBe(piece);
    }
    expect(tok.vocabSize).toBe(3 + 16 + 4);
    expect([tok.pad, tok.bos, tok.eos]).toEqual([0, 1, 2]);
  });

  it('round-trips full prompts and scratchpads, with markup as single tokens', () => {
    for (const p of [makeProblem(29, 57), makeProblem(999, 999), ...sampleProblems(20, { minDigits: 1, maxDigits: 8, seed: 3 })]) {
      for (const text of [problemPrompt(p) + scratchpad(p), problemPrompt(p, true) + directTarget(p)]) {
        const ids = tok.encode(text);
        expect(ids.every((id) => id > tok.eos && id < tok.vocabSize)).toBe(true);
        expect(tok.decode(ids)).toBe(text);
      }
    }
    expect(tok.encode('Input:\n</scratch>').map((id) => tok.tokenText(id))).toEqual(['Input:', '\n', '</scratch>']);
  });

  it('skips special tokens when decoding', () => {
    expect(tok.decode([tok.bos, ...tok.encode('8 6\n'), tok.eos, tok.pad, tok.pad])).toBe('8 6\n');
    expect(tok.tokenText(tok.eos)).toBe('<eos>');
  });

  it('names a character it cannot encode', () => {
    expect(() => tok.encode('2 9 - 5 7')).toThrow(/cannot encode character "-" \(U\+002D\) at position 4/);
    expect(() => tok.encode('<scratch')).toThrow(/"<"/);
    expect(() => tok.encode('1 😀')).toThrow(/"😀" \(U\+1F600\)/);
    expect(() => tok.decode([tok.vocabSize])).toThrow(/outside the vocabulary/);
  });

  it('matches the longest piece first', () => {
    const t = createCharTokenizer(['a', 'ab', 'abc', 'b', 'c']);
    expect(t.encode('abcab').map((id) => t.tokenText(id))).toEqual(['abc', 'ab']);
    expect(t.encode('ba').map((id) => t.tokenText(id))).toEqual(['b', 'a']);
    expect(() => createCharTokenizer(['a', 'a'])).toThrow(/duplicate/);
  });
});
