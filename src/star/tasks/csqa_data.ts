// CommonsenseQA questions from the two places they come from, mapped onto one CsqaProblem and checked the
// same way (a question, at least two choices with distinct single-letter labels, an answerKey among them).
//
// 1. The official JSONL (train_rand_split.jsonl, dev_rand_split.jsonl), one object per line:
//      {"answerKey": "A", "id": "...", "question": {"question_concept": "...", "stem": "...",
//       "choices": [{"label": "A", "text": "..."}, ...]}}
//    Every malformed line is reported with its line number (all of them, up to 20, in one error).
// 2. The Hub dataset tau/commonsense_qa, in parquet (read with hyparquet), rows in the datasets format:
//      {id, question: "<stem>", question_concept, choices: {label: [...], text: [...]}, answerKey}
//    Files: the dataset's own data/ folder on main, data/<split>-00000-of-00001.parquet (the repo was
//    converted to parquet, so these are the canonical files); if that 404s, the Hub's automatic
//    conversion on the refs/convert/parquet branch, default/<split>/0000.parquet. The test split has no
//    answers (answerKey ""), so only train and validation load.
//
// Hygiene, the same for both: an id on more than one line (or row) is refused, naming each such id with its
// line (row) numbers; and checkHeldOut refuses a held-out set that shares a question with the training set
// (the same id, or the same stem with the same choices, compared case- and space-insensitively), naming the
// shared ids. Refused rather than repaired: a held-out question the model trains on turns the accuracy into
// a memory test, and which copy to drop is the owner's call, not ours.

import { parquetReadObjects } from 'hyparquet';
import { type FileProgress, hubFile, type HubFetchOptions } from '../../hub/download';
import { preview } from '../../util/preview';

export interface CsqaChoice {
  /** "A".."E" in the official files. Shown lowercase in prompts, as in the paper. */
  label: string;
  text: string;
}

/** One CommonsenseQA question as the official files hold it (the problems every CSQA module works on). */
export interface CsqaProblem {
  id: string;
  stem: string;
  choices: CsqaChoice[];
  /** The label of the right choice. */
  answerKey: string;
  /** The ConceptNet concept the question was written about ("" when unknown). */
  concept: string;
}

/** A CommonsenseQA run's questions, stored with it ('csqa-questions'): its training pool and its held-out set. */
export interface CsqaQuestions {
  train: CsqaProblem[];
  eval: CsqaProblem[];
}

export const CSQA_HUB_REPO = 'datasets/tau/commonsense_qa';
export type CsqaSplit = 'train' | 'validation';

/** The parquet files tried for a split, in order: [revision, path]. */
export function csqaHubFiles(split: CsqaSplit): [string, string][] {
  return [
    ['main', `data/${split}-00000-of-00001.parquet`],
    ['refs/convert/parquet', `default/${split}/0000.parquet`],
  ];
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const str = (x: unknown): x is string => typeof x === 'string' && x.trim() !== '';

/** Throws a message (without a location) when the problem breaks a rule; returns it otherwise. */
export function checkProblem(p: CsqaProblem): CsqaProblem {
  if (!str(p.id)) throw new Error('"id" is missing or empty');
  if (!str(p.stem)) throw new Error('the question stem is missing or empty');
  if (p.choices.length < 2) throw new Error(`${p.choices.length} choices; at least 2 are needed`);
  const seen = new Set<string>();
  for (const [i, c] of p.choices.entries()) {
    if (!/^[A-Za-z]$/.test(c.label)) throw new Error(`choice ${i + 1} has label ${preview(c.label)}; labels are single letters`);
    if (seen.has(c.label.toLowerCase())) throw new Error(`label ${c.label} appears twice`); // a single letter, checked above
    seen.add(c.label.toLowerCase());
    if (!str(c.text)) throw new Error(`choice ${c.label} has no text`);
  }
  if (!p.choices.some((c) => c.label === p.answerKey)) {
    throw new Error(`answerKey ${preview(p.answerKey)} is not one of the labels ${p.choices.map((c) => c.label).join(', ')}`);
  }
  return p;
}

/** One record of the official JSONL format. */
export function problemFromRecord(rec: unknown): CsqaProblem {
  if (!isObj(rec)) throw new Error('not a JSON object');
  const q = rec.question;
  if (!isObj(q)) throw new Error('"question" is not an object with "stem" and "choices"');
  if (!Array.isArray(q.choices)) throw new Error('"question.choices" is not a list');
  const choices = q.choices.map((c, i) => {
    if (!isObj(c) || typeof c.label !== 'string' || typeof c.text !== 'string') throw new Error(`choice ${i + 1} is not {"label", "text"}`);
    return { label: c.label, text: c.text.trim() };
  });
  return checkProblem({
    id: typeof rec.id === 'string' ? rec.id : '',
    stem: typeof q.stem === 'string' ? q.stem.trim() : '',
    choices,
    answerKey: typeof rec.answerKey === 'string' ? rec.answerKey : '',
    concept: typeof q.question_concept === 'string' ? q.question_concept : '',
  });
}

/** At most this many items of a list go into an error message. */
const SHOWN = 20;

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The first SHOWN of `items`, one per line, with a count of the rest when there are more. */
function listed(items: string[]): string {
  return items.slice(0, SHOWN).join('\n  ') + (items.length > SHOWN ? `\n  ... and ${items.length - SHOWN} more` : '');
}

/** Refuses ids found at more than one position (1-based lines or rows), naming each with its positions. */
function checkUniqueIds(problems: CsqaProblem[], positions: number[], where: string, unit: 'line' | 'row'): void {
  const at = new Map<string, number[]>();
  problems.forEach((p, i) => {
    const seen = at.get(p.id);
    if (seen) seen.push(positions[i]);
    else at.set(p.id, [positions[i]]);
  });
  const dup = [...at].filter(([, ps]) => ps.length > 1);
  if (dup.length === 0) return;
  throw new Error(
    `${where}: ${plural(dup.length, 'id')} appear${dup.length === 1 ? 's' : ''} on more than one ${unit}:\n  ` +
      listed(dup.map(([id, ps]) => `${preview(id)} on ${unit}s ${ps.slice(0, 10).join(', ')}${ps.length > 10 ? `, ... (${ps.length} in all)` : ''}`)) +
      `\nEvery question needs its own id: remove the repeated ${unit}s, or give them new ids.`,
  );
}

/** Every problem of a JSONL text; blank lines skipped, malformed ones reported by line number, repeated ids refused. */
export function parseCsqaJsonl(text: string, fileName = 'CSQA file'): CsqaProblem[] {
  const problems: CsqaProblem[] = [];
  const lines: number[] = [];
  const errors: string[] = [];
  let lineNo = 0;
  for (let start = 0; start <= text.length; ) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl;
    const line = text.slice(start, end);
    start = end + 1;
    lineNo++;
    if (line.trim() === '') continue;
    try {
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch {
        throw new Error('not valid JSON');
      }
      problems.push(problemFromRecord(rec));
      lines.push(lineNo);
    } catch (e) {
      errors.push(`line ${lineNo}: ${(e as Error).message}`);
    }
  }
  if (errors.length > 0) throw new Error(`${fileName}: ${plural(errors.length, 'malformed line')}:\n  ${listed(errors)}`);
  if (problems.length === 0) throw new Error(`${fileName} holds no questions.`);
  checkUniqueIds(problems, lines, fileName, 'line');
  return problems;
}

/** What two copies of one question share: the stem and the set of choice texts, case and spacing ignored. */
function questionKey(p: CsqaProblem): string {
  const norm = (s: string) => s.toLowerCase().replace(/\s+/g, ' ').trim();
  return [norm(p.stem), ...p.choices.map((c) => norm(c.text)).sort()].join('\u0000');
}

/**
 * Refuses a held-out set that shares questions with the training set: the same id, or the same stem with
 * the same choices. `names` say where each set came from, for the message.
 */
export function checkHeldOut(train: CsqaProblem[], held: CsqaProblem[], names = { train: 'the training questions', eval: 'the held-out questions' }): void {
  const ids = new Map<string, CsqaProblem>();
  const keys = new Map<string, CsqaProblem>();
  for (const p of train) {
    ids.set(p.id, p);
    keys.set(questionKey(p), p);
  }
  const shared: string[] = [];
  for (const p of held) {
    const twin = ids.get(p.id) ?? keys.get(questionKey(p));
    if (twin) shared.push(twin.id === p.id ? preview(p.id) : `${preview(p.id)} (the same question as ${preview(twin.id)})`);
  }
  if (shared.length === 0) return;
  throw new Error(
    `${names.eval} and ${names.train} share ${plural(shared.length, 'question')}:\n  ${listed(shared)}\n` +
      'A held-out question the model trains on measures its memory, not its reasoning: remove these from one of the two sets.',
  );
}

/** One row of the Hub dataset (the datasets library's format). */
export function problemFromHubRow(row: Record<string, unknown>): CsqaProblem {
  const ch = row.choices;
  if (!isObj(ch) || !Array.isArray(ch.label) || !Array.isArray(ch.text) || ch.label.length !== ch.text.length) {
    throw new Error('"choices" is not {label: [...], text: [...]} of equal lengths');
  }
  const texts = ch.text as unknown[];
  return checkProblem({
    id: typeof row.id === 'string' ? row.id : '',
    stem: typeof row.question === 'string' ? row.question.trim() : '',
    choices: (ch.label as unknown[]).map((label, i) => ({ label: String(label), text: String(texts[i] ?? '').trim() })),
    answerKey: typeof row.answerKey === 'string' ? row.answerKey : '',
    concept: typeof row.question_concept === 'string' ? row.question_concept : '',
  });
}

/** Rows of a parquet file as problems; `label` names the file in errors (rows are counted from 1). */
export async function problemsFromParquet(bytes: Uint8Array, label: string, limit = Infinity): Promise<CsqaProblem[]> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  try {
    rows = (await parquetReadObjects({
      file,
      columns: ['id', 'question', 'question_concept', 'choices', 'answerKey'],
      rowEnd: Number.isFinite(limit) ? limit : undefined,
    })) as Record<string, unknown>[];
  } catch (e) {
    throw new Error(`${label}: not a readable parquet file of CommonsenseQA (${(e as Error).message}).`);
  }
  return problemsFromRows(rows, label);
}

/** Rows of the Hub dataset as problems (rows counted from 1 in errors); repeated ids are refused. */
export function problemsFromRows(rows: Record<string, unknown>[], label: string): CsqaProblem[] {
  const problems = rows.map((row, i) => {
    try {
      return problemFromHubRow(row);
    } catch (e) {
      throw new Error(`${label}: row ${i + 1}: ${(e as Error).message}`);
    }
  });
  checkUniqueIds(problems, problems.map((_, i) => i + 1), label, 'row');
  return problems;
}

export interface CsqaHubOptions extends HubFetchOptions {
  onProgress?: (p: FileProgress) => void;
  /** Read at most this many rows (the file is downloaded whole either way: about 2 MB for train). */
  limit?: number;
}

/** A split of tau/commonsense_qa from the Hub (cached like model files, so it loads offline afterwards). */
export async function loadCsqaFromHub(split: CsqaSplit, opts: CsqaHubOptions = {}): Promise<CsqaProblem[]> {
  const tried: string[] = [];
  for (const [revision, path] of csqaHubFiles(split)) {
    const bytes = await hubFile(CSQA_HUB_REPO, path, { ...opts, revision }, opts.onProgress);
    tried.push(`${revision}:${path}`);
    if (bytes) return problemsFromParquet(bytes, `${CSQA_HUB_REPO}/${path}`, opts.limit);
  }
  throw new Error(`${CSQA_HUB_REPO}: no parquet file for split "${split}" (tried ${tried.join(', ')}).`);
}
