// The rationale browser: every rationale of a finished iteration, filtered by source, correctness and
// category (digit count, or the right answer's label for CommonsenseQA), each with its prompt, rationale,
// answer and the expected answer. Text only.

import { taskOf } from '../star/tasks/registry';
import type { RationaleRow, RunInfo } from '../worker/api';
import { card, field, fill, h, setText } from './dom';
import { byCategory, categoryLabel } from './format';
import { problemLine, rationaleText } from './stream';

export interface BrowserDeps {
  rationales(runId: string, iteration: number): Promise<RationaleRow[]>;
}

export interface RationaleBrowser {
  el: HTMLElement;
  /** Shows a run's finished iterations (keeps the chosen iteration when it still exists). */
  show(run: RunInfo | null): void;
}

const PAGE = 50;

export function rationaleBrowser(deps: BrowserDeps): RationaleBrowser {
  const iteration = h('select', { testid: 'browser-iteration' });
  const source = h('select', { testid: 'browser-source' }, h('option', { value: '', text: 'all' }), h('option', { value: 'generated', text: 'generated' }), h('option', { value: 'rationalized', text: 'rationalized (hinted)' }));
  const correct = h('select', { testid: 'browser-correct' }, h('option', { value: '', text: 'all' }), h('option', { value: 'yes', text: 'correct' }), h('option', { value: 'no', text: 'wrong' }));
  const digitSel = h('select', { testid: 'browser-digits' }, h('option', { value: '', text: 'all' }));
  const categoryName = h('span', { class: 'field-label', text: 'Digits' });
  const summary = h('p', { class: 'small muted' });
  const list = h('ol', { class: 'browser-list', testid: 'rationale-browser' });
  const more = h('button', { type: 'button', class: 'ghost', text: 'Show more', hidden: true });
  let run: RunInfo | null = null;
  let rows: RationaleRow[] = [];
  let shown = PAGE;
  let token = 0;

  const render = () => {
    const f = rows.filter((r) =>
      (!source.value || r.source === source.value) && (!correct.value || r.correct === (correct.value === 'yes')) && (!digitSel.value || r.category === digitSel.value));
    summary.textContent = rows.length === 0 ? '' : `${f.length} of ${rows.length} rationales`;
    fill(list, ...f.slice(0, shown).map((r) => {
      const badge = r.source === 'rationalized' ? ['rationalized', 'rationalized'] : r.correct ? ['correct', 'correct'] : ['wrong', 'wrong'];
      return h('li', { class: `browser-item ${badge[1]}` },
        h('div', { class: 'stream-meta' },
          h('span', { class: `verdict ${badge[1]}`, text: badge[0] }),
          h('span', { class: 'problem', text: problemLine(r.prompt) }),
          h('span', { class: 'small muted', text: categoryLabel(r.category) }),
        ),
        h('details', {}, h('summary', { class: 'small', text: 'prompt' }), h('pre', { class: 'rationale', text: r.prompt })),
        rationaleText(r.rationale),
        h('p', { class: 'small' }, 'answer ', h('strong', { text: r.answer ?? '(none)' }), ' · expected ', h('strong', { text: r.expected ?? '?' })),
      );
    }));
    if (f.length === 0 && rows.length > 0) list.append(h('li', { class: 'muted small', text: 'No rationale matches these filters.' }));
    more.hidden = f.length <= shown;
  };

  const load = async () => {
    const mine = ++token;
    rows = [];
    shown = PAGE;
    if (!run || !iteration.value) {
      fill(list, h('li', { class: 'muted small', text: run ? 'Rationales appear here once an iteration has finished.' : 'Open a run to browse its rationales.' }));
      summary.textContent = '';
      return;
    }
    const got = await deps.rationales(run.id, Number(iteration.value));
    if (mine !== token) return;
    rows = got;
    const cats = [...new Set(rows.map((r) => r.category))].sort(byCategory);
    const keep = digitSel.value;
    setText(categoryName, taskOf(run.config).categoryName);
    fill(digitSel, h('option', { value: '', text: 'all' }), ...cats.map((c) => h('option', { value: c, text: categoryLabel(c) })));
    digitSel.value = cats.includes(keep) ? keep : '';
    render();
  };

  for (const s of [source, correct, digitSel]) s.addEventListener('change', () => ((shown = PAGE), render()));
  iteration.addEventListener('change', load);
  more.addEventListener('click', () => ((shown += PAGE), render()));

  const el = card('Rationale browser',
    h('div', { class: 'row filters' }, field('Iteration', iteration), field('Source', source), field('Correct', correct),
      h('label', { class: 'field' }, categoryName, digitSel)),
    summary, list, more);
  return {
    el,
    show(r) {
      const its = (r?.iterations ?? []).map((x) => x.iteration).filter((i) => i > 0 && r!.config.star.mode !== 'direct');
      const keys = its.join(',');
      const sameRun = r?.id === run?.id;
      run = r;
      if (sameRun && iteration.dataset.keys === keys) return;
      iteration.dataset.keys = keys;
      const keep = sameRun ? iteration.value : '';
      fill(iteration, ...its.map((i) => h('option', { value: String(i), text: `iteration ${i}` })));
      iteration.value = its.includes(Number(keep)) ? keep : its.length ? String(its.at(-1)) : '';
      void load();
    },
  };
}
