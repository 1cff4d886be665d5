// What each phase of the loop does on CommonsenseQA, in words (the page's "How STaR works" panel), and the
// paper's CommonsenseQA result.

import type { PhaseName } from '../../types';

/** CommonsenseQA's version of each phase: a pretrained base model, multiple-choice rationales. */
export const CSQA_PHASES: Record<PhaseName, { title: string; text: string }> = {
  seed: { title: 'Base model', text: 'The pretrained model, as loaded from the Hub or your disk, is the base model M₀: nothing is trained before the first iteration.' },
  generate: { title: 'Generate', text: 'For every question of the iteration, the latest model writes a rationale after a few solved examples, ending in “Therefore, the answer is … (x).”' },
  filter: { title: 'Filter', text: 'Only rationales that pick the right choice are kept. The others go on to rationalization.' },
  rationalize: { title: 'Rationalize', text: 'For the questions it got wrong, the model sees the right choice marked “(CORRECT)” and explains it. Rationales that reach it are kept, stored and trained on without the mark.' },
  finetune: { title: 'Fine-tune', text: 'The base model M₀ (never the previous one) is fine-tuned on the kept rationales under the bare question, giving Mₙ: every weight, or small LoRA adapters on the frozen model.' },
  evaluate: { title: 'Evaluate', text: 'Mₙ answers held-out questions greedily. Accuracy per right answer, (a) to (e), shows whether it reasons or only favours a letter.' },
};

export const CSQA_PAPER = {
  before: 'The paper’s CommonsenseQA experiment: GPT-J (6B) trained with STaR reached ',
  result: '72.5%',
  after: ' on the dev set, close to a fine-tuned GPT-3 thirty times larger (73.0%), from rationales it wrote itself.',
  note: 'Here a small pretrained model (SmolLM2-135M-Instruct by default) runs the same loop on your GPU, in this tab, with its own few-shot exemplars; expect far lower numbers than a 6B model, and watch whether they rise.',
};
