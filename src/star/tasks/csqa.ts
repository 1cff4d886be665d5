// CommonsenseQA (Talmor et al. 2019) as STaR's second task (Zelikman et al. 2022, section 4.2): five-way
// multiple choice, answered with a rationale in the paper's prompt shape.
//
//   Q: <stem>
//   Answer Choices:
//   (a) <text>
//   ...
//   (e) <text>
//   A: <rationale> Therefore, the answer is <text> (<label>).
//
// A few-shot prefix of our own exemplars (./csqa_exemplars.ts) precedes the question while sampling.
// Rationalization marks the right choice with " (CORRECT)" in the question (and in the exemplars' questions,
// so the prefix shows how a hint is used); the hint never reaches what is stored or trained: the loop keeps
// the hint-free prompt, and a completion that mentions the hint is not counted correct, so it is never kept.
// Data loading (JSONL, Hub parquet) is in ./csqa_data.ts.

import { rng, shuffle } from '../../util/random';
import type { TaskAdapter } from '../types';
import type { CsqaProblem } from './csqa_data';
import { EXEMPLARS, type Exemplar } from './csqa_exemplars';

export type { CsqaChoice, CsqaProblem } from './csqa_data';

export const HINT = ' (CORRECT)';
const HINT_RE = /\s*\(correct\)/gi;

const lower = (label: string) => label.toLowerCase();

/** The question without any prefix, ending in "A:"; `hint` marks the right choice. */
export function questionBlock(p: CsqaProblem, hint = false): string {
  const choices = p.choices.map((c) => `(${lower(c.label)}) ${c.text}${hint && c.label === p.answerKey ? HINT : ''}`);
  return [`Q: ${p.stem}`, 'Answer Choices:', ...choices, 'A:'].join('\n');
}

/** "Therefore, the answer is <text> (<label>)." for the right choice. */
export function answerSentence(p: CsqaProblem): string {
  const c = p.choices.find((x) => x.label === p.answerKey);
  if (!c) throw new Error(`CSQA problem ${p.id}: answerKey ${p.answerKey} is not one of its labels.`);
  return `Therefore, the answer is ${c.text} (${lower(c.label)}).`;
}

/** The exemplars as solved questions, each followed by a blank line. */
export function fewShotPrefix(exemplars: Exemplar[], hint = false): string {
  return exemplars.map((e) => `${questionBlock(e.problem, hint)} ${e.rationale} ${answerSentence(e.problem)}\n\n`).join('');
}

/** Removes every " (CORRECT)" marker (any case). */
export function removeHint(text: string): string {
  return text.replace(HINT_RE, '');
}

export function mentionsHint(text: string): boolean {
  return /\(correct\)/i.test(text);
}

const ANSWER_IS = /answer is\s*:?\s*/gi;

/** The text after the last "answer is", up to the end of its line and sentence; null when there is none. */
export function answerSpan(completion: string): string | null {
  let from = -1;
  for (const m of completion.matchAll(ANSWER_IS)) from = m.index + m[0].length;
  if (from < 0) return null;
  let span = completion.slice(from).split('\n')[0];
  const label = /\([a-z]\)/i.exec(span);
  if (label) span = span.slice(0, label.index + label[0].length);
  else span = span.split(/\.\s/)[0];
  return span.trim().replace(/\.+$/, '').trim();
}

const norm = (s: string) => s.toLowerCase().replace(/["'`]/g, '').replace(/[.!?,;:]+$/, '').replace(/\s+/g, ' ').trim();

/** Labels of the choices with this text (a few CSQA questions list the same text twice). */
function byText(p: CsqaProblem, text: string): string[] {
  const t = norm(text);
  return p.choices.filter((x) => norm(x.text) === t).map((x) => lower(x.label));
}

/** A label written as "(b)", "b", "(b) text" or "text (b)"; when text is present it must name the same choice. */
function strictParse(p: CsqaProblem, span: string): string | null {
  const labels = new Set(p.choices.map((c) => lower(c.label)));
  const bare = /^\(?([a-z])\)?$/i.exec(span);
  if (bare) return labels.has(lower(bare[1])) ? lower(bare[1]) : null;
  const withText = /^\(([a-z])\)\s*(.*)$/i.exec(span) ?? /^(.*?)\s*\(([a-z])\)$/i.exec(span);
  if (withText) {
    const [label, text] = /^\(/.test(span) ? [withText[1], withText[2]] : [withText[2], withText[1]];
    const l = lower(label);
    if (!labels.has(l)) return null;
    const named = byText(p, text);
    // A label contradicted by the exact text of another choice is no answer.
    return named.length === 0 || named.includes(l) ? l : null;
  }
  return byText(p, span)[0] ?? null;
}

/**
 * The chosen label (lowercase) of a completion, or null when it gives no parseable answer. Reads the
 * sentence after the last "answer is": a label in parentheses, a bare label, or a choice's text (case,
 * quotes and a trailing period ignored; a unique choice contained in it as a phrase also counts). Without
 * "answer is" (the direct baseline's " (b)."), only the first line read strictly.
 */
export function parseAnswer(p: CsqaProblem, completion: string): string | null {
  const span = answerSpan(completion);
  if (span === null) {
    const first = completion.trim().split('\n')[0].trim().replace(/\.+$/, '');
    return first === '' ? null : strictParse(p, first);
  }
  const strict = strictParse(p, span);
  // A written label is final: an unknown or contradicted one is no answer, not a cue to search the text.
  if (strict !== null || /\([a-z]\)$/i.test(span)) return strict;
  const s = ` ${norm(span)} `;
  const found = p.choices.filter((c) => s.includes(` ${norm(c.text)} `));
  // Several matches: the longest wins only if it contains all the others ("hot dog" over "dog").
  const longest = found.sort((a, b) => b.text.length - a.text.length)[0];
  if (!longest || !found.every((c) => norm(longest.text).includes(norm(c.text)))) return null;
  return lower(longest.label);
}

/** Where a completion ends: just past "answer is ... (x)" (and its period), or at the end of that line; -1 before. */
export function csqaEnd(text: string): number {
  const m = /answer is/i.exec(text);
  if (!m) return -1;
  const after = text.slice(m.index);
  const nl = after.indexOf('\n');
  const label = /\([a-z]\)(\.?)/i.exec(after);
  if (label && (nl < 0 || label.index < nl)) {
    const end = m.index + label.index + label[0].length;
    // "(b)" may still be followed by its period: wait for one more character unless a line already ended.
    return label[1] === '' && end === text.length ? -1 : end;
  }
  return nl < 0 ? -1 : m.index + nl;
}

/** The right label, or another label whose choice has the right choice's text (a duplicated choice). */
export function isRightLabel(p: CsqaProblem, label: string | null): boolean {
  if (label === null) return false;
  const text = (l: string) => norm(p.choices.find((c) => lower(c.label) === l)?.text ?? '\u0000');
  return label === lower(p.answerKey) || text(label) === text(lower(p.answerKey));
}

export interface CsqaTaskOptions {
  /** The training pool's source (the train split). */
  train: CsqaProblem[];
  /** Held-out questions (the validation split). */
  eval: CsqaProblem[];
  /** Default: ours (./csqa_exemplars.ts). */
  exemplars?: Exemplar[];
  /** How many exemplars precede each question; 0 is zero-shot. Default: all. */
  fewShot?: number;
  /** Keep the prefix in training prompts too (default false: STaR fine-tunes on the bare question). */
  fewShotInTraining?: boolean;
  /** Token budget of a rationale (default 96). */
  maxNewTokens?: number;
}

export interface CsqaTask extends TaskAdapter<CsqaProblem> {
  /** The prompt a kept rationale is trained under: the bare question unless fewShotInTraining. */
  trainPrompt(p: CsqaProblem): string;
}

function sample(pool: CsqaProblem[], n: number, seed: number): CsqaProblem[] {
  return shuffle(pool.slice(), rng(seed)).slice(0, Math.min(n, pool.length));
}

export function csqaTask(opts: CsqaTaskOptions): CsqaTask {
  const exemplars = (opts.exemplars ?? EXEMPLARS).slice(0, opts.fewShot ?? Infinity);
  const prefix = fewShotPrefix(exemplars, false);
  const hintedPrefix = fewShotPrefix(exemplars, true);
  const maxNew = opts.maxNewTokens ?? 96;
  const prompt = (p: CsqaProblem, hint: boolean) => (hint ? hintedPrefix : prefix) + questionBlock(p, hint);
  return {
    name: 'csqa',
    trainProblems: (n, seed) => sample(opts.train, n, seed),
    evalProblems: (n, seed) => sample(opts.eval, n, seed),
    prompt,
    trainPrompt: (p) => (opts.fewShotInTraining ? prompt(p, false) : questionBlock(p, false)),
    directTarget: (p) => ` (${lower(p.answerKey)}).`,
    isCorrect: (p, completion) => !mentionsHint(completion) && isRightLabel(p, parseAnswer(p, completion)),
    answerOf(completion) {
      const span = answerSpan(completion);
      if (span === null) return null;
      const label = /\(([a-z])\)$/i.exec(span);
      return label ? lower(label[1]) : norm(span) || null;
    },
    // Per right label: a model that always answers (a) shows up as one full row and four empty ones.
    category: (p) => `(${lower(p.answerKey)})`,
    maxNewTokens: () => maxNew,
    stop: ['\nQ:'],
    end: csqaEnd,
    toJSON: (p) => ({ id: p.id, question: p.stem, answerKey: p.answerKey }),
  };
}
