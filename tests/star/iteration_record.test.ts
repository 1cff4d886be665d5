// Iteration records are a pure function of the stored phase outputs (src/star/iteration_record.ts): the
// records rebuilt from a store equal the ones the loop wrote into its summary, in every mode, without the
// task or an engine; a store missing a phase its evaluation implies gives no records rather than wrong ones.

import { describe, expect, it } from 'vitest';
import { withMode } from '../../src/star/config';
import { recordFromPhases, storedRecords } from '../../src/star/iteration_record';
import { MemoryStore } from '../../src/star/stores/memory';
import { MODES, type EvaluateOutput, type FinetuneOutput, type PhaseName, type RunStore } from '../../src/star/types';
import { CFG, run } from './fake_engine';

describe('records from stored phases', () => {
  it.each(MODES)('rebuild the loop\'s own records in mode %s', async (mode) => {
    const { summary, store } = await run(withMode({ ...CFG, filter: 'rationale' }, mode));
    expect(summary.iterations.length).toBe(mode === 'base' ? 1 : CFG.iterations + 1);
    expect(await storedRecords(store, CFG.iterations)).toEqual(summary.iterations);
    expect(await storedRecords(store, 1)).toEqual(summary.iterations.slice(0, 2)); // never past the given iteration
  });

  it('counts what the phases say: sampled, kept, rationalized, both answer counts, tokens and seconds', () => {
    const kept = (source: 'generated' | 'rationalized', category: string) => ({ prompt: 'p', rationale: 'r', answer: '1', source, problem: {}, category });
    const ev: EvaluateOutput = { accuracy: 0.5, byCategory: { 1: { correct: 1, total: 2 } }, tokensGenerated: 7, seconds: 5 };
    const ft: FinetuneOutput = { examples: 6, steps: 3, losses: [2, 1], tokensTrained: 100, seconds: 4 };
    const r = recordFromPhases(2, {
      generate: { completions: ['a', 'b', 'c', 'd'], tokensGenerated: 40, seconds: 1 },
      filter: { kept: [kept('generated', '1')], failures: [1, 2, 3], answerCorrect: 2, seconds: 2 },
      rationalize: { kept: [kept('rationalized', '2'), kept('rationalized', '2')], tokensGenerated: 30, answerCorrect: 3, seconds: 3 },
      finetune: ft, evaluate: ev,
    });
    expect(r).toMatchObject({
      iteration: 2, generated: 4, correct: 1, rationalized: 2, correctAnswers: 2, rationalizedAnswers: 3, failed: 1,
      keptByCategory: { 1: { correct: 1, rationalized: 0 }, 2: { correct: 0, rationalized: 2 } },
      trainExamples: 6, trainSteps: 3, finalLoss: 1, evalAccuracy: 0.5, evalAccuracyByDigits: { 1: 0.5 },
      seconds: { generate: 1, filter: 2, rationalize: 3, finetune: 4, evaluate: 5 }, tokensGenerated: 77, tokensTrained: 100,
    });
    expect(r.tokensPerSecond).toBeCloseTo(177 / 15);
    // The direct baseline stores no sampling phases: nothing generated, nothing kept.
    expect(recordFromPhases(1, { finetune: ft, evaluate: ev })).toMatchObject({ generated: 0, correct: 0, rationalized: 0, failed: 0, seconds: { finetune: 4, evaluate: 5 } });
  });

  it('gives no records for a store that lacks a phase its evaluation implies', async () => {
    const { store } = await run({ ...CFG, iterations: 2 });
    const holes = new MemoryStore();
    const src = store as RunStore;
    for (let it = 0; it <= 2; it++) {
      for (const name of ['seed', 'generate', 'filter', 'rationalize', 'finetune', 'evaluate'] as PhaseName[]) {
        const v = await src.getPhase(it, name);
        if (v !== undefined && !(it === 2 && name === 'finetune')) await holes.putPhase(it, name, v);
      }
    }
    expect(await storedRecords(holes, 2)).toEqual([]);
    expect(await storedRecords(new MemoryStore(), 2)).toEqual([]);
  });
});
