// The "How STaR works" panel's arithmetic phase texts follow the run's recipe (src/star/tasks/arithmetic/phases.ts),
// and the panel shows the texts and paper of the task it is given (src/ui/explain.ts, through the task registry).

import { describe, expect, it } from 'vitest';
import { RUN_PRESETS } from '../../src/star/run_config';
import { ARITHMETIC_PHASES, arithmeticPhaseTexts } from '../../src/star/tasks/arithmetic/phases';

describe('the phase texts of an arithmetic run', () => {
  it('describe the demo recipe: a shipped base, the rationale filter, hint replay, an accumulated kept set, epochs', () => {
    const t = arithmeticPhaseTexts(RUN_PRESETS.demo);
    expect(t.seed).toMatch(/ships with the app, trained ahead of time.*Nothing is trained before iteration 1/);
    expect(t.filter).toMatch(/every scratchpad line follows from the one before/);
    expect(t.rationalize).toMatch(/whose every line is right are kept, stored with the hint removed/);
    expect(t.finetune).toBe(
      'The base model M₀ (never the previous one) is fine-tuned on everything kept so far (the newest rationale per problem), each also shown with its hint so that Mₙ still follows hints on sums it cannot do yet, for 8 passes over that set (at most 1200 steps), giving Mₙ.',
    );
  });

  it("are the paper's plain loop for a run from scratch that filters on answers, without replay or accumulation", () => {
    const plain = { base: 'scratch' as const, star: { filter: 'answer' as const, hintReplay: false, accumulate: false, steps: { kind: 'multiply' as const, start: 40, factor: 1.2 } } };
    const t = arithmeticPhaseTexts(plain);
    for (const name of ['seed', 'generate', 'filter', 'rationalize', 'evaluate'] as const) expect(t[name]).toBe(ARITHMETIC_PHASES[name].text);
    expect(t.finetune).toBe('The base model M₀ (never the previous one) is fine-tuned on the rationales kept in this iteration, for more steps each iteration, giving Mₙ.');
  });
});
