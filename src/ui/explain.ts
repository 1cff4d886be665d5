// "How STaR works": what each phase of the loop does, with the one now running highlighted, and which
// result of the paper this run reproduces.

import type { Mode, PhaseName } from '../star/types';
import { card, h } from './dom';

export const PHASES: { name: PhaseName; title: string; text: string }[] = [
  { name: 'seed', title: 'Seed training', text: 'A small model is trained from scratch on a few worked examples (short sums, written out with a scratchpad). This is the base model M₀.' },
  { name: 'generate', title: 'Generate', text: 'For every problem of the iteration, the latest model writes a rationale: a scratchpad, column by column with carries, ending in an answer.' },
  { name: 'filter', title: 'Filter', text: 'Only rationales whose final answer is exactly right are kept. Wrong ones are dropped; their problems go on to rationalization.' },
  { name: 'rationalize', title: 'Rationalize', text: 'For the problems it got wrong, the model is shown the correct answer as a hint and asked to explain it. Rationales that reach the answer are kept, with the hint removed.' },
  { name: 'finetune', title: 'Fine-tune', text: 'The base model M₀ (never the previous one) is fine-tuned on all kept rationales, giving Mₙ. Each iteration trains for more steps.' },
  { name: 'evaluate', title: 'Evaluate', text: 'Mₙ answers held-out problems greedily. Accuracy per digit count shows longer sums being learned, iteration after iteration.' },
];

const MODES: Record<Mode, string> = {
  star: 'STaR with rationalization (the full method).',
  'star-no-rationalization': 'STaR without rationalization: only rationales the model finds unaided are kept.',
  direct: 'The direct baseline: fine-tuned on answers alone, no rationales.',
  base: 'The base model only: seed training and one evaluation.',
};

/** Which phases a mode runs. */
export function phasesOf(mode: Mode): Set<PhaseName> {
  if (mode === 'base') return new Set(['seed', 'evaluate']);
  if (mode === 'direct') return new Set(['seed', 'finetune', 'evaluate']);
  if (mode === 'star-no-rationalization') return new Set(['seed', 'generate', 'filter', 'finetune', 'evaluate']);
  return new Set(PHASES.map((p) => p.name));
}

export interface ExplainPanel {
  el: HTMLElement;
  show(mode: Mode | null, current: PhaseName | null): void;
}

export function explainPanel(): ExplainPanel {
  const items = new Map<PhaseName, HTMLElement>();
  const list = h('ol', { class: 'explain-phases' });
  for (const p of PHASES) {
    const li = h('li', { class: 'explain-phase' }, h('strong', { text: p.title }), h('span', { text: p.text }));
    items.set(p.name, li);
    list.append(li);
  }
  const mode = h('p', { class: 'explain-mode small' });
  const el = card(
    'How STaR works',
    h('p', {}, 'STaR, the Self-Taught Reasoner (Zelikman et al., 2022), teaches a model to reason by letting it learn from its own rationales. Each iteration:'),
    list,
    mode,
    h('div', { class: 'paper' },
      h('strong', { text: 'What this reproduces' }),
      h('p', {}, 'The paper’s arithmetic experiment: GPT-J fine-tuned with STaR reached ', h('strong', { text: '89.5%' }), ' on 1–5 digit addition after 16 iterations, learning sums longer than it first could, and rationalization sped that up.'),
      h('p', { class: 'small muted', text: 'Here a model of a few thousand to about a million parameters is trained from scratch, on your GPU, in this tab. The paper-like preset follows the paper’s schedule: 1–5 digits, 40 fine-tuning steps growing by 20% per iteration.' }),
    ),
  );
  el.classList.add('explain');
  return {
    el,
    show(m, current) {
      const active = m ? phasesOf(m) : null;
      for (const [name, li] of items) {
        li.classList.toggle('current', name === current);
        li.classList.toggle('skipped', active !== null && !active.has(name));
      }
      mode.textContent = m ? `This run: ${MODES[m]}` : 'Modes: star (with rationalization), star without rationalization, direct (answers only) and base (no self-training).';
    },
  };
}
