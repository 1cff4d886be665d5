// CommonsenseQA data: the official JSONL format (malformed lines reported by number) and the Hub dataset's
// parquet files, fetched through a stub at the network boundary. The parquet fixtures are invented
// questions in tau/commonsense_qa's schema, written by scripts/make_csqa_parquet.mjs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type FetchLike, type FileProgress, memoryCache } from '../../src/hub/download';
import { csqaHubFiles, loadCsqaFromHub, parseCsqaJsonl, problemFromHubRow, problemsFromParquet } from '../../src/star/tasks/csqa_data';
import { holdOut } from '../../src/star/tasks/csqa_run';
import { stubFetch } from '../hub/fixture_fetch';

const FIX = join(__dirname, '..', 'fixtures', 'csqa');
const parquet = (split: string) => new Uint8Array(readFileSync(join(FIX, `${split}.parquet`)));

const line = (o: Record<string, unknown> = {}) =>
  JSON.stringify({
    answerKey: 'B',
    id: 'abc',
    question: {
      question_concept: 'cold',
      choices: ['cupboard', 'fridge', 'oven'].map((text, i) => ({ label: 'ABC'[i], text })),
      stem: 'Where is milk kept cold?',
    },
    ...o,
  });

describe('official JSONL', () => {
  it('reads problems and skips blank lines', () => {
    const ps = parseCsqaJsonl(`${line()}\n\n${line({ id: 'def', answerKey: 'C' })}\n`);
    expect(ps).toHaveLength(2);
    expect(ps[0]).toEqual({
      id: 'abc', stem: 'Where is milk kept cold?', answerKey: 'B', concept: 'cold',
      choices: [{ label: 'A', text: 'cupboard' }, { label: 'B', text: 'fridge' }, { label: 'C', text: 'oven' }],
    });
  });

  it('reports every malformed line with its number and reason', () => {
    const text = [
      line(),
      '{"answerKey": "A", oops',
      line({ answerKey: 'Z' }),
      line({ question: { stem: 'x', choices: [{ label: 'A', text: 'only one' }] }, answerKey: 'A' }),
      line({ question: { stem: '', choices: [{ label: 'A', text: 'a' }, { label: 'B', text: 'b' }] } }),
      line({ question: { stem: 's', choices: [{ label: 'A', text: 'a' }, { label: 'A', text: 'b' }] }, answerKey: 'A' }),
      '[1, 2]',
      line({ id: 7 }),
    ].join('\n');
    let msg = '';
    try {
      parseCsqaJsonl(text, 'dev.jsonl');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/^dev.jsonl: 7 malformed lines:/);
    expect(msg).toMatch(/line 2: not valid JSON/);
    expect(msg).toMatch(/line 3: answerKey "Z" is not one of the labels A, B, C/);
    expect(msg).toMatch(/line 4: 1 choices; at least 2 are needed/);
    expect(msg).toMatch(/line 5: the question stem is missing or empty/);
    expect(msg).toMatch(/line 6: label A appears twice/);
    expect(msg).toMatch(/line 7: not a JSON object/);
    expect(msg).toMatch(/line 8: "id" is missing or empty/);
    expect(msg).not.toMatch(/line 1:/);
    expect(() => parseCsqaJsonl('\n\n', 'empty.jsonl')).toThrow(/empty.jsonl holds no questions/);
  });

  it('holds out a seeded, disjoint evaluation set', () => {
    const ps = Array.from({ length: 10 }, (_, i) => ({ ...parseCsqaJsonl(line({ id: `q${i}` }))[0], stem: `Question ${i}?` }));
    const a = holdOut(ps, 3, 5);
    expect(a.eval).toHaveLength(3);
    expect(a.train).toHaveLength(7);
    expect(new Set([...a.eval, ...a.train].map((p) => p.id)).size).toBe(10);
    expect(holdOut(ps, 3, 5).eval.map((p) => p.id)).toEqual(a.eval.map((p) => p.id));
    expect(() => holdOut(ps, 10, 5)).toThrow(/cannot be split/);
  });
});

describe('the Hub dataset tau/commonsense_qa (parquet)', () => {
  it('maps a datasets-format row', () => {
    const p = problemFromHubRow({ id: 'x', question: ' Q? ', question_concept: 'c', choices: { label: ['A', 'B'], text: ['a', 'b'] }, answerKey: 'B' });
    expect(p).toEqual({ id: 'x', stem: 'Q?', concept: 'c', answerKey: 'B', choices: [{ label: 'A', text: 'a' }, { label: 'B', text: 'b' }] });
    // The test split has no answers.
    expect(() => problemFromHubRow({ id: 'x', question: 'Q?', choices: { label: ['A', 'B'], text: ['a', 'b'] }, answerKey: '' })).toThrow(/answerKey ""/);
  });

  it('reads the parquet fixture (nested choices struct) into problems', async () => {
    const ps = await problemsFromParquet(parquet('train'), 'train.parquet');
    expect(ps).toHaveLength(5);
    expect(ps[1]).toMatchObject({ id: 't2', answerKey: 'B', concept: 'door', choices: expect.arrayContaining([{ label: 'B', text: 'key' }]) });
    expect(await problemsFromParquet(parquet('train'), 'train.parquet', 2)).toHaveLength(2);
    await expect(problemsFromParquet(new Uint8Array(100), 'junk.parquet')).rejects.toThrow(/junk.parquet: not a readable parquet file/);
  });

  it('downloads data/<split>-00000-of-00001.parquet from main, with progress, then from the cache offline', async () => {
    const fetch = stubFetch((path) => {
      const m = /^datasets\/tau\/commonsense_qa\/resolve\/main\/data\/(train|validation)-00000-of-00001\.parquet$/.exec(path);
      return m ? parquet(m[1]) : undefined;
    });
    const cache = memoryCache();
    const progress: FileProgress[] = [];
    const train = await loadCsqaFromHub('train', { fetch, cache, onProgress: (p) => progress.push(p) });
    expect(train.map((p) => p.id)).toEqual(['t1', 't2', 't3', 't4', 't5']);
    expect(fetch.urls).toEqual(['https://huggingface.co/datasets/tau/commonsense_qa/resolve/main/data/train-00000-of-00001.parquet']);
    expect(progress.at(-1)).toMatchObject({ file: 'data/train-00000-of-00001.parquet', cached: false });
    const offline: FetchLike = async () => Promise.reject(new TypeError('offline'));
    expect(await loadCsqaFromHub('train', { fetch: offline, cache })).toEqual(train);
    expect((await loadCsqaFromHub('validation', { fetch, cache })).map((p) => p.id)).toEqual(['v1', 'v2']);
  });

  it('falls back to the refs/convert/parquet branch when main has no data/ file', async () => {
    expect(csqaHubFiles('validation')[1]).toEqual(['refs/convert/parquet', 'default/validation/0000.parquet']);
    const fetch = stubFetch((path) => (path === 'datasets/tau/commonsense_qa/resolve/refs/convert/parquet/default/validation/0000.parquet' ? parquet('validation') : undefined));
    expect(await loadCsqaFromHub('validation', { fetch, cache: null })).toHaveLength(2);
    expect(fetch.urls[1]).toBe('https://huggingface.co/datasets/tau/commonsense_qa/resolve/refs%2Fconvert%2Fparquet/default/validation/0000.parquet');
    await expect(loadCsqaFromHub('train', { fetch, cache: null })).rejects.toThrow(/no parquet file for split "train"/);
  });
});
