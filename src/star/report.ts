// The paper's kind of comparison table (STaR, Table 1 style): one row per mode, accuracy per digit
// count and overall, read at each mode's best iteration (or its final one), as plain aligned text.

import type { IterationRecord, StarSummary } from './types';

export interface ComparisonOptions {
  /** 'best': the iteration with the highest overall eval accuracy (default); 'final': the last one run. */
  at?: 'best' | 'final';
}

const pct = (x: number | undefined) => (x === undefined ? '-' : (100 * x).toFixed(1));

/** Numeric categories ("2" before "10") in numeric order, any others after them alphabetically. */
function byCategory(a: string, b: string): number {
  const [x, y] = [Number(a), Number(b)];
  const [nx, ny] = [a.trim() !== '' && Number.isFinite(x), b.trim() !== '' && Number.isFinite(y)];
  if (nx && ny) return x - y;
  if (nx !== ny) return nx ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function comparisonTable(summaries: { mode: string; summary: StarSummary }[], opts: ComparisonOptions = {}): string {
  const at = opts.at ?? 'best';
  const rows = summaries.map(({ mode, summary }) => {
    const its = summary.iterations;
    if (its.length === 0) throw new Error(`comparisonTable: the summary for "${mode}" has no iterations`);
    const rec: IterationRecord = at === 'best' ? its.find((r) => r.iteration === summary.bestIteration) ?? its[its.length - 1] : its[its.length - 1];
    return { mode, rec };
  });
  const categories = [...new Set(rows.flatMap((r) => Object.keys(r.rec.evalAccuracyByDigits)))].sort(byCategory);

  const header = ['mode', 'iteration', ...categories, 'overall'];
  const body = rows.map(({ mode, rec }) => [
    mode,
    String(rec.iteration),
    ...categories.map((c) => pct(rec.evalAccuracyByDigits[c])),
    pct(rec.evalAccuracy),
  ]);
  const widths = header.map((h, j) => Math.max(h.length, ...body.map((row) => row[j].length)));
  // The mode column reads left-aligned, the numbers right-aligned.
  const line = (cells: string[]) => cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ').trimEnd();
  // Columns are the task's categories: digit counts for arithmetic.
  const title = `Eval accuracy (%) per category (digit count) and overall, at each mode's ${at} iteration`;
  return [title, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n') + '\n';
}

/**
 * The learning curve as text: overall eval accuracy (%) of every mode at every iteration, one column per
 * mode ('-' where a mode stopped earlier or never iterates, like base after iteration 0).
 */
export function curveTable(summaries: { mode: string; summary: StarSummary }[]): string {
  const last = Math.max(0, ...summaries.map(({ summary }) => Math.max(...summary.iterations.map((r) => r.iteration))));
  const header = ['iteration', ...summaries.map((s) => s.mode)];
  const body = Array.from({ length: last + 1 }, (_, it) => [
    String(it),
    ...summaries.map(({ summary }) => pct(summary.iterations.find((r) => r.iteration === it)?.evalAccuracy)),
  ]);
  const widths = header.map((h, j) => Math.max(h.length, ...body.map((row) => row[j].length)));
  const line = (cells: string[]) => cells.map((c, j) => c.padStart(widths[j])).join('  ');
  return ['Eval accuracy (%) per iteration', line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n') + '\n';
}
