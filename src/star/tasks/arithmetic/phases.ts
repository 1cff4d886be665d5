// What each phase of the loop does on the arithmetic task, in words (the page's "How STaR works" panel), and
// how a run's recipe changes that; the paper's arithmetic result, which such a run reproduces.

import type { StarConfig } from '../../config';
import { DEFAULT_PRESET, RUN_PRESETS, type RunConfig } from '../../run_config';
import type { PhaseName } from '../../types';

/** The paper's plain loop on arithmetic: a title and a sentence per phase. */
export const ARITHMETIC_PHASES: Record<PhaseName, { title: string; text: string }> = {
  seed: { title: 'Seed training', text: 'A small model is trained from scratch on a few worked examples (short sums, written out with a scratchpad). This is the base model M₀.' },
  generate: { title: 'Generate', text: 'For every problem of the iteration, the latest model writes a rationale: a scratchpad, column by column with carries, ending in an answer.' },
  filter: { title: 'Filter', text: 'Only rationales whose final answer is exactly right are kept. Wrong ones are dropped; their problems go on to rationalization.' },
  rationalize: { title: 'Rationalize', text: 'For the problems it got wrong, the model is shown the correct answer as a hint and asked to explain it. Rationales that reach the answer are kept, with the hint removed.' },
  finetune: { title: 'Fine-tune', text: 'The base model M₀ (never the previous one) is fine-tuned on all kept rationales, giving Mₙ. Each iteration trains for more steps.' },
  evaluate: { title: 'Evaluate', text: 'Mₙ answers held-out problems greedily. Accuracy per digit count shows longer sums being learned, iteration after iteration.' },
};

/** What of an arithmetic run's config the phase texts depend on. */
export type ArithmeticRecipe = Pick<RunConfig, 'base'> & { star: Pick<StarConfig, 'filter' | 'hintReplay' | 'accumulate' | 'steps'> };

/** The arithmetic phases as a run with this recipe runs them (ARITHMETIC_PHASES is the paper's plain loop). */
export function arithmeticPhaseTexts(recipe: ArithmeticRecipe): Record<PhaseName, string> {
  const s = recipe.star;
  const texts = Object.fromEntries(Object.entries(ARITHMETIC_PHASES).map(([name, p]) => [name, p.text])) as Record<PhaseName, string>;
  if (recipe.base !== 'scratch') {
    texts.seed = 'The base model M₀ ships with the app, trained ahead of time: it adds single digits and, shown the answer as a hint, writes the scratchpad of longer sums, but cannot add them on its own. Nothing is trained before iteration 1.';
  }
  if (s.filter === 'rationale') {
    texts.filter = 'A rationale is kept only if its answer is right and every scratchpad line follows from the one before. The others are dropped; their problems go on to rationalization.';
    texts.rationalize = 'For the problems it got wrong, the model is shown the correct answer as a hint and writes the scratchpad again. Those whose every line is right are kept, stored with the hint removed.';
  }
  const what = s.accumulate ? 'everything kept so far (the newest rationale per problem)' : 'the rationales kept in this iteration';
  const replay = s.hintReplay ? ', each also shown with its hint so that Mₙ still follows hints on sums it cannot do yet' : '';
  const steps = s.steps.kind === 'epochs' ? `${s.steps.epochs} passes over that set (at most ${s.steps.max} steps)` : 'more steps each iteration';
  texts.finetune = `The base model M₀ (never the previous one) is fine-tuned on ${what}${replay}, for ${steps}, giving Mₙ.`;
  return texts;
}

/** The phases of a run (the default preset's when none is open), titled and described. */
export function arithmeticPhases(cfg?: RunConfig): Record<PhaseName, { title: string; text: string }> {
  const texts = arithmeticPhaseTexts(cfg ?? (RUN_PRESETS[DEFAULT_PRESET] as RunConfig));
  return Object.fromEntries(Object.entries(ARITHMETIC_PHASES).map(([name, p]) => [name, { title: p.title, text: texts[name as PhaseName] }])) as Record<PhaseName, { title: string; text: string }>;
}

export const ARITHMETIC_PAPER = {
  before: 'The paper’s arithmetic experiment: GPT-J fine-tuned with STaR reached ',
  result: '89.5%',
  after: ' on 1–5 digit addition after 16 iterations, learning sums longer than it first could, and rationalization sped that up.',
  note: 'Here a model of a few thousand to about a million parameters learns on your GPU, in this tab. The demo teaches a 76k-parameter model 2- and 3-digit sums in four iterations; the five preset takes a 150k-parameter model over the paper’s 1–5 digits; the paper-like preset has the paper’s whole shape: 10,000 problems per iteration, 16 iterations.',
};
