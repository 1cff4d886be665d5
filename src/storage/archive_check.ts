// Checks of every file an imported run archive may hold, so a malformed or foreign archive is refused
// with a message naming the file and the field, before anything is written.

import { parseSafetensors, type SafetensorsFile } from '../hub/safetensors';
import { layoutParams } from '../model/params';
import type { AnyRunConfig } from '../star/run_configs';
import { checkProblem, type CsqaQuestions } from '../star/tasks/csqa_data';
import { taskOf } from '../star/tasks/registry';
import type { PhaseName } from '../star/types';

/** What to do about an archive that is damaged, hostile or not a run: start again from a clean export. */
export const REEXPORT = 'Nothing was imported: export the run again from the app (or zip the run folder `npm run star` wrote, as it is) and import that zip.';

/** An archive refused: `message` says what is wrong and where, `todo` what to do about it. */
export class ImportError extends Error {
  override name = 'ImportError';
  constructor(message: string, todo = '') {
    super(`Cannot import this file: ${message}${todo ? ` ${todo}` : ''}`);
  }
}

/** An archive refused with the usual advice (REEXPORT). */
export const refuse = (message: string): ImportError => new ImportError(message, REEXPORT);

type Check = (v: unknown, at: string) => void;

const fail = (at: string, want: string, v: unknown): never => {
  const got = v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v;
  throw refuse(`${at} must be ${want}, got ${got}.`);
};
const num: Check = (v, at) => void (typeof v === 'number' && Number.isFinite(v) ? 0 : fail(at, 'a number', v));
const int: Check = (v, at) => void (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? 0 : fail(at, 'a whole number', v));
const str: Check = (v, at) => void (typeof v === 'string' ? 0 : fail(at, 'text', v));
const bool: Check = (v, at) => void (typeof v === 'boolean' ? 0 : fail(at, 'true or false', v));
const any: Check = () => {};
const nullable = (c: Check): Check => (v, at) => (v === null ? undefined : c(v, at));
const oneOf = (...xs: string[]): Check => (v, at) => void (xs.includes(v as string) ? 0 : fail(at, `one of ${xs.join(', ')}`, v));
const list = (c: Check): Check => (v, at) => {
  if (!Array.isArray(v)) fail(at, 'a list', v);
  (v as unknown[]).forEach((x, i) => c(x, `${at}[${i}]`));
};
const record = (c: Check): Check => (v, at) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(at, 'an object', v);
  for (const [k, x] of Object.entries(v as object)) c(x, `${at}.${k}`);
};
const shape = (fields: Record<string, Check>): Check => (v, at) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(at, 'an object', v);
  for (const [k, c] of Object.entries(fields)) {
    if (!(k in (v as object))) throw refuse(`${at} has no field "${k}".`);
    c((v as Record<string, unknown>)[k], `${at}.${k}`);
  }
};

const kept = shape({ prompt: str, rationale: str, answer: nullable(str), source: oneOf('generated', 'rationalized'), problem: any });

/** What each phase's JSON must hold (src/star/types.ts). */
const PHASES: Record<PhaseName, Check> = {
  seed: shape({ seconds: num, reused: bool, examples: int, steps: int, losses: list(num), tokensTrained: int }),
  generate: shape({ seconds: num, completions: list(str), tokensGenerated: int }),
  filter: shape({ seconds: num, kept: list(kept), failures: list(int) }),
  rationalize: shape({ seconds: num, kept: list(kept), tokensGenerated: int }),
  finetune: shape({ seconds: num, examples: int, steps: int, losses: list(num), tokensTrained: int }),
  evaluate: shape({ seconds: num, accuracy: num, byCategory: record(shape({ correct: int, total: int })), tokensGenerated: int }),
};

export const PHASE_NAMES = Object.keys(PHASES) as PhaseName[];

const record0 = shape({
  iteration: int, generated: int, correct: int, rationalized: int, failed: int, trainExamples: int, trainSteps: int,
  losses: list(num), finalLoss: nullable(num), evalAccuracy: num, evalAccuracyByDigits: record(num), seconds: record(num),
  tokensGenerated: int, tokensTrained: int, tokensPerSecond: num,
});

export const checkSummary: Check = shape({
  task: str, mode: str, iterations: list(record0), bestIteration: int, bestAccuracy: num, finalAccuracy: num,
  stoppedBy: oneOf('iterations', 'patience'),
});

/** Problems per iteration: the sample is drawn from a pool the task may cap at its question count (CSQA). */
export function sampleSize(cfg: AnyRunConfig, questions?: CsqaQuestions): number | null {
  return taskOf(cfg).sampleSize(cfg, questions);
}

/** Checks one phase file's shape and its agreement with the run's config (`n`: problems per iteration, when known). */
export function checkPhase(file: string, cfg: AnyRunConfig, iteration: number, phase: PhaseName, value: unknown, n: number | null): void {
  if (iteration > cfg.star.iterations) throw refuse(`${file}: iteration ${iteration} is beyond the run's ${cfg.star.iterations} iterations.`);
  if (iteration === 0 ? phase !== 'seed' && phase !== 'evaluate' : phase === 'seed') {
    throw refuse(`${file}: iteration ${iteration} has no ${phase} phase.`);
  }
  PHASES[phase](value, file);
  if (n === null) return;
  if (phase === 'generate') {
    const got = (value as { completions: unknown[] }).completions.length;
    if (got !== n) throw refuse(`${file} has ${got} completions, but the run draws ${n} problems per iteration.`);
  }
  if (phase === 'filter') {
    const f = value as { kept: unknown[]; failures: number[] };
    if (f.kept.length + f.failures.length !== n || f.failures.some((i) => i >= n)) {
      throw refuse(`${file}: kept and failures do not add up to the ${n} problems of an iteration.`);
    }
  }
}

/** A CommonsenseQA run's questions, as the app stores them with the run (csqa-questions.json in an archive). */
export type { CsqaQuestions };

/** Checks csqa-questions.json: two lists of well-formed questions (the rules of ../star/tasks/csqa_data.ts). */
export function checkQuestions(file: string, v: unknown): CsqaQuestions {
  shape({ train: list(any), eval: list(any) })(v, file);
  const q = v as CsqaQuestions;
  for (const part of ['train', 'eval'] as const) {
    if (q[part].length === 0) throw refuse(`${file}: "${part}" holds no questions.`);
    q[part].forEach((p, i) => {
      const at = `${file}: ${part}[${i}]`;
      shape({ id: str, stem: str, choices: list(shape({ label: str, text: str })), answerKey: str, concept: str })(p, at);
      try {
        checkProblem(p);
      } catch (e) {
        throw refuse(`${at}: ${(e as Error).message}.`);
      }
    });
  }
  return q;
}

/** Checks a weights file: valid safetensors, with exactly the tensors the run's model needs (arithmetic: a known preset). */
export function checkWeights(file: string, cfg: AnyRunConfig, bytes: Uint8Array): void {
  let header: SafetensorsFile['header'];
  try {
    header = parseSafetensors(bytes, file).header;
  } catch (e) {
    const why = (e as Error).message.replace(`${file}: `, '');
    throw refuse(`${file} is not a safetensors weights file (${why}).`);
  }
  const model = taskOf(cfg).presetModel(cfg);
  if (!model) return; // a pretrained model's layout is known once its config.json is loaded
  for (const e of layoutParams(model).entries) {
    const t = header[e.name];
    if (!t) throw refuse(`${file} has no tensor ${e.name}, which the ${cfg.model} model needs.`);
    if (t.shape.join('x') !== e.shape.join('x')) {
      throw refuse(`${file}: ${e.name} has shape ${t.shape.join('x')}, the ${cfg.model} model needs ${e.shape.join('x')}.`);
    }
  }
}

/** Equal as JSON, whatever the order of object keys. */
export function sameJSON(a: unknown, b: unknown): boolean {
  const canon = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(canon)
    : typeof x === 'object' && x !== null ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, canon((x as Record<string, unknown>)[k])]))
    : x;
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}
