// The one typed boundary between the page and the engine's Web Worker (Comlink).
//
// The page calls these methods through `Comlink.wrap<EngineApi>(worker)` (see client.ts). Progress
// comes back through a `Comlink.proxy` callback; run archives cross as transferred ArrayBuffers
// (`Comlink.transfer`). Stop is immediate: the page terminates the worker and starts a fresh one;
// every finished phase is already in IndexedDB, so the run shows as interrupted and resumes from there.

import type { MemoryReport } from '../model/activations';
import type { RunConfig } from '../star/run_config';
import type { IterationRecord, PhaseName, StarSummary } from '../star/types';
import type { RunMeta, RunStatus } from '../storage/runs';

export type { RunStatus };

/** What the page shows of a run (the stored record, with 'running' read as 'interrupted' unless it is live). */
export type RunInfo = Omit<RunMeta, 'version'>;

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
  | { kind: 'loss'; runId: string; iteration: number; phase: 'seed' | 'finetune'; step: number; total: number; loss: number }
  | { kind: 'sample'; runId: string; iteration: number; phase: PhaseName; prompt: string; text: string; correct: boolean | null; hinted: boolean }
  | { kind: 'iteration'; runId: string; record: IterationRecord }
  | { kind: 'status'; runId: string; status: RunStatus; error?: string }
  | { kind: 'throughput'; runId: string; tokensPerSecond: number };

export interface Estimate {
  /** Training (params, grads, AdamW moments, activations) plus the generator's KV cache and buffers. */
  memory: MemoryReport;
  /** The most GPU memory this app lets a run use on this adapter. */
  budget: number;
  /** The largest single training buffer (compared with maxStorageBufferBindingSize). */
  largestBuffer: number;
  /** Training sequence length (the longest example, bucketed). */
  trainSeq: number;
  trainSteps: number;
  decodeSteps: number;
  /** Rough seconds for the whole run on this device. */
  seconds: number;
  /** True when `seconds` uses this device's measured speed, false for the built-in guess. */
  calibrated: boolean;
  /** Why the run will not fit, when it will not. */
  refusal: string | null;
}

/** One rationale of a finished iteration, as the rationale browser lists it. */
export interface RationaleRow {
  iteration: number;
  /** 'generated': sampled unaided; 'rationalized': sampled with the answer as a hint (and kept). */
  source: 'generated' | 'rationalized';
  /** The answer was right (every rationalized row is: only correct ones are kept). */
  correct: boolean;
  /** The digit count, for arithmetic. */
  category: string;
  /** The hint-free prompt. */
  prompt: string;
  rationale: string;
  answer: string | null;
  expected: string | null;
}

export interface EngineApi {
  /** Acquires the GPU; rejects with a GpuError's message (what is missing and what to do) when there is none. */
  init(): Promise<GpuInfo>;
  /** Memory, time and fit of a config on this GPU (or on no GPU yet: limits unchecked). */
  estimate(config: RunConfig): Promise<Estimate>;
  /** Creates a run in IndexedDB and starts it; resolves with its id once it runs. Events flow to `onEvent`. */
  start(config: RunConfig, name: string, onEvent: (e: EngineEvent) => void): Promise<string>;
  /** Continues an interrupted or paused run from its last completed phase. */
  resume(runId: string, onEvent: (e: EngineEvent) => void): Promise<void>;
  /** Pauses after the current batch or step; resolves once the run has stopped (it stays resumable). */
  pause(): Promise<void>;
  listRuns(): Promise<RunInfo[]>;
  getRun(runId: string): Promise<RunInfo | undefined>;
  /** Deletes a run that is not running, with everything stored for it. */
  deleteRun(runId: string): Promise<void>;
  /** Every rationale of one finished iteration (generated, right or wrong, and rationalized). */
  rationales(runId: string, iteration: number): Promise<RationaleRow[]>;
  summary(runId: string): Promise<StarSummary | undefined>;
  /** The run in the CLI's folder layout as one zip (transferred). */
  exportRun(runId: string): Promise<ArrayBuffer>;
  /** Imports a zip in the CLI's folder layout; rejects malformed or other-version data, changing nothing. Returns the new id. */
  importRun(zip: ArrayBuffer): Promise<string>;
}
