// One row of summary.json per iteration, from the outputs of its phases: a pure function of what the loop
// stores, so the loop, the worker (records of a stored or imported run) and the page build the same rows
// from the same outputs, with no task, engine or replay.

import type {
  EvaluateOutput, FilterOutput, FinetuneOutput, GenerateOutput, IterationRecord, KeptExample, PhaseName, RationalizeOutput, RunStore, SeedOutput,
} from './types';

export interface RecordParts {
  generated: number;
  correct: number;
  rationalized: number;
  correctAnswers: number;
  rationalizedAnswers: number;
  kept: KeptExample[];
  train: { examples: number; steps: number; losses: number[]; keyLosses?: number[]; tokensTrained: number };
  ev: EvaluateOutput;
  seconds: Partial<Record<PhaseName, number>>;
  tokensGenerated: number;
}

export function makeRecord(iteration: number, r: RecordParts): IterationRecord {
  const totalSeconds = Object.values(r.seconds).reduce((a, b) => a + (b ?? 0), 0);
  const tokensTrained = r.train.tokensTrained;
  const tokensGenerated = r.tokensGenerated + r.ev.tokensGenerated;
  return {
    iteration,
    generated: r.generated,
    correct: r.correct,
    rationalized: r.rationalized,
    correctAnswers: r.correctAnswers,
    rationalizedAnswers: r.rationalizedAnswers,
    keptByCategory: keptByCategory(r.kept),
    failed: r.generated - r.correct - r.rationalized,
    trainExamples: r.train.examples,
    trainSteps: r.train.steps,
    losses: r.train.losses,
    ...(r.train.keyLosses && { keyLosses: r.train.keyLosses }),
    finalLoss: r.train.losses.length > 0 ? r.train.losses[r.train.losses.length - 1] : null,
    evalAccuracy: r.ev.accuracy,
    evalAccuracyByDigits: Object.fromEntries(Object.entries(r.ev.byCategory).map(([k, c]) => [k, c.correct / c.total])),
    seconds: r.seconds,
    tokensGenerated,
    tokensTrained,
    tokensPerSecond: totalSeconds > 0 ? (tokensGenerated + tokensTrained) / totalSeconds : 0,
  };
}

/** Kept examples per category: solved unaided and rationalized (examples stored before categories were: '?'). */
function keptByCategory(kept: KeptExample[]): IterationRecord['keptByCategory'] {
  const out: IterationRecord['keptByCategory'] = {};
  for (const k of kept) {
    const c = (out[k.category ?? '?'] ??= { correct: 0, rationalized: 0 });
    if (k.source === 'generated') c.correct++;
    else c.rationalized++;
  }
  return out;
}

/** The iteration with the highest eval accuracy, the earliest on ties (records[i].iteration === i). */
export function bestIteration(records: IterationRecord[]): number {
  return records.reduce((b, r, i) => (r.evalAccuracy > records[b].evalAccuracy ? i : b), 0);
}

/** What iteration `it` stored: seed and evaluate (iteration 0); generate, filter, rationalize (as the mode runs them), finetune and evaluate. */
export interface StoredPhases {
  seed?: SeedOutput;
  generate?: GenerateOutput;
  filter?: FilterOutput;
  rationalize?: RationalizeOutput;
  finetune?: FinetuneOutput;
  evaluate: EvaluateOutput;
}

/** An iteration's record from its stored phase outputs. Throws when a phase the record needs is missing. */
export function recordFromPhases(iteration: number, ph: StoredPhases): IterationRecord {
  const none = { generated: 0, correct: 0, rationalized: 0, correctAnswers: 0, rationalizedAnswers: 0, kept: [], tokensGenerated: 0 };
  const ev = ph.evaluate;
  if (iteration === 0) {
    if (!ph.seed) throw new Error('iteration 0 has no stored seed phase');
    return makeRecord(0, { ...none, train: ph.seed, ev, seconds: { seed: ph.seed.seconds, evaluate: ev.seconds } });
  }
  if (!ph.finetune) throw new Error(`iteration ${iteration} has no stored finetune phase`);
  const { generate: gen, filter: filt, rationalize: rat } = ph;
  const seconds: Partial<Record<PhaseName, number>> = {};
  let counts: Omit<RecordParts, 'train' | 'ev' | 'seconds'> = none;
  if (gen) {
    // Not the direct baseline: rationales were sampled, one per problem of the iteration's sample.
    if (!filt) throw new Error(`iteration ${iteration} has no stored filter phase`);
    Object.assign(seconds, { generate: gen.seconds, filter: filt.seconds }, rat && { rationalize: rat.seconds });
    counts = {
      generated: gen.completions.length, correct: filt.kept.length, rationalized: rat?.kept.length ?? 0,
      // Phases stored before both counts were recorded kept by the answer alone.
      correctAnswers: filt.answerCorrect ?? filt.kept.length, rationalizedAnswers: rat?.answerCorrect ?? rat?.kept.length ?? 0,
      kept: [...filt.kept, ...(rat?.kept ?? [])], tokensGenerated: gen.tokensGenerated + (rat?.tokensGenerated ?? 0),
    };
  }
  Object.assign(seconds, { finetune: ph.finetune.seconds, evaluate: ev.seconds });
  return makeRecord(iteration, { ...counts, train: ph.finetune, ev, seconds });
}

/**
 * Records of the iterations whose evaluation is stored (0..n, in order, at most `maxIteration`), built from
 * the stored phases alone. Empty when the store does not hold what its evaluations imply.
 */
export async function storedRecords(store: Pick<RunStore, 'getPhase'>, maxIteration: number): Promise<IterationRecord[]> {
  const records: IterationRecord[] = [];
  for (let it = 0; it <= maxIteration; it++) {
    const evaluate = await store.getPhase<EvaluateOutput>(it, 'evaluate');
    if (evaluate === undefined) break;
    const get = <T>(name: PhaseName) => store.getPhase<T>(it, name);
    const ph: StoredPhases = it === 0
      ? { seed: await get<SeedOutput>('seed'), evaluate }
      : { generate: await get('generate'), filter: await get('filter'), rationalize: await get('rationalize'), finetune: await get('finetune'), evaluate };
    try {
      records.push(recordFromPhases(it, ph));
    } catch {
      return [];
    }
  }
  return records;
}
