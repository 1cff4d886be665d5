// The contracts of the STaR loop (Zelikman et al. 2022, Algorithm 1): the task it trains on, the engine
// that generates and fine-tunes, the store that makes a run resumable, and the records it produces.
// The loop (./loop.ts) depends only on these, so it runs the same against the WebGPU engine, a scripted
// fake in tests, an IndexedDB store in the browser or a folder store in Node.

// Example is defined with the batching that gives it its meaning (loss on the target only); star -> train, not back.
import type { Example } from '../train/batches';
export type { Example };

export type Mode = 'base' | 'direct' | 'star-no-rationalization' | 'star';
export const MODES: readonly Mode[] = ['base', 'direct', 'star-no-rationalization', 'star'];

export type PhaseName = 'seed' | 'generate' | 'filter' | 'rationalize' | 'finetune' | 'evaluate';

export interface TaskAdapter<P> {
  name: string;
  /** The training pool; deterministic for a seed. Never holds an evaluation problem where the task can avoid it. */
  trainProblems(n: number, seed: number): P[];
  /** The held-out evaluation set; deterministic for a seed. */
  evalProblems(n: number, seed: number): P[];
  /** For tasks whose base model is trained from scratch (arithmetic): the supervised seed set. */
  seedExamples?(n: number, seed: number): Example[];
  /** The prompt to continue; `hint` adds the correct answer (STaR's rationalization). */
  prompt(p: P, hint: boolean): string;
  /** Optional: the prompt examples are stored and trained under (default: the hint-free prompt), e.g. the
   * bare question without the few-shot prefix that sampling uses. Never carries the hint. */
  trainPrompt?(p: P): string;
  /** The answer without a rationale (the `direct` baseline's target). */
  directTarget(p: P): string;
  /** The final answer is right (the paper's filter). */
  isCorrect(p: P, completion: string): boolean;
  /** Optional: every step of the rationale is right too (the 'rationale' filter; see StarConfig.filter). */
  isRationaleCorrect?(p: P, completion: string): boolean;
  /**
   * Optional: held-out problems, in neither the seed set nor the evaluation set, for the seed phase's mastery
   * check: `plain` ones of the seed range and, where the seed set shows longer problems with the hint, `hinted`
   * longer ones (hint-following, the start that rationalization extends).
   */
  seedCheckProblems?(n: number, seed: number): { plain: P[]; hinted: P[] };
  /** Optional: the problem back from task.toJSON (hint replay rebuilds the hinted prompt of a kept example). */
  fromJSON?(json: unknown): P;
  /** The parsed answer text, for records. */
  answerOf(completion: string): string | null;
  /** E.g. the digit count "3"; accuracy is reported per category. */
  category(p: P): string;
  maxNewTokens(p: P): number;
  stop: string[];
  /** Optional: where a (partial) completion ends (the index just past its last character), or -1 while
   * it is unfinished; for ends no stop string can express. Text after it is dropped. */
  end?(completion: string): number;
  /** For rationales.jsonl records. */
  toJSON(p: P): unknown;
}

export interface GenOptions {
  /** 0: greedy. */
  temperature: number;
  maxNewTokens: number;
  /** A sequence ends at EOS, at maxNewTokens, or once its text contains one of these. */
  stop: string[];
  /** ...or where this says its text ends (see TaskAdapter.end); the text is cut there. */
  end?(text: string): number;
  seed: number;
  /** The engine should throw `signal.reason` between batches once aborted. */
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
  /** Streams a sequence's text so far; `index` is into the prompts array. */
  onSample?(index: number, text: string, done: boolean): void;
}

export interface FinetuneOptions {
  /** Steps to train; with `until`, the most steps to train (the LR schedule spans them). */
  steps: number;
  seed: number;
  /** The engine should throw `signal.reason` between steps once aborted. */
  signal?: AbortSignal;
  /** `keyLoss`: the mean loss on the task's key tokens (arithmetic: sum digits and carries), when the engine reports it. */
  onStep?(step: number, loss: number, keyLoss?: number): void;
  /** Asked every `every` steps and after the last: true stops training there (the seed phase's mastery check). */
  until?: { every: number; done(step: number): Promise<boolean> };
}

export interface StarEngine {
  /** Fresh random weights (the seed phase). */
  initRandom(seed: number): Promise<void>;
  /** Completions from the current weights, one per prompt, in order. */
  generate(prompts: string[], opts: GenOptions): Promise<{ text: string; tokens: number }[]>;
  /** Trains the current weights in place; `steps` is how many ran (fewer than asked when `until` stopped it). The
   * loop never calls it with no examples. */
  finetune(examples: Example[], opts: FinetuneOptions): Promise<{ losses: number[]; tokens: number; steps?: number; keyLosses?: number[] }>;
  /** Sequences per training step, for step schedules that follow the kept set's size. */
  trainBatch?: number;
  /** safetensors bytes. */
  saveWeights(): Promise<Uint8Array>;
  loadWeights(bytes: Uint8Array): Promise<void>;
}

/** One run's persistent state; a Node folder store and a browser IndexedDB store both implement it. */
export interface RunStore {
  getPhase<T>(iteration: number, phase: PhaseName): Promise<T | undefined>;
  /** Written as ONE unit after the phase ends: a phase is either absent or complete. */
  putPhase<T>(iteration: number, phase: PhaseName, value: T): Promise<void>;
  getWeights(name: string): Promise<Uint8Array | undefined>;
  putWeights(name: string, bytes: Uint8Array): Promise<void>;
  /** Run-level documents: config, summary. */
  getJSON<T>(key: string): Promise<T | undefined>;
  putJSON<T>(key: string, value: T): Promise<void>;
}

// ---- What each phase persists. Problems are not stored: they are re-drawn from the config's seeds. ----

/** A kept rationale; `rationale` is the completion trained on, `prompt` is always hint-free. */
export interface KeptExample {
  prompt: string;
  rationale: string;
  answer: string | null;
  source: 'generated' | 'rationalized';
  /** task.toJSON of the problem. */
  problem: unknown;
  /** task.category of the problem (absent in examples stored by earlier versions). */
  category?: string;
}

interface Timed {
  seconds: number;
}
/** One mastery check of the seed phase: greedy accuracy on held-out seed-range problems after `step` steps. */
export interface SeedCheck {
  step: number;
  accuracy: number;
  byCategory: Record<string, { correct: number; total: number }>;
  /** Accuracy shown the hint on longer problems than the seed range (where the seed set shows some). */
  hinted?: { accuracy: number; byCategory: Record<string, { correct: number; total: number }> };
}

export interface SeedOutput extends Timed {
  /** True when the store already held a base model and no training ran. */
  reused: boolean;
  examples: number;
  /** Steps trained (fewer than seedSteps when the mastery target was reached first). */
  steps: number;
  losses: number[];
  /** The mean loss on key tokens (arithmetic: sum digits and carries) at each loss reading, when reported. */
  keyLosses?: number[];
  tokensTrained: number;
  /** The mastery checks, in order (empty without a target). */
  checks?: SeedCheck[];
  /** The last check reached the target. */
  mastered?: boolean;
}
export interface GenerateOutput extends Timed {
  /** One completion per problem of the iteration's sample, in sample order. */
  completions: string[];
  tokensGenerated: number;
}
export interface FilterOutput extends Timed {
  kept: KeptExample[];
  /** Indices into the iteration's sample whose rationale was not kept (they go to rationalization). */
  failures: number[];
  /** Completions with the right final answer, kept or not (the 'rationale' filter keeps fewer). */
  answerCorrect?: number;
}
export interface RationalizeOutput extends Timed {
  kept: KeptExample[];
  tokensGenerated: number;
  /** Hinted completions with the right final answer, kept or not. */
  answerCorrect?: number;
}
export interface FinetuneOutput extends Timed {
  examples: number;
  steps: number;
  losses: number[];
  /** The mean loss on key tokens at each loss reading (see SeedOutput.keyLosses). */
  keyLosses?: number[];
  tokensTrained: number;
}
export interface EvaluateOutput extends Timed {
  accuracy: number;
  byCategory: Record<string, { correct: number; total: number }>;
  tokensGenerated: number;
}

// ---- What the loop reports. ----

/** One row of summary.json; iteration 0 is the base model. Key names are read by the CLI and UI. */
export interface IterationRecord {
  iteration: number;
  /** Problems a rationale was sampled for (0 for iteration 0 and the direct baseline). */
  generated: number;
  /** Rationales that reached the right answer unaided. */
  correct: number;
  /** Failures rescued by rationalization (answer given as a hint). */
  rationalized: number;
  /** Generated rationales with the right final answer (equals `correct` under the 'answer' filter). */
  correctAnswers: number;
  /** Rationalizations with the right final answer (equals `rationalized` under the 'answer' filter). */
  rationalizedAnswers: number;
  /** What was kept, per category (digit count): solved unaided and rationalized. */
  keptByCategory: Record<string, { correct: number; rationalized: number }>;
  /** Problems that yielded no training example. */
  failed: number;
  trainExamples: number;
  trainSteps: number;
  losses: number[];
  finalLoss: number | null;
  /** The mean loss on the task's key tokens (arithmetic: sum digits and carries) at each reading, when reported. */
  keyLosses?: number[];
  evalAccuracy: number;
  evalAccuracyByDigits: Record<string, number>;
  /** Wall seconds per phase that ran (or ran in an earlier, resumed session). */
  seconds: Partial<Record<PhaseName, number>>;
  /** Every token sampled this iteration: generate, rationalize and evaluate. */
  tokensGenerated: number;
  tokensTrained: number;
  /** (tokensGenerated + tokensTrained) / the iteration's total seconds; 0 when no time was measured. */
  tokensPerSecond: number;
}

export interface StarSummary {
  task: string;
  mode: Mode;
  iterations: IterationRecord[];
  /** The iteration with the highest eval accuracy (the earliest on ties). */
  bestIteration: number;
  bestAccuracy: number;
  finalAccuracy: number;
  /** Problems of the training pool that are also evaluation problems (where the task could not leave them out:
   * arithmetic has only 81 one-digit problems). */
  evalOverlap?: number;
  stoppedBy: 'iterations' | 'patience';
}

export type StarEvent =
  /** `stored`: the phase had finished in an earlier session and was read from the store, not run. */
  | { kind: 'progress'; phase: PhaseName; iteration: number; done: number; total: number; message?: string; stored?: boolean }
  | {
      kind: 'sample';
      iteration: number;
      phase: PhaseName;
      prompt: string;
      text: string;
      done: boolean;
      /** Judged once the sample is done; null while it streams. */
      correct: boolean | null;
      hinted: boolean;
    };
