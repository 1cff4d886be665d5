// The runs list: every stored run with its config, status and accuracy; open, export, delete, compare
// (two or more runs' accuracy curves on one chart), and import of a zipped run folder.

import type { RunInfo } from '../worker/api';
import { taskOf } from '../star/tasks/registry';
import { lineChart, PALETTE } from './charts';
import { card, fill, h } from './dom';
import { pct, when } from './format';
import { describeConfig } from './live';

export interface RunsDeps {
  list(): Promise<RunInfo[]>;
  open(run: RunInfo): void;
  remove(id: string): Promise<void>;
  exportRun(run: RunInfo): Promise<void>;
  importFile(file: File): Promise<void>;
  /** The run this page is running, if any (it cannot be deleted). */
  liveId(): string | null;
  /** The run shown in the live view. */
  openId(): string | null;
}

export interface RunsView {
  el: HTMLElement;
  /** The comparison chart's card (placed by the page; hidden until two runs are picked). */
  compare: HTMLElement;
  refresh(): Promise<RunInfo[]>;
  /** Shows the outcome of an import or export (text only). */
  message(text: string, kind: 'ok' | 'error'): void;
}

export function runsView(deps: RunsDeps): RunsView {
  const list = h('ul', { class: 'runs', testid: 'runs-list' });
  const fileInput = h('input', { type: 'file', accept: '.zip,application/zip', hidden: true, testid: 'import-file' });
  const importBtn = h('button', { type: 'button', text: 'Import a run (.zip)', testid: 'import' });
  const note = h('p', { class: 'import-note small', testid: 'import-status', attrs: { role: 'status' }, hidden: true });
  const picked = new Set<string>();
  let runs: RunInfo[] = [];

  const chart = lineChart({ label: 'Eval accuracy of the compared runs', yLabel: 'accuracy', xLabel: 'iteration', percent: true, empty: 'Pick two or more runs to compare.' });
  const compareTable = h('div', { class: 'table-wrap' });
  const compare = card('Runs compared', h('p', { class: 'small muted', text: 'Overall eval accuracy per iteration of each picked run.' }), chart.el, compareTable);
  compare.hidden = true;

  const renderCompare = () => {
    const chosen = runs.filter((r) => picked.has(r.id));
    compare.hidden = chosen.length < 2;
    if (chosen.length < 2) return;
    const x = Array.from({ length: Math.max(...chosen.map((r) => r.iterations.length)) }, (_, i) => i);
    chart.update(x, chosen.map((r, i) => ({
      label: r.name, color: PALETTE[i % PALETTE.length], strong: true,
      values: x.map((it) => {
        const rec = r.iterations.find((q) => q.iteration === it);
        return rec ? 100 * rec.evalAccuracy : null;
      }),
    })));
    fill(compareTable, h('table', { class: 'counts' },
      h('thead', {}, h('tr', {}, ...['run', 'mode', 'task', 'iterations', 'best', 'final'].map((t) => h('th', { text: t, attrs: { scope: 'col' } })))),
      h('tbody', {}, ...chosen.map((r) => {
        const best = r.iterations.reduce((b, q) => Math.max(b, q.evalAccuracy), 0);
        const task = taskOf(r.config).scope(r.config);
        return h('tr', {}, ...[r.name, r.config.star.mode, task, String(Math.max(0, r.iterations.length - 1)), pct(best), pct(r.iterations.at(-1)?.evalAccuracy)].map((t) => h('td', { text: t })));
      })),
    ));
  };

  const item = (r: RunInfo) => {
    const live = deps.liveId() === r.id;
    const last = r.iterations.at(-1);
    const accuracy = r.finalAccuracy ?? last?.evalAccuracy ?? null;
    const del = h('button', { type: 'button', class: 'small-btn ghost', text: 'Delete', disabled: live, title: live ? 'Pause or stop the run first.' : 'Delete this run and its data.' });
    let armed: ReturnType<typeof setTimeout> | undefined;
    del.addEventListener('click', async () => {
      if (!armed) {
        del.textContent = 'Really delete?';
        del.classList.add('danger');
        armed = setTimeout(() => {
          armed = undefined;
          del.textContent = 'Delete';
          del.classList.remove('danger');
        }, 4000);
        return;
      }
      clearTimeout(armed);
      picked.delete(r.id);
      await deps.remove(r.id);
    });
    const exp = h('button', { type: 'button', class: 'small-btn ghost', text: 'Export', title: 'Download as a zip in the CLI’s folder layout.' });
    exp.addEventListener('click', () => deps.exportRun(r));
    const cmp = h('input', { type: 'checkbox', checked: picked.has(r.id), title: 'Compare' });
    cmp.addEventListener('change', () => {
      if (cmp.checked) picked.add(r.id);
      else picked.delete(r.id);
      renderCompare();
    });
    const open = h('button', { type: 'button', class: 'run-open', title: 'Open in the live view' },
      h('span', { class: 'run-name', text: r.name }),
      h('span', { class: 'small muted', text: describeConfig(r) }),
    );
    open.addEventListener('click', () => deps.open(r));
    return h('li', { class: `run-item${deps.openId() === r.id ? ' open' : ''}`, testid: 'run-item', attrs: { 'data-run-id': r.id } },
      open,
      h('div', { class: 'run-meta' },
        h('span', { class: `status ${r.status}`, text: r.status }),
        h('span', { class: 'run-acc', text: accuracy === null ? '' : `${r.finalAccuracy !== null ? 'final' : 'latest'} ${pct(accuracy)}` }),
        h('span', { class: 'small muted', text: `${r.origin === 'import' ? 'imported · ' : ''}${when(r.createdAt)}` }),
      ),
      h('div', { class: 'run-actions' }, h('label', { class: 'compare small' }, cmp, ' compare'), exp, del),
    );
  };

  const refresh = async () => {
    runs = await deps.list();
    for (const id of picked) if (!runs.some((r) => r.id === id)) picked.delete(id);
    fill(list, ...(runs.length === 0 ? [h('li', { class: 'muted small empty', text: 'No runs yet. Runs are kept in this browser.' })] : runs.map(item)));
    renderCompare();
    return runs;
  };

  importBtn.addEventListener('click', () => fileInput.click());
  fileInput.addEventListener('change', async () => {
    const file = fileInput.files?.[0];
    fileInput.value = '';
    if (file) await deps.importFile(file);
  });

  const el = card('Runs', h('div', { class: 'runs-tools' }, importBtn, fileInput), note, list);
  return {
    el,
    compare,
    refresh,
    message(text, kind) {
      note.hidden = false;
      note.textContent = text;
      note.className = `import-note small ${kind}`;
    },
  };
}
