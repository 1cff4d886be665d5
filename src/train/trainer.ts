// A whole training step on the GPU: forward, loss, backward, gradient clipping and AdamW, encoded into
// one command buffer with nothing read back. Buffers and dispatches are made once per (config, batch
// shape); steps reuse them. The loss is read back only when asked.
//
// What trains is one flat set of buffers (its gradients and AdamW moments share its layout): every
// parameter (full fine-tuning, the default), or with LoRA only the adapters, the base staying frozen.
// Clipping and AdamW run over that set's segments either way. A frozen base may store its matrices in
// f16 (baseDtype, the default under LoRA: half the memory of the base; the kernels accumulate in f32).

import { createBuffer, readF32, upload, type View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, encode } from '../gpu/kernel';
import { adamw, type AdamwHyper, gradNormSq, setAdamwHyper } from '../ops/adamw';
import { crossEntropy, lossWeights, weightedSum } from '../ops/cross_entropy';
import { buildTokenIndex, uploadTokenIndex } from '../ops/embedding';
import { type Acts, actsWithin, allocateActs, baseDtypeFor } from '../model/activations';
import { type ModelConfig, validateConfig, validateTokens } from '../model/config';
import { createLoraAdapters, type LoraConfig, type ModelWeights, sameLora, validateLora, withAdapters } from '../model/lora';
import { createParamBuffers, downloadParams, layoutParams, matrixDtype, type ParamBuffers, type ParamDtype, type ParamTensors, uploadParams } from '../model/params';
import { buildBackward, buildForward, type Shape } from '../model/transformer';
import { blocksOf } from '../model/vocab';
import { DEFAULT_OPTIM, type OptimConfig } from './config';
import { lrAt } from './schedule';
import { submitCommands } from '../gpu/counters';

/** One batch of B sequences of T tokens, row-major [B, T]. */
export interface Batch {
  tokens: Uint32Array;
  /** Next-token targets; ignored where mask is 0. */
  targets: Uint32Array;
  /** 1 for tokens whose prediction is trained (rationale and answer), 0 elsewhere (prompt, padding). */
  mask: Float32Array;
  /** Optional: 1 where the predicted token is a key token (arithmetic: a new sum digit or carry), for a loss on those alone. */
  key?: Float32Array;
  /** Per sequence, the index of its first real token (left padding). Omitted: all zero. */
  start?: Uint32Array;
}

export interface Trainer {
  cfg: ModelConfig;
  shape: Shape;
  optim: OptimConfig;
  /** The weights the forward reads: the base parameters, and the adapters (params.lora) with LoRA. */
  params: ModelWeights;
  /** What trains: params itself, or params.lora.params with LoRA. */
  trainable: ParamBuffers;
  /** Gradients of `trainable`, in its layout. */
  grads: ParamBuffers;
  acts: Acts<View>;
  /** What one trainStep encodes, in order (after the gradients are cleared): for per-kernel profiles. */
  stepDispatches: readonly Dispatch[];
  /** Optimizer steps taken so far (by every trainer sharing this one's optimizer state). */
  readonly step: number;
  /** Gradients, AdamW moments and step count: pass it to another trainer (another batch shape, the same weights)
   * so that one optimizer runs across both. */
  optimizer: OptimizerState;
  setBatch(batch: Batch): void;
  /** Submits forward + loss only (no gradients): logits and loss become readable. */
  forward(): void;
  /** Submits one full training step; `totalSteps` shapes the LR schedule. Returns the LR used. */
  trainStep(totalSteps: number): number;
  readLoss(): Promise<number>;
  /** The global gradient norm of the last trainStep, before clipping (NaN or Infinity when a gradient was). */
  readGradNorm(): Promise<number>;
  /** Logits [B*T, V] (joined from their row blocks). */
  readLogits(): Promise<Float32Array>;
  /** Per-position losses [B*T] of the last step (lse - logit of the target, whatever the position's weight). */
  readRowLosses(): Promise<Float32Array>;
  /** The base parameters by Hugging Face name, as f32 (widened from an f16 base: the values it holds). */
  readParams(): Promise<ParamTensors>;
  /** Uploads the base parameters (an f16 base rounds each to the nearest half and refuses values beyond its range). */
  loadParams(tensors: ParamTensors): void;
  /** LoRA only: the adapters by PEFT name. */
  readAdapters(): Promise<ParamTensors>;
  loadAdapters(tensors: ParamTensors): void;
  /** Resets step count and AdamW moments (a fresh fine-tune from whatever weights are loaded). */
  resetOptimizer(): void;
  /** Frees everything this trainer allocated (not shared parameters passed in). */
  destroy(): void;
}

/**
 * Training produced a NaN or an infinity: the loss, the gradient norm or a trained weight. `step` is the step
 * at which it was seen, 0 when seen in the weights after training (the loss is read every few steps, so it
 * may have started a few steps before); `what` says what was seen, and where.
 */
export class DivergenceError extends Error {
  constructor(readonly step: number, what: string, optim: OptimConfig) {
    super(
      `Training diverged: ${what}. Nothing from this fine-tune was saved; the run keeps its last ` +
        `completed phase. Lower the learning rate (it is ${optim.lr}; try ${Number((optim.lr / 10).toPrecision(3))} or less), keep gradient clipping on ` +
        `(maxGradNorm ${optim.maxGradNorm}${optim.maxGradNorm > 0 ? '' : ': off'}) or warm up longer (${optim.warmupSteps} steps), then start the run again.`,
    );
    this.name = 'DivergenceError';
  }
}

/** What training accumulates besides the weights: gradients (cleared every step), AdamW's moments, the step count. */
export interface OptimizerState {
  grads: ParamBuffers;
  m: ParamBuffers;
  v: ParamBuffers;
  step: number;
}

export interface TrainerOptions {
  /**
   * Weights owned by someone else (a generator, another trainer of another shape): the trainer trains
   * them in place and does not free them. Weights with adapters (see withAdapters) train those adapters.
   */
  shared?: ModelWeights;
  /** LoRA: train adapters of this config (own ones, zero until loadAdapters, unless shared) on a frozen base. */
  lora?: LoraConfig;
  /**
   * How the trainer's own base stores its matrices: 'f16' (the default with LoRA: half the memory; loadParams
   * rounds each weight to the nearest half, products accumulate in f32) or 'f32' (the only choice without LoRA).
   * With shared weights it must match theirs (it is taken from them when omitted).
   */
  baseDtype?: ParamDtype;
  /** Another trainer's optimizer state (same trainable weights): this trainer steps the same optimizer. */
  optimizer?: OptimizerState;
  /**
   * Activations of a longer batch, owned by someone else: this trainer uses the start of each buffer
   * (actsWithin) and does not free them. Trainers that share them must not run at once (bucketed training).
   */
  actsArena?: Acts<View>;
}

export function createTrainer(gpu: Gpu, cfg: ModelConfig, shape: Shape, optim: OptimConfig = DEFAULT_OPTIM, opts: TrainerOptions = {}): Trainer {
  validateConfig(cfg);
  const { shared } = opts;
  if (opts.lora) validateLora(cfg, opts.lora);
  if (opts.lora && shared?.lora && !sameLora(opts.lora, shared.lora.config)) throw new Error('createTrainer: the lora config differs from the shared adapters\' config');
  const { B, T } = shape;
  if (!Number.isInteger(B) || B <= 0) throw new Error(`Batch size must be a positive integer, got ${B}.`);
  if (!Number.isInteger(T) || T <= 0 || T > cfg.maxSeq) throw new Error(`Sequence length must be 1..${cfg.maxSeq}, got ${T}.`);
  const BT = B * T;
  const lora = shared?.lora?.config ?? opts.lora;
  const sharedDtype = shared && matrixDtype(shared.layout);
  if (sharedDtype && opts.baseDtype && opts.baseDtype !== sharedDtype) {
    throw new Error(`createTrainer: baseDtype ${opts.baseDtype} differs from the shared weights, which store their matrices in ${sharedDtype}; omit baseDtype to use theirs.`);
  }
  const baseDtype = baseDtypeFor(lora, opts.baseDtype ?? sharedDtype);
  const layout = layoutParams(cfg, gpu.limits.maxStorageBufferBindingSize, baseDtype);
  if (shared && shared.layout.segmentSizes.join() !== layout.segmentSizes.join()) throw new Error('createTrainer: shared parameters have another layout');
  // Activations first: allocateActs refuses a batch with a buffer over the binding limit before anything is allocated.
  const inArena = opts.actsArena && actsWithin(opts.actsArena, cfg, B, T, lora, gpu.limits.maxStorageBufferBindingSize);
  const acts = inArena || allocateActs(gpu, cfg, B, T, lora);
  const base: ModelWeights = shared ?? createParamBuffers(gpu, layout, 'params');
  // LoRA: the shared weights' adapters, or own ones.
  const ownAdapters = opts.lora && !base.lora ? createLoraAdapters(gpu, cfg, opts.lora) : undefined;
  const params = ownAdapters ? withAdapters(base, ownAdapters) : base;
  const adapters = params.lora;
  const trainable = adapters?.params ?? params;
  const tLayout = trainable.layout;
  if (opts.optimizer && opts.optimizer.grads.layout.segmentSizes.join() !== tLayout.segmentSizes.join()) {
    throw new Error('createTrainer: the shared optimizer state belongs to other trainable weights');
  }
  const state: OptimizerState = opts.optimizer ?? {
    grads: createParamBuffers(gpu, tLayout, 'grads'), m: createParamBuffers(gpu, tLayout, 'adam.m'), v: createParamBuffers(gpu, tLayout, 'adam.v'), step: 0,
  };
  const { grads, m, v } = state;
  const nSeg = tLayout.segmentSizes.length;
  // The global norm sums over segments: one partial per segment, each in its own 256-byte slot (storage
  // bindings must be aligned), then one weighted sum whose weights pick slot starts.
  const SLOT = 64;
  const segNorms = nSeg > 1 ? createBuffer(gpu, nSeg * SLOT * 4, 'grad.segNorms') : acts.normSq;
  const ones = nSeg > 1 ? createBuffer(gpu, nSeg * SLOT * 4, 'grad.slotWeights') : acts.normSq;
  if (nSeg > 1) upload(gpu, ones, Float32Array.from({ length: nSeg * SLOT }, (_, i) => (i % SLOT === 0 ? 1 : 0)));

  const forwardPass = buildForward(gpu, cfg, params, acts, shape);
  // The loss per block of logits rows (one block unless [BT, V] exceeds a binding), then one mean.
  const logitBlocks = blocksOf(acts.logits, cfg.vocab);
  const loss = (grad: boolean) => [
    ...logitBlocks.flatMap((b) =>
      crossEntropy(gpu, { logits: b.view, targets: acts.targets, weights: acts.weights, losses: acts.losses, rows: b.rows, row0: b.first, V: cfg.vocab, grad }),
    ),
    ...weightedSum(gpu, { losses: acts.losses, weights: acts.weights, out: acts.loss, rows: BT }),
  ];
  const lossOnly = loss(false);
  const lossAndGrad = loss(true);
  const backwardPass = buildBackward(gpu, cfg, params, grads, acts, shape);
  const hyper = (step: number, lr: number): AdamwHyper => ({
    lr, beta1: optim.beta1, beta2: optim.beta2, eps: optim.eps, weightDecay: optim.weightDecay, step, maxGradNorm: optim.maxGradNorm,
  });
  const norm: Dispatch[] = [];
  for (let s = 0; s < nSeg; s++) {
    const out = nSeg > 1 ? { buffer: segNorms.buffer, offset: s * SLOT * 4, size: 4 } : acts.normSq;
    norm.push(...gradNormSq(gpu, { grads: grads.segments[s], partials: acts.normPartials, out, n: tLayout.segmentSizes[s] }));
  }
  if (nSeg > 1) norm.push(...weightedSum(gpu, { losses: segNorms, weights: ones, out: acts.normSq, rows: nSeg * SLOT }));
  const update = tLayout.segmentSizes.map((n, s) =>
    adamw(gpu, {
      params: trainable.segments[s], grads: grads.segments[s], m: m.segments[s], v: v.segments[s],
      normSq: acts.normSq, n, decayEnd: tLayout.decayEnds[s], hyper: hyper(1, optim.lr),
    }),
  );

  const loraOnly = () => {
    if (!adapters) throw new Error('This trainer has no LoRA adapters (create it with { lora }).');
    return adapters;
  };
  const submit = (dispatches: Dispatch[], clearGrads: boolean) => {
    const enc = gpu.device.createCommandEncoder();
    if (clearGrads) for (const g of grads.segments) enc.clearBuffer(g.buffer);
    const pass = enc.beginComputePass();
    encode(pass, dispatches);
    pass.end();
    submitCommands(gpu, enc);
  };
  const trainDispatches = [...forwardPass, ...lossAndGrad, ...backwardPass, ...norm, ...update.flat()];
  const inference = [...forwardPass, ...lossOnly];

  const trainer: Trainer = {
    cfg, shape, optim, params, trainable, grads, acts, stepDispatches: trainDispatches, optimizer: state,
    get step() {
      return state.step;
    },
    setBatch(batch) {
      for (const [name, arr] of [['tokens', batch.tokens], ['targets', batch.targets], ['mask', batch.mask]] as const) {
        if (arr.length !== BT) throw new Error(`Batch ${name} has ${arr.length} entries; this trainer takes B*T = ${B}*${T} = ${BT}.`);
      }
      validateTokens(cfg, batch.tokens, T);
      validateTokens(cfg, batch.targets, T);
      const start = batch.start ?? new Uint32Array(B);
      if (start.length !== B) throw new Error(`Batch start has ${start.length} entries; expected B = ${B}.`);
      const positions = new Uint32Array(BT);
      for (let b = 0; b < B; b++) {
        if (start[b] >= T) throw new Error(`Sequence ${b} starts at ${start[b]}, past its length ${T}.`);
        for (let t = 0; t < T; t++) positions[b * T + t] = Math.max(0, t - start[b]);
      }
      upload(gpu, acts.tokens, batch.tokens);
      upload(gpu, acts.targets, batch.targets);
      upload(gpu, acts.weights, lossWeights(batch.mask));
      upload(gpu, acts.positions, positions);
      upload(gpu, acts.start, start);
      const idx = buildTokenIndex(batch.tokens, cfg.vocab);
      uploadTokenIndex(gpu, idx, { unique: acts.tokUnique, offsets: acts.tokOffsets, positions: acts.tokPositions }, BT);
    },
    forward() {
      submit(inference, false);
    },
    trainStep(totalSteps) {
      state.step++;
      const lr = lrAt(state.step, {
        lr: optim.lr, warmupSteps: optim.warmupSteps, totalSteps: Math.max(totalSteps, state.step), kind: optim.schedule, minLrRatio: optim.minLrRatio,
      });
      for (const u of update) setAdamwHyper(gpu, u, hyper(state.step, lr));
      submit(trainDispatches, true);
      return lr;
    },
    async readLoss() {
      return (await readF32(gpu, acts.loss))[0];
    },
    async readGradNorm() {
      return Math.sqrt((await readF32(gpu, acts.normSq))[0]);
    },
    async readLogits() {
      const out = new Float32Array(BT * cfg.vocab);
      const blocks = await Promise.all(logitBlocks.map((b) => readF32(gpu, b.view)));
      logitBlocks.forEach((b, i) => out.set(blocks[i], b.first * cfg.vocab));
      return out;
    },
    readRowLosses() {
      return readF32(gpu, acts.losses);
    },
    async readParams() {
      return downloadParams(gpu, base);
    },
    loadParams(tensors) {
      uploadParams(gpu, base, tensors);
    },
    async readAdapters() {
      return downloadParams(gpu, loraOnly().params);
    },
    loadAdapters(tensors) {
      uploadParams(gpu, loraOnly().params, tensors);
    },
    destroy() {
      const ownState = opts.optimizer ? [] : [...grads.segments, ...m.segments, ...v.segments];
      const own = [...(shared ? [] : base.segments), ...(ownAdapters?.params.segments ?? []), ...ownState];
      for (const s of own) s.buffer.destroy();
      const seen = new Set<GPUBuffer>();
      const free = (x: unknown): void => {
        if (Array.isArray(x)) x.forEach(free);
        else if (x && typeof x === 'object' && 'buffer' in x) {
          const b = (x as View).buffer;
          if (!seen.has(b)) b.destroy();
          seen.add(b);
        } else if (x && typeof x === 'object') Object.values(x).forEach(free);
      };
      if (!inArena) free(acts);
      if (nSeg > 1) [segNorms, ones].forEach((b) => b.buffer.destroy());
    },
    resetOptimizer() {
      state.step = 0;
      const enc = gpu.device.createCommandEncoder();
      for (const s of [...m.segments, ...v.segments]) enc.clearBuffer(s.buffer);
      submitCommands(gpu, enc);
    },
  };
  return trainer;
}
