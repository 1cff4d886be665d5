// The one typed boundary between the page and the engine's Web Worker (Comlink).
//
// The page calls these methods through `Comlink.wrap<EngineApi>(worker)`. Progress comes back
// through a `Comlink.proxy` callback; weights and datasets cross as transferred ArrayBuffers
// (`Comlink.transfer`). Stop is immediate: the page terminates the worker (see client.ts) and
// starts a fresh one; everything finished is already in IndexedDB, so nothing is lost.

import type { MemoryReport } from '../model/activations';
import type { RunConfig } from '../star/run_config';
import type { IterationRecord, KeptExample, PhaseName, StarSummary } from '../star/types';

/** What the page shows of a run. */
export type RunStatus = 'idle' | 'running' | 'paused' | 'interrupted' | 'done' | 'error';

export interface RunInfo {
  id: string;
  name: string;
  config: RunConfig;
  status: RunStatus;
  createdAt: number;
  updatedAt: number;
  /** Completed iterations (records of iterations 0..n). */
  iterations: IterationRecord[];
  /** Final eval accuracy once done. */
  finalAccuracy: number | null;
  /** The last error, when status is 'error' (or 'paused' after a device loss or a full disk). */
  error?: string;
}

export interface GpuInfo {
  description: string;
  vendor: string;
  architecture: string;
  backend: string;
  f16: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** Events streamed to the page while a run is going. */
export type EngineEvent =
  | { kind: 'phase'; runId: string; iteration: number; phase: PhaseName; done: number; total: number; message?: string }
  | { kind: 'loss'; runId: string; iteration: number; step: number; loss: number }
  | { kind: 'sample'; runId: string; iteration: number; phase: PhaseName; prompt: string; text: string; correct: boolean | null; hinted: boolean; done: boolean }
  | { kind: 'iteration'; runId: string; record: IterationRecord }
  | { kind: 'status'; runId: string; status: RunStatus; error?: string }
  | { kind: 'throughput'; runId: string; tokensPerSecond: number };

export interface Estimate {
  memory: MemoryReport;
  /** Rough seconds for the whole run on this device (from a short timed probe), or null before probing. */
  seconds: number | null;
  /** Why the run will not fit, when it will not. */
  refusal: string | null;
}

export interface EngineApi {
  /** Acquires the GPU; throws a GpuError-shaped message (kind + hint) when there is none. */
  init(): Promise<GpuInfo>;
  estimate(config: RunConfig): Promise<Estimate>;
  /** Creates a run in IndexedDB and starts it; returns its id. Events flow to `onEvent`. */
  start(config: RunConfig, name: string, onEvent: (e: EngineEvent) => void): Promise<string>;
  /** Continues an interrupted or paused run from its last completed phase. */
  resume(runId: string, onEvent: (e: EngineEvent) => void): Promise<void>;
  /** Pauses after the current batch/step; the run stays resumable. */
  pause(): Promise<void>;
  listRuns(): Promise<RunInfo[]>;
  getRun(runId: string): Promise<RunInfo | undefined>;
  deleteRun(runId: string): Promise<void>;
  /** Kept rationales of one finished iteration (filter + rationalize). */
  rationales(runId: string, iteration: number): Promise<KeptExample[]>;
  summary(runId: string): Promise<StarSummary | undefined>;
  /** The run in the CLI's folder layout as one zip (transferred). */
  exportRun(runId: string): Promise<ArrayBuffer>;
  /** Imports a zip in the CLI's folder layout; rejects malformed or other-version data, changing nothing. */
  importRun(zip: ArrayBuffer): Promise<string>;
  storageUsage(): Promise<{ usage: number; quota: number; persisted: boolean }>;
}
