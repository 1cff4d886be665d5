// Numbers as the page shows them.

export { formatBytes } from '../util/bytes';

export const pct = (x: number | null | undefined, digits = 1): string => (x === null || x === undefined ? '–' : `${(100 * x).toFixed(digits)}%`);

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export function count(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n));
}

export function when(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** "1 digit", "3 digits". */
export const digits = (d: string): string => `${d} digit${d === '1' ? '' : 's'}`;

const isCount = (c: string) => /^\d+$/.test(c);

/** A per-category accuracy key as shown: "3 digits" (arithmetic), "answer (b)" (CommonsenseQA's right labels). */
export const categoryLabel = (c: string): string => (isCount(c) ? digits(c) : `answer ${c}`);

/** Digit counts in numeric order, answer labels in alphabetical order. */
export const byCategory = (a: string, b: string): number => (isCount(a) && isCount(b) ? Number(a) - Number(b) : a.localeCompare(b));

/**
 * What an iteration added to the training set, per category, in words: "3 digits: 41 solved, 212 rationalized
 * with a correct scratchpad". `rationale`: kept rationales were checked step by step (the 'rationale' filter).
 */
export function keptLines(keptByCategory: Record<string, { correct: number; rationalized: number }> | undefined, rationale: boolean): string[] {
  if (!keptByCategory) return [];
  const how = rationale ? 'with a correct scratchpad' : 'reaching the right answer';
  return Object.keys(keptByCategory).sort(byCategory).map((c) => {
    const k = keptByCategory[c];
    return `${categoryLabel(c)}: ${k.correct} solved, ${k.rationalized} rationalized ${how}`;
  });
}
