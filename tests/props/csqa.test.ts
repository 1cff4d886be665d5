// CommonsenseQA questions files (JSONL in the official format) and Hub dataset rows: valid files with bytes
// mutated, records with a field replaced by any JSON value, random text and random rows give questions that
// keep every rule (single-letter labels, an answer among them, unique ids) or an Error naming the file and
// the lines, never a crash of another kind; and the held-out check accepts exactly the disjoint sets.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CsqaProblem } from '../../src/star/tasks/csqa';
import { checkHeldOut, parseCsqaJsonl, problemsFromRows } from '../../src/star/tasks/csqa_data';
import { question } from '../helpers/csqa_questions';
import { deepJson, mutatedText, parsesOrRefuses, PROPS, withFieldReplaced } from './props';

const record = { answerKey: 'B', id: 'q1', question: { question_concept: 'cold', stem: 'Where is milk kept cold?', choices: [{ label: 'A', text: 'oven' }, { label: 'B', text: 'fridge' }] } };
const file = [
  question('q1', 'Where is milk kept?', ['fridge', 'oven', 'sink', 'roof', 'car'], 'A'),
  question('q2', 'What opens a door?', ['song', 'cloud', 'key', 'spoon', 'hat'], 'C'),
  '',
  question('q3', 'Where do fish live?', ['desert', 'attic', 'oven', 'pond', 'library'], 'D'),
].join('\n');

/** The rules every accepted question keeps. */
function wellFormed(ps: CsqaProblem[]): void {
  expect(ps.length).toBeGreaterThan(0);
  expect(new Set(ps.map((p) => p.id)).size).toBe(ps.length);
  for (const p of ps) {
    expect(p.stem.trim()).not.toBe('');
    expect(p.choices.length).toBeGreaterThanOrEqual(2);
    expect(p.choices.every((c) => /^[A-Za-z]$/.test(c.label) && c.text.trim() !== '')).toBe(true);
    expect(p.choices.some((c) => c.label === p.answerKey)).toBe(true);
  }
}

const parse = (text: string) => {
  const ps = parsesOrRefuses(() => parseCsqaJsonl(text, 'q.jsonl'), /^q\.jsonl( holds no questions\.|: )/);
  if (ps) wellFormed(ps);
};

describe('parseCsqaJsonl (property-based)', () => {
  it('a mutated file', () => {
    fc.assert(fc.property(mutatedText(fc.constant(file)), parse), PROPS);
  });

  it('a record with a field replaced by any JSON value, on its own or among valid lines', () => {
    fc.assert(fc.property(withFieldReplaced(record), (line) => parse(line)), PROPS);
    fc.assert(fc.property(withFieldReplaced(record.question), (q) => parse(`${file}\n{"answerKey":"A","id":"x","question":${q}}`)), PROPS);
  });

  it('random text and random JSON lines', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), parse), PROPS);
    fc.assert(fc.property(fc.array(fc.json(), { maxLength: 5 }), (lines) => parse(lines.join('\n'))), PROPS);
  });

  it('huge and deeply nested values make short messages', () => {
    const huge = 'x'.repeat(100_000);
    const lines = [
      question('q1', 'Q?', ['a', 'b'], huge),
      JSON.stringify(record).replace('"B"', deepJson(50_000)),
      JSON.stringify({ ...record, question: { ...record.question, choices: [{ label: huge, text: 'a' }, { label: 'B', text: 'b' }] } }),
    ];
    for (const line of lines) {
      const message = (() => {
        try {
          parseCsqaJsonl(line, 'q.jsonl');
        } catch (e) {
          return (e as Error).message;
        }
        return 'accepted';
      })();
      expect(message).toMatch(/^q\.jsonl: 1 malformed line:\n  line 1: /);
      expect(message.length).toBeLessThan(300);
    }
    const repeated = Array.from({ length: 1000 }, () => question(huge.slice(0, 5000), 'Q?', ['a', 'b'], 'A')).join('\n');
    expect(() => parseCsqaJsonl(repeated, 'q.jsonl')).toThrow(/^q\.jsonl: 1 id appears on more than one line:\n  "x{56}\.\.\. on lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, \.\.\. \(1000 in all\)\n/);
  });
});

describe('Hub dataset rows (property-based)', () => {
  const row = { id: 't1', question: 'Q?', question_concept: 'c', choices: { label: ['A', 'B'], text: ['a', 'b'] }, answerKey: 'A' };
  it('a row with a field replaced, and random objects', () => {
    const rows = (rs: Record<string, unknown>[]) => {
      const ps = parsesOrRefuses(() => problemsFromRows(rs, 'train.parquet'), /^train\.parquet: /);
      if (ps) wellFormed(ps);
    };
    fc.assert(fc.property(withFieldReplaced(row), (text) => rows([JSON.parse(text)])), PROPS);
    fc.assert(fc.property(fc.array(fc.object(), { minLength: 1, maxLength: 3 }), rows), PROPS);
  });
});

describe('checkHeldOut (property-based)', () => {
  it('refuses exactly when a held-out question has the id, or the stem and choices, of a training question', () => {
    const q = fc.record({ id: fc.constantFrom('a', 'b', 'c', 'd', 'e'), stem: fc.constantFrom('One?', 'one? ', 'Two?'), answerKey: fc.constant('A') })
      .map(({ id, stem, answerKey }) => ({ id, stem, answerKey, concept: '', choices: [{ label: 'A', text: 'x' }, { label: 'B', text: 'y' }] }));
    fc.assert(
      fc.property(fc.array(q, { maxLength: 4 }), fc.array(q, { maxLength: 4 }), (train, held) => {
        const same = (a: CsqaProblem, b: CsqaProblem) => a.id === b.id || a.stem.toLowerCase().trim() === b.stem.toLowerCase().trim();
        const overlap = held.filter((h) => train.some((t) => same(t, h))).length;
        if (overlap === 0) expect(() => checkHeldOut(train, held)).not.toThrow();
        else expect(() => checkHeldOut(train, held)).toThrow(`the held-out questions and the training questions share ${overlap} question`);
      }),
      PROPS,
    );
  });
});
