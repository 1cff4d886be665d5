// The live view of one run: status and controls, elapsed and remaining time, throughput, each phase of
// the current iteration with its progress, accuracy per iteration (overall and per digit count, chart
// and heatmap), the current fine-tune's loss, and the counts of every finished iteration. It shows a
// stored run the same way, minus what only a running one has. A CommonsenseQA run also shows its model
// loading (./downloads.ts), and its accuracy per right answer (a)..(e) where arithmetic has digit counts.

import type { PhaseName } from '../star/types';
import { taskOf } from '../star/tasks/registry';
import type { EngineEvent, RunInfo } from '../worker/api';
import { accuracySeries, heatmap, lineChart } from './charts';
import { card, fill, h, perFrame, setText } from './dom';
import { downloadsPanel } from './downloads';
import { PHASES, phasesOf, phaseTitle } from './explain';
import { count, duration, pct } from './format';

export interface LiveDeps {
  pause(): Promise<void>;
  resume(runId: string): Promise<void>;
  stop(): void;
  /** The phase now running changed (for the explanation panel). */
  onPhase(run: RunInfo | null, phase: PhaseName | null): void;
}

export interface LiveView {
  el: HTMLElement;
  /** Shows a run; `live` when this page's worker is running it. */
  open(run: RunInfo, live: boolean, estimateSeconds?: number | null): void;
  event(e: EngineEvent): void;
  run(): RunInfo | null;
  isLive(): boolean;
  /** Whether Resume may be offered (no other run going, a GPU present). */
  setCanResume(ok: boolean): void;
}

const PHASE_ORDER = PHASES.map((p) => p.name);

export function describeConfig(r: RunInfo): string {
  return taskOf(r.config).describe(r.config);
}

export function liveView(deps: LiveDeps): LiveView {
  let run: RunInfo | null = null;
  let live = false;
  let canResume = true;
  let current: { iteration: number; phase: PhaseName } | null = null;
  /** Per phase of the current iteration: how far it is, or `finished` before this view saw it run (stored, or done while not watched). */
  let progress = new Map<PhaseName, { done: number; total: number; finished?: boolean }>();
  let loss: { key: string; steps: number[]; values: number[]; keyValues: number[] } = { key: '', steps: [], values: [], keyValues: [] };
  let throughput: number | null = null;
  let sessionStart = 0;
  let wallAtStart = 0;
  let estimate: number | null = null;

  const title = h('h2', { class: 'card-title run-title', text: 'No run yet' });
  const subtitle = h('p', { class: 'small muted', text: 'Start a run to watch STaR teach a model to add, or open one from the runs list.' });
  const status = h('span', { class: 'status', testid: 'run-status', text: 'idle' });
  const pauseBtn = h('button', { testid: 'pause', text: 'Pause', type: 'button', hidden: true, title: 'Pause after the current batch; resume any time.' });
  const resumeBtn = h('button', { class: 'primary', testid: 'resume', text: 'Resume', type: 'button', hidden: true });
  const stopBtn = h('button', { class: 'danger', testid: 'stop', text: 'Stop', type: 'button', hidden: true, title: 'Stop at once. Finished phases are kept; resume later.' });
  const error = h('p', { class: 'run-error', attrs: { role: 'alert' }, hidden: true });
  const iteration = h('span', { testid: 'iteration', text: '0' });
  const ofIterations = h('span', { class: 'muted', text: '' });
  const stat = (label: string, value: HTMLElement, ...more: HTMLElement[]) => h('div', { class: 'stat' }, h('span', { class: 'stat-label', text: label }), h('span', { class: 'stat-value' }, value, ...more));
  const elapsed = h('span', { text: '–' });
  const remaining = h('span', { text: '–' });
  const tps = h('span', { text: '–' });
  const acc = h('span', { text: '–' });
  const phaseRows = new Map<PhaseName, { row: HTMLElement; bar: HTMLElement; note: HTMLElement; name: HTMLElement }>();
  const phaseList = h('ol', { class: 'phases' });
  for (const p of PHASES) {
    const bar = h('div', { class: 'bar-fill' });
    const note = h('span', { class: 'phase-note' });
    const name = h('span', { class: 'phase-name', text: p.title });
    const row = h('li', { class: 'phase' }, name, h('div', { class: 'bar', attrs: { role: 'presentation' } }, bar), note);
    phaseRows.set(p.name, { row, bar, note, name });
    phaseList.append(row);
  }
  const downloads = downloadsPanel();
  const accChart = lineChart({ testid: 'accuracy-chart', label: 'Eval accuracy per iteration', yLabel: 'accuracy', xLabel: 'iteration', percent: true, empty: 'Accuracy per iteration appears after the base model is evaluated.' });
  const lossChart = lineChart({ label: 'Training loss of the current fine-tune', yLabel: 'loss', xLabel: 'step', height: 160, empty: 'The loss of the current fine-tune appears here while it trains.' });
  const lossTitle = h('h3', { text: 'Fine-tune loss' });
  const heat = h('div', {});
  const heatTitle = h('h3', { text: 'Accuracy (%) by digit count' });
  const table = h('div', { class: 'table-wrap' });

  const el = card('', h('div', { class: 'run-head' },
    h('div', { class: 'run-id' }, title, subtitle),
    h('div', { class: 'run-controls' }, status, pauseBtn, resumeBtn, stopBtn),
  ), error,
  h('div', { class: 'stats' },
    stat('Iteration', iteration, ofIterations), stat('Elapsed', elapsed), stat('Remaining', remaining), stat('Throughput', tps), stat('Accuracy', acc)),
  h('div', { class: 'live-grid' },
    h('div', { class: 'panel' }, downloads.el, h('h3', { text: 'Phases of this iteration' }), phaseList),
    h('div', { class: 'panel' }, lossTitle, lossChart.el),
  ),
  h('div', { class: 'live-grid' },
    h('div', { class: 'panel' }, h('h3', { text: 'Eval accuracy per iteration' }), accChart.el),
    h('div', { class: 'panel' }, heatTitle, heat),
  ),
  h('div', { class: 'panel' }, h('h3', { text: 'Each iteration' }), table));
  el.querySelector('.card-title')!.remove();
  el.classList.add('live');

  pauseBtn.addEventListener('click', async () => {
    pauseBtn.disabled = true;
    pauseBtn.textContent = 'Pausing…';
    await deps.pause().finally(() => {
      pauseBtn.disabled = false;
      pauseBtn.textContent = 'Pause';
    });
  });
  resumeBtn.addEventListener('click', async () => {
    if (!run) return;
    resumeBtn.disabled = true;
    await deps.resume(run.id).finally(() => (resumeBtn.disabled = false));
  });
  stopBtn.addEventListener('click', () => deps.stop());

  const elapsedSeconds = () => (run ? (live && run.status === 'running' ? wallAtStart + (performance.now() - sessionStart) / 1000 : run.wallSeconds) : 0);

  const remainingSeconds = (): number | null => {
    if (!run || !live || run.status !== 'running') return null;
    const its = run.iterations.filter((r) => r.iteration > 0);
    const total = run.config.star.mode === 'base' ? 0 : run.config.star.iterations;
    if (its.length > 0) {
      const per = its.reduce((a, r) => a + Object.values(r.seconds).reduce((x, y) => x + (y ?? 0), 0), 0) / its.length;
      const frac = current && current.iteration > its.length ? phaseFraction() : 0;
      return Math.max(0, per * (total - its.length - frac));
    }
    return estimate === null ? null : Math.max(0, estimate - elapsedSeconds());
  };

  const phaseFraction = () => {
    if (!current) return 0;
    const active: PhaseName[] = run ? [...phasesOf(run.config.star.mode)].filter((p) => p !== 'seed') : [];
    const i = active.indexOf(current.phase);
    const p = progress.get(current.phase);
    return i < 0 ? 0 : (i + (p && p.total > 0 ? p.done / p.total : 0)) / active.length;
  };

  const renderClock = () => {
    setText(elapsed, duration(elapsedSeconds()));
    const rem = remainingSeconds();
    setText(remaining, run?.status === 'done' ? 'done' : rem === null ? '–' : `≈ ${duration(rem)}`);
  };

  const render = perFrame(() => {
    if (!run) return;
    setText(title, run.name);
    setText(subtitle, describeConfig(run));
    setText(status, run.status);
    status.className = `status ${run.status}`;
    const going = live && run.status === 'running';
    pauseBtn.hidden = !going;
    stopBtn.hidden = !going;
    resumeBtn.hidden = going || !['paused', 'interrupted', 'error', 'idle'].includes(run.status);
    resumeBtn.disabled = !canResume;
    resumeBtn.title = canResume ? 'Continue from the last completed phase.' : 'Another run is going, or there is no GPU.';
    const note = run.error
      ?? (run.elsewhere ? 'This run is going in another tab or window of this page: watch, pause or stop it there.'
        : run.status === 'interrupted' ? 'This run was cut off: the page was closed or reloaded, or Stop was pressed. Resume continues from its last completed phase.'
        : run.status === 'paused' ? 'Paused. Resume continues from its last completed phase.' : '');
    error.hidden = note === '';
    error.classList.toggle('info', !run.error);
    setText(error, note);
    const done = Math.max(0, run.iterations.length - 1);
    setText(iteration, String(done));
    setText(ofIterations, ` / ${run.config.star.mode === 'base' ? 0 : run.config.star.iterations}`);
    setText(tps, throughput === null ? '–' : `${count(throughput)} tok/s`);
    const last = run.iterations.at(-1);
    setText(acc, last ? pct(last.evalAccuracy) : '–');
    acc.title = last ? `Eval accuracy of iteration ${last.iteration}` : '';
    renderClock();

    const active = phasesOf(run.config.star.mode);
    for (const [name, r] of phaseRows) {
      setText(r.name, phaseTitle(run.config.task, name));
      const p = progress.get(name);
      const isCurrent = going && current?.phase === name;
      const finished = p !== undefined && p.done >= p.total && !isCurrent;
      r.row.classList.toggle('current', isCurrent);
      r.row.classList.toggle('skipped', !active.has(name) || (name === 'seed' && (current?.iteration ?? 0) > 0));
      r.row.classList.toggle('finished', finished || (p !== undefined && p.done >= p.total));
      r.bar.style.width = `${p && p.total > 0 ? Math.min(100, (100 * p.done) / p.total) : 0}%`;
      setText(r.note, !active.has(name) ? 'not in this mode' : p ? (p.finished ? 'stored' : `${p.done} / ${p.total}`) : '');
    }
    setText(lossTitle, loss.key ? `Loss: ${loss.key}` : 'Fine-tune loss');
    // The mean over every target token hides the few that need computing: the sum digits and carries get a line of their own.
    const keyed = loss.keyValues.length === loss.values.length && loss.values.length > 0;
    lossChart.update(loss.steps, [
      { label: 'loss (every token)', values: loss.values, strong: true },
      ...(keyed ? [{ label: 'sum digits and carries', values: loss.keyValues }] : []),
    ]);
    accChart.update(...accuracySeries(run.iterations));
  });

  const renderRecords = () => {
    if (!run) return;
    fill(heat, heatmap(run.iterations));
    setText(heatTitle, taskOf(run.config).heatmapTitle);
    // Under the rationale filter a right answer is kept only with a right scratchpad: both counts show.
    const both = (kept: number, answers: number | undefined) => (answers !== undefined && answers !== kept ? `${kept} (${answers} right answers)` : String(kept));
    const head = ['iteration', 'generated', 'solved', 'rationalized', 'failed', 'trained on', 'steps', 'final loss', 'accuracy', 'tokens/s', 'time'];
    const rows = run.iterations.map((r) => [
      String(r.iteration), String(r.generated), both(r.correct, r.correctAnswers), both(r.rationalized, r.rationalizedAnswers), String(r.failed),
      String(r.trainExamples), String(r.trainSteps),
      r.finalLoss === null ? '–' : r.finalLoss.toFixed(3), pct(r.evalAccuracy), count(r.tokensPerSecond),
      duration(Object.values(r.seconds).reduce((a, b) => a + (b ?? 0), 0)),
    ]);
    fill(table, rows.length === 0 ? h('p', { class: 'muted small', text: 'No iteration has finished yet.' }) : h('table', { class: 'counts' },
      h('thead', {}, h('tr', {}, ...head.map((x) => h('th', { text: x, attrs: { scope: 'col' } })))),
      h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((x) => h('td', { text: x }))))),
    ));
  };

  setInterval(() => live && run?.status === 'running' && renderClock(), 1000);

  return {
    el,
    open(r, isLive, est) {
      const same = run?.id === r.id;
      run = r;
      live = isLive;
      if (est !== undefined) estimate = est;
      if (!same || isLive) {
        sessionStart = performance.now();
        wallAtStart = r.wallSeconds;
      }
      if (!same) {
        downloads.clear();
        current = null;
        progress = new Map();
        loss = { key: '', steps: [], values: [], keyValues: [] };
        throughput = null;
        if (r.status === 'done') for (const p of PHASE_ORDER) progress.set(p, { done: 1, total: 1 });
      }
      deps.onPhase(run, live ? current?.phase ?? null : null);
      renderRecords();
      render();
    },
    event(e) {
      if (!run || e.runId !== run.id) return;
      if (e.kind === 'phase') {
        if (current === null || e.iteration !== current.iteration) progress = new Map();
        if (current?.phase !== e.phase || current.iteration !== e.iteration) deps.onPhase(run, e.phase);
        current = { iteration: e.iteration, phase: e.phase };
        // Phases before this one in the loop's order have finished.
        for (const p of PHASE_ORDER.slice(0, PHASE_ORDER.indexOf(e.phase))) if (!progress.has(p)) progress.set(p, { done: 1, total: 1, finished: true });
        progress.set(e.phase, { done: e.done, total: e.total, finished: e.stored });
      } else if (e.kind === 'loss') {
        const key = e.phase === 'seed' ? 'seed training' : `fine-tune of iteration ${e.iteration}`;
        if (loss.key !== key) loss = { key, steps: [], values: [], keyValues: [] };
        loss.steps.push(e.step);
        loss.values.push(e.loss);
        if (e.keyLoss !== undefined) loss.keyValues.push(e.keyLoss);
      } else if (e.kind === 'iteration') {
        run = { ...run, iterations: [...run.iterations.filter((r) => r.iteration < e.record.iteration), e.record], wallSeconds: elapsedSeconds() };
        renderRecords();
        deps.onPhase(run, live ? current?.phase ?? null : null); // the explanation says what this iteration added
      } else if (e.kind === 'status') {
        if (e.status !== 'running') {
          run = { ...run, wallSeconds: elapsedSeconds() };
          live = false;
          deps.onPhase(run, null);
        } else {
          sessionStart = performance.now();
          wallAtStart = run.wallSeconds;
        }
        run = { ...run, status: e.status, error: e.error };
        if (e.status === 'done') for (const p of PHASE_ORDER) progress.set(p, progress.get(p) ?? { done: 1, total: 1 });
      } else if (e.kind === 'throughput') throughput = e.tokensPerSecond;
      else if (e.kind === 'model' || e.kind === 'download') downloads.event(e);
      render();
    },
    run: () => run,
    isLive: () => live,
    setCanResume(ok) {
      canResume = ok;
      render();
    },
  };
}
