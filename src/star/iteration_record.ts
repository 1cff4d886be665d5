// One row of summary.json per iteration, from the outputs of its phases.

import type { EvaluateOutput, IterationRecord, KeptExample, PhaseName } from './types';

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
