// The one typed boundary between the page and the engine's Web Worker (Comlink).
//
// The page calls these methods through `Comlink.wrap<EngineApi>(worker)` (see client.ts). Progress
// comes back through a `Comlink.proxy` callback; run archives cross as transferred ArrayBuffers
// (`Comlink.transfer`). Stop is immediate: the page terminates the worker and starts a fresh one;
// every finished phase is already in IndexedDB, so the run shows as interrupted and resumes from there.
//
// Two kinds of run cross it, told apart by `config.task`: arithmetic (RunConfig) and CommonsenseQA
// (CsqaRunConfig), whose model and questions may be files the user picked (CsqaFiles, sent as File
// objects, which structured cloning copies without reading them on the page).

import type { MemoryReport } from '../model/activations';
import type { AnyRunConfig } from '../star/run_configs';
import type { CsqaRunConfig } from '../star/tasks/csqa_run';
import type { IterationRecord, PhaseName, StarSummary } from '../star/types';
import type { RunMeta, RunStatus } from '../storage/runs';

export type { AnyRunConfig, RunStatus };

/** What a CommonsenseQA run reads from the user's disk instead of the Hub. */
export interface CsqaFiles {
  /** "Load from local files": config.json, model.safetensors (or its index and shards), tokenizer.json, tokenizer_config.json. */
  model?: File[];
  /** Questions in the official JSONL format; the config's `data` is its name. */
  data?: File;
}

/** What the page shows of a run (the stored record, with 'running' read as 'interrupted' unless it is live). */
export type RunInfo = Omit<RunMeta, 'version'> & {
  /** Status 'running', in another tab or window of the page (which holds the run's lock): watch it there. */
  elsewhere?: boolean;
};

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
  | { kind: 'phase'; runId: string; iteration: number; phase: PhaseName; done: number; total: number; message?: string; stored?: boolean }
  /** `keyLoss`: the loss on the scratchpad's sum digits and carries alone, when the engine reports it. */
  | { kind: 'loss'; runId: string; iteration: number; phase: 'seed' | 'finetune'; step: number; total: number; loss: number; keyLoss?: number }
  | { kind: 'sample'; runId: string; iteration: number; phase: PhaseName; prompt: string; text: string; correct: boolean | null; hinted: boolean }
  | { kind: 'iteration'; runId: string; record: IterationRecord }
  | { kind: 'status'; runId: string; status: RunStatus; error?: string }
  | { kind: 'throughput'; runId: string; tokensPerSecond: number }
  /** CommonsenseQA: loading the pretrained model before the loop starts (and describing it once loaded). */
  | { kind: 'model'; runId: string; state: 'loading' | 'ready'; text: string }
  /** Byte progress of one model file (downloaded from the Hub, read from the cache or from local files). */
  | { kind: 'download'; runId: string; file: string; loaded: number; total: number; cached: boolean };

/** What the start form shows of a CommonsenseQA run before it starts. */
export interface CsqaEstimate {
  /** The config as it will run: the question pool capped at the questions there are. */
  config: CsqaRunConfig;
  /** The model's source: a repo id, or the local files. */
  source: string;
  /** Parameters, layers, widths (describeModel). */
  description: string;
  params: number;
  /** Bytes of the weight files, from config.json's torch_dtype; null when it names none. */
  downloadBytes: number | null;
  /** Questions in the training pool and held out; null until they are read. */
  questions: { train: number; eval: number } | null;
  /** Sequences decoded together (the config's, lowered to fit the generator's budget). */
  genBatch: number;
}

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
  /** Rough seconds for the whole run on this device; null when there is no basis for a guess yet (CommonsenseQA before an iteration here). */
  seconds: number | null;
  /** True when `seconds` uses this device's measured speed, false for the built-in guess. */
  calibrated: boolean;
  /** Why the run will not fit, when it will not. */
  refusal: string | null;
  /** CommonsenseQA runs only. */
  csqa?: CsqaEstimate;
}

/** One rationale of a finished iteration, as the rationale browser lists it. */
export interface RationaleRow {
  iteration: number;
  /** 'generated': sampled unaided; 'rationalized': sampled with the answer as a hint (and kept). */
  source: 'generated' | 'rationalized';
  /** The answer was right (every rationalized row is: only correct ones are kept). */
  correct: boolean;
  /** The digit count (arithmetic) or the right answer's label, "(a)".."(e)" (CommonsenseQA). */
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
  /**
   * Memory, time and fit of a config on this GPU (or on no GPU yet: limits unchecked). CommonsenseQA reads
   * config.json first (refusing a model too large before anything else), then the tokenizer and the
   * questions (small files, cached); never the weights. Rejects when a file is missing or malformed.
   */
  estimate(config: AnyRunConfig, files?: CsqaFiles): Promise<Estimate>;
  /**
   * Creates a run in IndexedDB and starts it; resolves with its id once it runs. Events flow to `onEvent`.
   * CommonsenseQA: the questions (and picked model files) are stored with the run, then the weights load
   * (download events) before the loop starts.
   */
  start(config: AnyRunConfig, name: string, onEvent: (e: EngineEvent) => void, files?: CsqaFiles): Promise<string>;
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
