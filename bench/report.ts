// What a benchmark run produces: one record per case, a printed table and a JSON document.
//
// `value` is ours, in `unit` (a rate: higher is better, or seconds: lower is better). Where a peer ran
// the same work on the same device in the same run, `peer`, `peerValue` and `ratio` say how it did;
// ratio is always peer time / our time, so > 1 means we are faster, whatever the unit.

import type { AdapterSummary } from '../src/gpu/device';

export type PeerName = 'tfjs' | 'jax-js';

export interface PeerResult {
  peer: PeerName;
  /** The peer's figure in the case's unit. */
  peerValue: number;
  /** Peer seconds / our seconds for the same work (> 1: we are faster). */
  ratio: number;
  /** Seconds per run, the peer's median. */
  peerSeconds: number;
  /** The peer's untimed first run (compilation); for training, the first step. */
  warmupSeconds?: number;
  note?: string;
}

export interface CaseResult {
  /** Stable id, e.g. "matmul 1024x1024x1024" or "train arithmetic B16 T64". */
  name: string;
  group: 'matmul' | 'attention' | 'norm' | 'loss' | 'train' | 'generate' | 'star';
  value: number;
  unit: string;
  /** Our median seconds per run (per call, step, batch or phase). */
  seconds: number;
  /** Work per run, as counted in bench/flops.ts (absent where the unit is not a rate of FLOPs or bytes). */
  flops?: number;
  bytes?: number;
  /** Model FLOP utilisation, when --peak-tflops was given. */
  mfu?: number;
  /** Shapes and settings of the case. */
  params: Record<string, number | string | boolean>;
  /** The first peer that ran, flattened for easy reading; every peer is in `peers`. */
  peer?: PeerName;
  peerValue?: number;
  ratio?: number;
  peers?: PeerResult[];
  note?: string;
}

export interface BenchDocument {
  suite: 'quick' | 'full';
  /** ISO date of the run. */
  date: string;
  /** requestGpu().adapter of the device every engine ran on. */
  adapter: AdapterSummary;
  runtime: string;
  /** How the run was started (flags included), when known. */
  command?: string;
  peakTflops: number | null;
  /** Peer versions, or why a peer did not run. */
  peerStatus: Partial<Record<PeerName, string>>;
  cases: CaseResult[];
}

/** Adds a peer's timing of the same work to a case (value from its seconds, in the case's unit). */
export function withPeer(c: CaseResult, peer: PeerName, peerSeconds: number, extra: { warmupSeconds?: number; note?: string } = {}): CaseResult {
  const perRun = c.value * c.seconds; // the work per run in the case's unit, for rate units
  const isRate = c.unit !== 's';
  const peerValue = isRate ? perRun / peerSeconds : peerSeconds;
  const p: PeerResult = { peer, peerValue, ratio: peerSeconds / c.seconds, peerSeconds, ...extra };
  const peers = [...(c.peers ?? []), p];
  const first = peers[0];
  return { ...c, peers, peer: first.peer, peerValue: first.peerValue, ratio: first.ratio };
}

function fmt(x: number | undefined, digits = 3): string {
  if (x === undefined || !Number.isFinite(x)) return '';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  return x.toPrecision(digits);
}

/** A plain-text table: case, ours, unit, time per run, then one column pair per peer. */
export function formatTable(cases: CaseResult[]): string {
  const peerNames = [...new Set(cases.flatMap((c) => (c.peers ?? []).map((p) => p.peer)))];
  const header = ['case', 'ours', 'unit', 'ms/run', ...(cases.some((c) => c.mfu !== undefined) ? ['MFU'] : []), ...peerNames.flatMap((p) => [p, `x vs ${p}`])];
  const showMfu = header.includes('MFU');
  const rows = cases.map((c) => {
    const row = [c.name, fmt(c.value), c.unit, fmt(c.seconds * 1000)];
    if (showMfu) row.push(c.mfu === undefined ? '' : `${(c.mfu * 100).toFixed(1)}%`);
    for (const p of peerNames) {
      const r = c.peers?.find((x) => x.peer === p);
      row.push(r ? fmt(r.peerValue) : '', r ? `${r.ratio.toFixed(2)}x` : '');
    }
    return row;
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((s, i) => (i === 0 ? s.padEnd(widths[i]) : s.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Checks a document's shape (used by the test and before writing): throws naming the first bad field. */
export function checkDocument(doc: BenchDocument): void {
  const fail = (m: string) => {
    throw new Error(`bench document: ${m}`);
  };
  if (doc.suite !== 'quick' && doc.suite !== 'full') fail(`suite is ${doc.suite}`);
  if (Number.isNaN(Date.parse(doc.date))) fail(`date ${doc.date} is not ISO`);
  for (const k of ['vendor', 'architecture', 'device', 'description', 'backend'] as const) {
    if (typeof doc.adapter?.[k] !== 'string') fail(`adapter.${k} missing`);
  }
  for (const c of doc.cases) {
    if (!c.name || typeof c.unit !== 'string') fail(`a case without name or unit`);
    // A rate must be positive; a duration (unit 's', e.g. a STaR phase with nothing to do) may be 0.
    const min = c.unit === 's' ? 0 : Number.MIN_VALUE;
    if (!(c.value >= min) || !Number.isFinite(c.value)) fail(`${c.name}: value ${c.value}`);
    if (!(c.seconds >= min)) fail(`${c.name}: seconds ${c.seconds}`);
    if (c.peer !== undefined && !(c.ratio! > 0 && c.peerValue! > 0)) fail(`${c.name}: peer ${c.peer} without ratio/peerValue`);
  }
}

/** The document as a Markdown table for docs/performance.md (one row per case, one column pair per peer). */
export function formatMarkdown(doc: BenchDocument): string {
  const peerNames = [...new Set(doc.cases.flatMap((c) => (c.peers ?? []).map((p) => p.peer)))];
  const a = doc.adapter;
  const head = `${a.description || a.device} (${a.vendor} ${a.architecture}, ${a.backend}); ${doc.suite} suite; ${doc.date.slice(0, 10)}; ${doc.runtime}`;
  const cols = ['case', 'ours', 'unit', 'ms/run', ...peerNames.flatMap((p) => [p, `${p} time / ours`])];
  const rows = doc.cases.map((c) => {
    const cells = [c.name.replace(/\|/g, '\\|'), fmt(c.value), c.unit, fmt(c.seconds * 1000)];
    for (const p of peerNames) {
      const r = c.peers?.find((x) => x.peer === p);
      cells.push(r ? fmt(r.peerValue) : '', r ? `${r.ratio.toFixed(2)}` : '');
    }
    return `| ${cells.join(' | ')} |`;
  });
  const how = doc.command ? `\n\nRun: \`${doc.command}\`` : '';
  return [`Device: ${head}${how}`, '', `| ${cols.join(' | ')} |`, `|${cols.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`, ...rows].join('\n');
}
