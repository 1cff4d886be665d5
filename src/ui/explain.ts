// "How STaR works": what each phase of the loop does, with the one now running highlighted, and which
// result of the paper this run reproduces; the texts follow the task (arithmetic or CommonsenseQA).

import type { StarConfig } from '../star/config';
import { DEFAULT_PRESET, RUN_PRESETS, type RunConfig } from '../star/run_config';
import type { AnyRunConfig, TaskName } from '../star/run_configs';
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

/** What of an arithmetic run's config the phase texts depend on. */
export type ArithmeticRecipe = Pick<RunConfig, 'base'> & { star: Pick<StarConfig, 'filter' | 'hintReplay' | 'accumulate' | 'steps'> };

/** The arithmetic phases as a run with this recipe runs them (PHASES is the paper's plain loop). */
export function arithmeticPhaseTexts(recipe: ArithmeticRecipe): Record<PhaseName, string> {
  const s = recipe.star;
  const texts = Object.fromEntries(PHASES.map((p) => [p.name, p.text])) as Record<PhaseName, string>;
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

/** CommonsenseQA's version of each phase: a pretrained base model, multiple-choice rationales. */
const CSQA_PHASES: Record<PhaseName, { title: string; text: string }> = {
  seed: { title: 'Base model', text: 'The pretrained model, as loaded from the Hub or your disk, is the base model M₀: nothing is trained before the first iteration.' },
  generate: { title: 'Generate', text: 'For every question of the iteration, the latest model writes a rationale after a few solved examples, ending in “Therefore, the answer is … (x).”' },
  filter: { title: 'Filter', text: 'Only rationales that pick the right choice are kept. The others go on to rationalization.' },
  rationalize: { title: 'Rationalize', text: 'For the questions it got wrong, the model sees the right choice marked “(CORRECT)” and explains it. Rationales that reach it are kept, stored and trained on without the mark.' },
  finetune: { title: 'Fine-tune', text: 'The base model M₀ (never the previous one) is fine-tuned on the kept rationales under the bare question, giving Mₙ: every weight, or small LoRA adapters on the frozen model.' },
  evaluate: { title: 'Evaluate', text: 'Mₙ answers held-out questions greedily. Accuracy per right answer, (a) to (e), shows whether it reasons or only favours a letter.' },
};

/** A phase's name as the run's task calls it. */
export function phaseTitle(task: TaskName, phase: PhaseName): string {
  return task === 'csqa' ? CSQA_PHASES[phase].title : PHASES.find((p) => p.name === phase)!.title;
}

const MODES: Record<Mode, string> = {
  star: 'STaR with rationalization (the full method).',
  'star-no-rationalization': 'STaR without rationalization: only rationales the model finds unaided are kept.',
  direct: 'The direct baseline: fine-tuned on answers alone, no rationales.',
  base: 'The base model only: one evaluation, no self-training.',
};

/** Which phases a mode runs. */
export function phasesOf(mode: Mode): Set<PhaseName> {
  if (mode === 'base') return new Set(['seed', 'evaluate']);
  if (mode === 'direct') return new Set(['seed', 'finetune', 'evaluate']);
  if (mode === 'star-no-rationalization') return new Set(['seed', 'generate', 'filter', 'finetune', 'evaluate']);
  return new Set(PHASES.map((p) => p.name));
}

/** What the latest finished iteration added to the training set, in words (see format.ts keptLines). */
export interface Added {
  iteration: number;
  lines: string[];
}

export interface ExplainPanel {
  el: HTMLElement;
  /** `config`: the open run's (the phase texts follow its recipe); without one, the default preset's. */
  show(mode: Mode | null, current: PhaseName | null, task?: TaskName, added?: Added | null, config?: AnyRunConfig): void;
}

export function explainPanel(): ExplainPanel {
  const items = new Map<PhaseName, HTMLElement>();
  const list = h('ol', { class: 'explain-phases' });
  const texts = new Map<PhaseName, { title: HTMLElement; text: HTMLElement }>();
  for (const p of PHASES) {
    const title = h('strong', { text: p.title });
    const text = h('span', { text: p.text });
    const li = h('li', { class: 'explain-phase' }, title, text);
    items.set(p.name, li);
    texts.set(p.name, { title, text });
    list.append(li);
  }
  const mode = h('p', { class: 'explain-mode small' });
  const addedTitle = h('strong', {});
  const addedList = h('ul', { class: 'small' });
  const added = h('div', { class: 'explain-added', testid: 'explain-added', hidden: true }, addedTitle, addedList);
  const arithmeticPaper = h('div', {},
    h('p', {}, 'The paper’s arithmetic experiment: GPT-J fine-tuned with STaR reached ', h('strong', { text: '89.5%' }), ' on 1–5 digit addition after 16 iterations, learning sums longer than it first could, and rationalization sped that up.'),
    h('p', { class: 'small muted', text: 'Here a model of a few thousand to about a million parameters learns on your GPU, in this tab. The demo teaches a 76k-parameter model 2- and 3-digit sums in four iterations; the paper-like preset has the paper’s shape: 1–5 digits, 10,000 problems per iteration, 16 iterations.' }),
  );
  const csqaPaper = h('div', { hidden: true },
    h('p', {}, 'The paper’s CommonsenseQA experiment: GPT-J (6B) trained with STaR reached ', h('strong', { text: '72.5%' }), ' on the dev set, close to a fine-tuned GPT-3 thirty times larger (73.0%), from rationales it wrote itself.'),
    h('p', { class: 'small muted', text: 'Here a small pretrained model (SmolLM2-135M-Instruct by default) runs the same loop on your GPU, in this tab, with its own few-shot exemplars; expect far lower numbers than a 6B model, and watch whether they rise.' }),
  );
  const el = card(
    'How STaR works',
    h('p', {}, 'STaR, the Self-Taught Reasoner (Zelikman et al., 2022), teaches a model to reason by letting it learn from its own rationales. Each iteration:'),
    list,
    mode,
    added,
    h('div', { class: 'paper' }, h('strong', { text: 'What this reproduces' }), arithmeticPaper, csqaPaper),
  );
  el.classList.add('explain');
  return {
    el,
    show(m, current, task = 'arithmetic', what = null, config) {
      const arithmetic = arithmeticPhaseTexts(config?.task === 'arithmetic' ? config : (RUN_PRESETS[DEFAULT_PRESET] as RunConfig));
      added.hidden = !what || what.lines.length === 0;
      if (what) {
        addedTitle.textContent = `What iteration ${what.iteration} added to the training set:`;
        addedList.replaceChildren(...what.lines.map((line) => h('li', { text: line })));
      }
      for (const p of PHASES) {
        const t = texts.get(p.name)!;
        const own = task === 'csqa' ? CSQA_PHASES[p.name] : { title: p.title, text: arithmetic[p.name] };
        t.title.textContent = own.title;
        t.text.textContent = own.text;
      }
      arithmeticPaper.hidden = task === 'csqa';
      csqaPaper.hidden = task !== 'csqa';
      const active = m ? phasesOf(m) : null;
      for (const [name, li] of items) {
        li.classList.toggle('current', name === current);
        li.classList.toggle('skipped', active !== null && !active.has(name));
      }
      mode.textContent = m ? `This run: ${MODES[m]}` : 'Modes: star (with rationalization), star without rationalization, direct (answers only) and base (no self-training).';
    },
  };
}
