// Charts: uPlot line charts (accuracy per iteration, the fine-tune's loss, runs compared) that follow
// their container's width and the page's light or dark colors, and the category x iteration heatmap as
// a table (readable by screen readers, and text-only like everything else). Categories are digit counts
// for arithmetic and the right answer's label, (a)..(e), for CommonsenseQA.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { IterationRecord } from '../star/types';
import { h } from './dom';
import { byCategory, categoryLabel, pct } from './format';

/** Series colors chosen to read on both the light and the dark background. */
export const PALETTE = ['#4c6ef5', '#f76707', '#12b886', '#be4bdb', '#fab005', '#15aabf', '#fa5252', '#868e96'];

export interface Series {
  label: string;
  values: (number | null)[];
  color?: string;
  /** Thicker line for the headline series. */
  strong?: boolean;
  dash?: boolean;
}

export interface LineChart {
  el: HTMLElement;
  update(x: number[], series: Series[]): void;
}

const css = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';

export function lineChart(opts: { testid?: string; label: string; yLabel: string; xLabel: string; percent?: boolean; height?: number; empty: string }): LineChart {
  const host = h('div', { class: 'chart-host' });
  const empty = h('p', { class: 'chart-empty', text: opts.empty });
  const el = h('figure', { class: 'chart', testid: opts.testid, attrs: { 'aria-label': opts.label } }, host, empty);
  let plot: uPlot | null = null;
  let shape = '';
  let last: [number[], Series[]] = [[], []];

  const build = (x: number[], series: Series[]) => {
    plot?.destroy();
    const axis = { stroke: css('--muted'), grid: { stroke: css('--grid'), width: 1 }, ticks: { stroke: css('--grid'), width: 1 }, font: '11px system-ui, sans-serif', labelFont: '12px system-ui, sans-serif' };
    plot = new uPlot(
      {
        width: Math.max(200, host.clientWidth || el.clientWidth || 400),
        height: opts.height ?? 200,
        cursor: { drag: { x: false, y: false } },
        legend: { live: true },
        scales: { x: { time: false }, y: opts.percent ? { range: [0, 100] } : { auto: true } },
        axes: [
          { ...axis, label: opts.xLabel, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] },
          { ...axis, label: opts.yLabel, size: 48, values: (_u, vals) => vals.map((v) => (opts.percent ? `${v}%` : String(+v.toPrecision(3)))) },
        ],
        series: [
          { label: opts.xLabel },
          ...series.map((s, i) => ({
            label: s.label,
            stroke: s.color ?? PALETTE[i % PALETTE.length],
            width: s.strong ? 2.5 : 1.5,
            dash: s.dash ? [5, 4] : undefined,
            points: { show: x.length < 40, size: s.strong ? 6 : 4 },
            value: (_u: uPlot, v: number | null) => (v === null ? '–' : opts.percent ? `${v.toFixed(1)}%` : v.toPrecision(4)),
          })),
        ],
      },
      [x, ...series.map((s) => s.values)] as uPlot.AlignedData,
      host,
    );
  };

  const update = (x: number[], series: Series[]) => {
    last = [x, series];
    empty.hidden = x.length > 0;
    host.hidden = x.length === 0;
    if (x.length === 0) return;
    const key = series.map((s) => `${s.label}|${s.color}|${s.strong}|${s.dash}`).join(',') + `/${x.length < 40}`;
    if (!plot || key !== shape) {
      shape = key;
      build(x, series);
    } else plot.setData([x, ...series.map((s) => s.values)] as uPlot.AlignedData);
  };

  new ResizeObserver(() => {
    const w = host.clientWidth;
    if (plot && w > 0 && Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: opts.height ?? 200 });
  }).observe(host);
  // Colors come from CSS: rebuild when the page switches between light and dark.
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    shape = '';
    update(...last);
  });
  return { el, update };
}

/** Categories present in the records: digit counts in numeric order, or answer labels. */
export function categories(records: IterationRecord[]): string[] {
  return [...new Set(records.flatMap((r) => Object.keys(r.evalAccuracyByDigits)))].sort(byCategory);
}

/** What the categories are: "digits" or "answer". */
export function categoryAxis(records: IterationRecord[]): string {
  return categories(records).every((c) => /^\d+$/.test(c)) ? 'digits' : 'answer';
}

/** Accuracy per iteration, overall and per category, in percent. */
export function accuracySeries(records: IterationRecord[]): [number[], Series[]] {
  const x = records.map((r) => r.iteration);
  const overall: Series = { label: 'overall', values: records.map((r) => 100 * r.evalAccuracy), strong: true, color: PALETTE[0] };
  const per = categories(records).map((c, i) => ({
    label: categoryLabel(c),
    values: records.map((r) => (r.evalAccuracyByDigits[c] === undefined ? null : 100 * r.evalAccuracyByDigits[c])),
    color: PALETTE[(i + 1) % PALETTE.length],
    dash: true,
  }));
  return [x, [overall, ...per]];
}

/** The category x iteration table of eval accuracy, each cell shaded by its value. */
export function heatmap(records: IterationRecord[]): HTMLElement {
  const cats = categories(records);
  if (records.length === 0) return h('p', { class: 'muted small', text: 'Accuracy per category appears here after the base model is evaluated.' });
  const axis = categoryAxis(records);
  const head = h('tr', {}, h('th', { text: `${axis} \\ iteration`, attrs: { scope: 'col' } }), ...records.map((r) => h('th', { text: String(r.iteration), attrs: { scope: 'col' } })));
  const rows = cats.map((c) =>
    h('tr', {}, h('th', { text: c, attrs: { scope: 'row' } }), ...records.map((r) => {
      const v = r.evalAccuracyByDigits[c];
      const td = h('td', { text: v === undefined ? '' : (100 * v).toFixed(0), title: `${categoryLabel(c)}, iteration ${r.iteration}: ${pct(v)}` });
      if (v !== undefined) {
        td.style.backgroundColor = `color-mix(in srgb, var(--good) ${Math.round(100 * v)}%, var(--cell))`;
        if (v > 0.6) td.classList.add('on-strong');
      }
      return td;
    })),
  );
  const by = axis === 'digits' ? 'digit count' : 'right answer';
  return h('div', { class: 'heatmap-wrap' }, h('table', { class: 'heatmap', testid: 'heatmap', attrs: { 'aria-label': `Eval accuracy (%) by ${by} and iteration` } }, h('thead', {}, head), h('tbody', {}, ...rows)));
}
