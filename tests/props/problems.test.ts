// Problems files (`npm run star -- eval --file`): any line, valid, mutated or random, gives a Problem or an
// Error naming the line, never another kind of crash; a file is read chunk by chunk, a million lines fast,
// lines cut anywhere between chunks, and a file with no newline at all is refused before it fills memory.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PROBLEM_LINE, parseProblemLine, parseProblemsFile, type Problem } from '../../src/star/tasks/arithmetic';
import { cleanError, mutatedText, PROPS } from './props';

/** `text` in chunks of the given sizes (cycled), as a stream would deliver it. */
function* chunked(text: string, sizes: number[]): Generator<string> {
  for (let at = 0, i = 0; at < text.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]);
    yield text.slice(at, at + n);
    at += n;
  }
}

const operands = fc.integer({ min: 1, max: 15 }).chain((d) => {
  const digits = fc.integer({ min: d === 1 ? 0 : 10 ** (d - 1), max: 10 ** d - 1 });
  return fc.tuple(digits, digits);
});

describe('parseProblemLine (property-based)', () => {
  it('reads back every valid line, whatever spacing and key order', () => {
    fc.assert(
      fc.property(operands, fc.boolean(), fc.nat(3), ([a, b], swap, pad) => {
        const sp = ' '.repeat(pad);
        const line = swap ? `{${sp}"b":${sp}${b},"a":${a}${sp}}` : `{"a": ${a}, "b": ${b}}${sp}`;
        const p = parseProblemLine(line, 7);
        expect([p.a, p.b, p.digits]).toEqual([a, b, String(a).length]);
      }),
      PROPS,
    );
  });

  it('a mutated or random line gives a Problem with sane digits or an Error naming the line', () => {
    const valid = operands.map(([a, b]) => `{"a": ${a}, "b": ${b}}`);
    fc.assert(
      fc.property(fc.oneof(mutatedText(valid), fc.string(), fc.json()), (line) => {
        let p: Problem;
        try {
          p = parseProblemLine(line, 42);
        } catch (e) {
          cleanError(e, /^line 42: /);
          return;
        }
        // Whatever it accepted is a problem the scratchpad can be written for.
        for (const x of [p.a, p.b]) {
          expect(Number.isSafeInteger(x) && x >= 0).toBe(true);
          expect(String(x)).toMatch(/^\d{1,15}$/);
          expect(String(x).length).toBe(p.digits);
        }
      }),
      PROPS,
    );
  });

  it('refuses operands too large to count digits of by printing them (1e21 prints as "1e+21")', () => {
    expect(() => parseProblemLine('{"a": 1e21, "b": 12345}', 3)).toThrow(/^line 3: field "a" = 1e\+21 has more than 15 digits/);
    expect(() => parseProblemLine('{"a": 1000000000000000, "b": 1000000000000000}', 3)).toThrow(/more than 15 digits/);
  });
});

describe('parseProblemsFile', () => {
  it('reads a million lines in chunks', async () => {
    const lines = 1_000_000;
    const block = Array.from({ length: 1000 }, (_, i) => `{"a": ${100 + (i % 900)}, "b": ${999 - (i % 900)}}\n`).join('');
    const text = block.repeat(lines / 1000);
    const problems = await parseProblemsFile(chunked(text, [65_536]), 'big.jsonl'); // about a second
    expect(problems.length).toBe(lines);
    expect(problems[lines - 1]).toEqual({ a: 199, b: 900, digits: 3 }); // line 1000 of the last block
    // The engine and the CLI take the largest of them with a loop: Math.max(...problems) overflows the stack at this size.
    expect(problems.reduce((m, p) => Math.max(m, p.digits), 0)).toBe(3);
  });

  it('cuts lines anywhere between chunks: the same problems and the same error line, whatever the chunk sizes', async () => {
    const good = ['{"a": 12, "b": 34}', '', '  ', '{"b": 5, "a": 7}\r', '{"a": 998, "b": 100}'];
    const bad = [...good.slice(0, 3), '{"a": 1, "b": 22}', ...good.slice(3)];
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }), async (sizes) => {
        const ps = await parseProblemsFile(chunked(good.join('\n'), sizes), 'f');
        expect(ps.map((p) => p.a + p.b)).toEqual([46, 12, 1098]);
        await expect(parseProblemsFile(chunked(bad.join('\n'), sizes), 'f')).rejects.toThrow(/^f: line 4: 1 and 22 have different digit counts/);
      }),
      PROPS,
    );
  });

  it('refuses a file with no problems, and a line longer than the limit before reading on', async () => {
    await expect(parseProblemsFile(['\n', '  \n'], 'empty.jsonl')).rejects.toThrow('empty.jsonl holds no problems.');
    let pulled = 0;
    function* endless() {
      for (;;) {
        pulled++;
        yield 'x'.repeat(1024);
      }
    }
    await expect(parseProblemsFile(endless(), 'one-line.jsonl')).rejects.toThrow(
      new RegExp(`^one-line\\.jsonl: line 1 is longer than ${MAX_PROBLEM_LINE} characters`),
    );
    expect(pulled).toBeLessThanOrEqual(MAX_PROBLEM_LINE / 1024 + 1);
  });
});
