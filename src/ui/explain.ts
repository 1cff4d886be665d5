// "How STaR works": what each phase of the loop does, with the one now running highlighted, and which
// result of the paper this run reproduces; the texts are the task's (src/star/tasks/registry.ts: phases, paper).

import type { AnyRunConfig, TaskName } from '../star/run_configs';
import { TASK_NAMES, taskNamed } from '../star/tasks/registry';
import type { Mode, PhaseName } from '../star/types';
import { card, h } from './dom';

/** The loop's phases in order, with the names the page shows before a task is known. */
export const PHASES: { name: PhaseName; title: string }[] = [
  { name: 'seed', title: 'Seed training' },
  { name: 'generate', title: 'Generate' },
  { name: 'filter', title: 'Filter' },
  { name: 'rationalize', title: 'Rationalize' },
  { name: 'finetune', title: 'Fine-tune' },
  { name: 'evaluate', title: 'Evaluate' },
];

/** A phase's name as the run's task calls it. */
export function phaseTitle(task: TaskName, phase: PhaseName): string {
  return taskNamed(task).phases()[phase].title;
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
  /** `task`: the open run's, or the form's (default: the first registered); `config`: the open run's (the phase texts follow its recipe). */
  show(mode: Mode | null, current: PhaseName | null, task?: TaskName, added?: Added | null, config?: AnyRunConfig): void;
}

export function explainPanel(): ExplainPanel {
  const items = new Map<PhaseName, HTMLElement>();
  const list = h('ol', { class: 'explain-phases' });
  const texts = new Map<PhaseName, { title: HTMLElement; text: HTMLElement }>();
  for (const p of PHASES) {
    const title = h('strong', { text: p.title });
    const text = h('span', {});
    const li = h('li', { class: 'explain-phase' }, title, text);
    items.set(p.name, li);
    texts.set(p.name, { title, text });
    list.append(li);
  }
  const mode = h('p', { class: 'explain-mode small' });
  const addedTitle = h('strong', {});
  const addedList = h('ul', { class: 'small' });
  const added = h('div', { class: 'explain-added', testid: 'explain-added', hidden: true }, addedTitle, addedList);
  // What each task's paper result is; the one of the task shown is visible.
  const papers = new Map(TASK_NAMES.map((t) => {
    const p = taskNamed(t).paper;
    return [t, h('div', { hidden: true }, h('p', {}, p.before, h('strong', { text: p.result }), p.after), h('p', { class: 'small muted', text: p.note }))] as const;
  }));
  const el = card(
    'How STaR works',
    h('p', {}, 'STaR, the Self-Taught Reasoner (Zelikman et al., 2022), teaches a model to reason by letting it learn from its own rationales. Each iteration:'),
    list,
    mode,
    added,
    h('div', { class: 'paper' }, h('strong', { text: 'What this reproduces' }), ...papers.values()),
  );
  el.classList.add('explain');
  return {
    el,
    show(m, current, task = TASK_NAMES[0], what = null, config) {
      const own = taskNamed(task).phases(config?.task === task ? config : undefined);
      added.hidden = !what || what.lines.length === 0;
      if (what) {
        addedTitle.textContent = `What iteration ${what.iteration} added to the training set:`;
        addedList.replaceChildren(...what.lines.map((line) => h('li', { text: line })));
      }
      for (const p of PHASES) {
        const t = texts.get(p.name)!;
        t.title.textContent = own[p.name].title;
        t.text.textContent = own[p.name].text;
      }
      for (const [t, el] of papers) el.hidden = t !== task;
      const active = m ? phasesOf(m) : null;
      for (const [name, li] of items) {
        li.classList.toggle('current', name === current);
        li.classList.toggle('skipped', active !== null && !active.has(name));
      }
      mode.textContent = m ? `This run: ${MODES[m]}` : 'Modes: star (with rationalization), star without rationalization, direct (answers only) and base (no self-training).';
    },
  };
}
