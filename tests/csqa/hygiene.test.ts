// CommonsenseQA data hygiene: an id used twice in one file (or parquet) is refused, naming each id and its
// lines (rows); a held-out set sharing a question with the training set (the same id, or the same stem and
// choices under another id) is refused, naming the questions, on every path that builds the two sets.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkHeldOut, parseCsqaJsonl, problemsFromRows } from '../../src/star/tasks/csqa_data';
import { csqaRunConfig, holdOut, prepareCsqaRun } from '../../src/star/tasks/csqa_run';
import { question } from '../helpers/csqa_questions';
import { stubFetch } from '../hub/fixture_fetch';

const FIVE = ['fridge', 'oven', 'sink', 'roof', 'car'];
const q = (id: string, stem: string, key = 'A', texts = FIVE) => question(id, stem, texts, key);

describe('repeated ids', () => {
  it('a JSONL file: every repeated id is named with all its line numbers (blank lines counted)', () => {
    const text = [q('q1', 'One?'), q('q2', 'Two?'), q('q3', 'Three?'), q('q1', 'One again?'), '', q('q3', 'Three again?'), q('q4', 'Four?'), q('q3', 'Three, third?')].join('\n');
    expect(() => parseCsqaJsonl(text, 'train.jsonl')).toThrow(
      'train.jsonl: 2 ids appear on more than one line:\n  "q1" on lines 1, 4\n  "q3" on lines 3, 6, 8\nEvery question needs its own id: remove the repeated lines, or give them new ids.',
    );
    expect(parseCsqaJsonl([q('q1', 'One?'), q('q2', 'Two?')].join('\n'), 'ok.jsonl').map((p) => p.id)).toEqual(['q1', 'q2']);
  });

  it('malformed lines are reported first, with their numbers, as before', () => {
    expect(() => parseCsqaJsonl([q('q1', 'One?'), 'nope', q('q1', 'Again?')].join('\n'), 'f.jsonl')).toThrow(/^f\.jsonl: 1 malformed line:\n  line 2: not valid JSON$/);
  });

  it('Hub dataset rows: a repeated id is named with its row numbers', () => {
    const row = (id: string, stem: string) => ({ id, question: stem, question_concept: 'c', choices: { label: ['A', 'B'], text: ['a', 'b'] }, answerKey: 'A' });
    expect(() => problemsFromRows([row('t1', 'A?'), row('t2', 'B?'), row('t1', 'C?')], 'train.parquet')).toThrow(
      /^train\.parquet: 1 id appears on more than one row:\n  "t1" on rows 1, 3\n/,
    );
    expect(problemsFromRows([row('t1', 'A?'), row('t2', 'B?')], 'train.parquet')).toHaveLength(2);
  });

  it('long lists are cut at 20, saying how many more', () => {
    const text = Array.from({ length: 25 }, (_, i) => `${q(`d${i}`, `Q${i}?`)}\n${q(`d${i}`, `R${i}?`)}`).join('\n');
    expect(() => parseCsqaJsonl(text, 'big.jsonl')).toThrow(/^big\.jsonl: 25 ids appear on more than one line:\n(  .+\n){20}  \.\.\. and 5 more\n/);
  });
});

describe('a held-out set that shares questions with the training set is refused', () => {
  const train = parseCsqaJsonl([q('q1', 'Where is milk kept?'), q('q2', 'What opens a door?', 'B'), q('q3', 'Where do fish live?', 'C')].join('\n'));

  it('the same id, or the same stem and choices under another id (case, spacing and choice order ignored)', () => {
    const held = parseCsqaJsonl([
      q('q2', 'A different stem, same id?'),
      q('d9', '  where IS milk   kept? ', 'B', [...FIVE].reverse()),
      q('d10', 'Where is milk kept?', 'A', ['fridge', 'oven', 'sink', 'roof', 'boat']), // other choices: another question
    ].join('\n'));
    expect(() => checkHeldOut(train, held, { train: 'train.jsonl', eval: 'dev.jsonl' })).toThrow(
      'dev.jsonl and train.jsonl share 2 questions:\n  "q2"\n  "d9" (the same question as "q1")\n' +
        'A held-out question the model trains on measures its memory, not its reasoning: remove these from one of the two sets.',
    );
    expect(() => checkHeldOut(train, held.slice(2))).not.toThrow();
  });

  it('holding out part of one file that holds a question twice, under two ids', () => {
    // Every question is there twice, so whichever is held out has its twin in the training part.
    const twice = parseCsqaJsonl(['One?', 'Two?', 'Three?'].flatMap((s, i) => [q(`a${i}`, s), q(`b${i}`, s)]).join('\n'));
    expect(() => holdOut(twice, 1, 7, 'all.jsonl')).toThrow(/^the question held out of all\.jsonl and the rest of all\.jsonl share 1 question:\n  "[ab]\d" \(the same question as "[ab]\d"\)/);
  });

  it('prepareCsqaRun refuses a training file and an eval file that overlap, before loading the model', async () => {
    const files: Record<string, string> = {
      'train.jsonl': [q('q1', 'Where is milk kept?'), q('q2', 'What opens a door?'), q('q3', 'Where do fish live?')].join('\n'),
      'dev.jsonl': [q('v1', 'What keeps rain off?'), q('q3', 'Where do fish live?')].join('\n'),
    };
    const fetch = stubFetch(() => {
      throw new Error('nothing may be fetched before the data is checked');
    });
    const cfg = csqaRunConfig('micro', { model: 'some/model', data: 'train.jsonl', evalData: 'dev.jsonl' });
    await expect(prepareCsqaRun(cfg, { readText: async (p) => files[p], fetch, cache: null })).rejects.toThrow(/^dev\.jsonl and train\.jsonl share 1 question:\n  "q3"\n/);
    expect(fetch.urls).toEqual([]);
  });

  it('prepareCsqaRun refuses an eval file that repeats a question of the Hub training split', async () => {
    const parquet = (split: string) => new Uint8Array(readFileSync(join(__dirname, '..', 'fixtures', 'csqa', `${split}.parquet`)));
    const fetch = stubFetch((path) => {
      const m = /^datasets\/tau\/commonsense_qa\/resolve\/main\/data\/(train|validation)-00000-of-00001\.parquet$/.exec(path);
      return m ? parquet(m[1]) : undefined;
    });
    // t3 of the fixture's train split, copied under a new id.
    const dev = question('mine-1', 'Where would a fish most likely live?', ['desert', 'attic', 'pond', 'oven', 'library'], 'C');
    const cfg = csqaRunConfig('micro', { model: 'some/model', data: 'hub', evalData: 'dev.jsonl' });
    await expect(prepareCsqaRun(cfg, { readText: async () => dev, fetch, cache: null })).rejects.toThrow(
      /^dev\.jsonl and datasets\/tau\/commonsense_qa \(train\) share 1 question:\n  "mine-1" \(the same question as "t3"\)/,
    );
  });
});
