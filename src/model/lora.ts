// LoRA (Hu et al. 2021): low-rank adapters on a frozen base model. Each targeted linear layer
// y = x·W^T (+ b) of every block gets two small trainable matrices, A [r, in] and B [out, r]:
//   y += scale · (x·A^T)·B^T,   scale = alpha / rank,
// so W + scale·B·A is never formed while training. B starts at zero, so fresh adapters leave the model
// exactly as it was; A starts random, so B's first gradient is not zero.
//
// Adapters carry PEFT's tensor names (base_model.model.model.layers.{l}.self_attn.q_proj.lora_A.weight)
// and live in their own flat layout (params.ts's layoutSpecs), with their own gradients and AdamW
// moments. With M = BT rows, K = in and N = out:
//   forward   u [M,r]  = x·A^T                 (kept for the backward)
//             y [M,N] += scale · u·B^T          (one accumulating matmul with alpha = scale)
//   backward  dB [N,r] = scale · dy^T·u
//             du [M,r] = scale · dy·B
//             dA [r,K] = du^T·x
//             dx [M,K] += du·A                  (after the base layer's dx = dy·W)
// Generation computes the same two forward matmuls in the inference plan (cheap at small rank) rather
// than merging B·A into a copy of W (twice the memory) or into W itself (un-merging adds rounding).

import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import type { Dispatch } from '../gpu/kernel';
import { matmul } from '../ops/matmul';
import { headDim, type ModelConfig } from './config';
import { createParamBuffers, initSpecs, layerName, layoutSpecs, type ParamBuffers, type ParamLayout, type ParamSpec, type ParamTensors } from './params';

/** A linear layer of a block that can carry an adapter. */
export type LoraTarget = 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down';

/** Every target, in the order of the block (and of the adapter layout). */
export const LORA_TARGETS: readonly LoraTarget[] = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];

export interface LoraConfig {
  /** Rank r of each update B·A (A is [r, in], B is [out, r]); at most the smaller width of every target. */
  rank: number;
  /** Scale numerator: the update is alpha/rank · B·A (PEFT's lora_alpha), so a new rank keeps the step size. */
  alpha: number;
  /** Linear layers of every block that get adapters: attention q, k, v, o and MLP gate, up, down. */
  targets: LoraTarget[];
  /** Dropout on the adapter input (PEFT's lora_dropout). Only 0 is supported. */
  dropout: number;
}

/** PEFT's usual choice for Llama models: rank 8 on the query and value projections. */
export const DEFAULT_LORA: LoraConfig = { rank: 8, alpha: 16, targets: ['q', 'v'], dropout: 0 };

/** The Hugging Face module of a target inside a block (its weight is `${module}.weight`). */
export const LORA_MODULES: Record<LoraTarget, string> = {
  q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj', o: 'self_attn.o_proj',
  gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj',
};

/** [out, in] of a target's weight (PyTorch Linear layout). */
export function targetDims(cfg: ModelConfig, t: LoraTarget): [number, number] {
  const [C, HD, KD, F] = [cfg.dModel, cfg.nHeads * headDim(cfg), cfg.nKvHeads * headDim(cfg), cfg.dFF];
  const dims: Record<LoraTarget, [number, number]> = { q: [HD, C], k: [KD, C], v: [KD, C], o: [C, HD], gate: [F, C], up: [F, C], down: [C, F] };
  return dims[t];
}

/** Whether a target's base layer has a bias: q, k and v in Qwen2-style configs. */
export function hasBias(cfg: ModelConfig, t: LoraTarget): boolean {
  return cfg.qkvBias && (t === 'q' || t === 'k' || t === 'v');
}

/** PEFT's name of an adapter tensor, e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight. */
export function loraName(l: number, t: LoraTarget, which: 'A' | 'B'): string {
  return `base_model.model.${layerName(l, `${LORA_MODULES[t]}.lora_${which}.weight`)}`;
}

export function loraScale(lora: LoraConfig): number {
  return lora.alpha / lora.rank;
}

/** Rejects a bad LoRA config before any GPU work, naming the field. Returns it unchanged. */
export function validateLora(cfg: ModelConfig, lora: LoraConfig): LoraConfig {
  const { rank, alpha, targets, dropout } = lora;
  if (!Number.isInteger(rank) || rank < 1) throw new Error(`LoRA config: rank must be a positive integer, got ${rank}.`);
  if (!(Number.isFinite(alpha) && alpha > 0)) throw new Error(`LoRA config: alpha must be a positive number, got ${alpha}.`);
  if (dropout !== 0) throw new Error(`LoRA config: dropout ${dropout} is not supported; use 0.`);
  if (!Array.isArray(targets) || targets.length === 0) throw new Error(`LoRA config: targets must list at least one of ${LORA_TARGETS.join(', ')}.`);
  for (const t of targets) {
    if (!LORA_TARGETS.includes(t)) throw new Error(`LoRA config: unknown target "${t}"; known targets: ${LORA_TARGETS.join(', ')}.`);
    const [out, inn] = targetDims(cfg, t);
    if (rank > Math.min(out, inn)) throw new Error(`LoRA config: rank ${rank} exceeds the ${t} projection's smaller width (${out}x${inn}); use a rank <= ${Math.min(out, inn)}.`);
  }
  if (new Set(targets).size !== targets.length) throw new Error(`LoRA config: targets [${targets.join(', ')}] name a layer twice.`);
  return lora;
}

/** Same adapters shape and scale (targets in any order). */
export function sameLora(a: LoraConfig, b: LoraConfig): boolean {
  const key = (x: LoraConfig) => JSON.stringify([x.rank, x.alpha, x.dropout, LORA_TARGETS.filter((t) => x.targets.includes(t))]);
  return key(a) === key(b);
}

/**
 * The adapter tensors: per layer, per target in block order, A then B. A ~ normal(0, 1/sqrt(3·in)), the
 * variance of PEFT's kaiming_uniform_(a=sqrt(5)); B = 0. Both are weight-decayed (towards the base model).
 */
export function loraSpecs(cfg: ModelConfig, lora: LoraConfig): ParamSpec[] {
  validateLora(cfg, lora);
  const specs: ParamSpec[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    for (const t of LORA_TARGETS.filter((x) => lora.targets.includes(x))) {
      const [out, inn] = targetDims(cfg, t);
      specs.push(
        { name: loraName(l, t, 'A'), shape: [lora.rank, inn], decay: true, init: 'normal', std: 1 / Math.sqrt(3 * inn) },
        { name: loraName(l, t, 'B'), shape: [out, lora.rank], decay: true, init: 'zeros', std: 0 },
      );
    }
  }
  return specs;
}

export function layoutLora(cfg: ModelConfig, lora: LoraConfig, maxSegmentBytes = 1 << 30): ParamLayout {
  return layoutSpecs(loraSpecs(cfg, lora), maxSegmentBytes);
}

/** Fresh adapters (B = 0: the model is unchanged), seeded. */
export function initLora(cfg: ModelConfig, lora: LoraConfig, seed: number): ParamTensors {
  return initSpecs(loraSpecs(cfg, lora), seed);
}

/** Adapters on the GPU: their config, their tensors (zero until uploaded) and the scale alpha/rank. */
export interface LoraAdapters {
  config: LoraConfig;
  params: ParamBuffers;
  scale: number;
}

export function createLoraAdapters(gpu: Gpu, cfg: ModelConfig, lora: LoraConfig, label = 'lora'): LoraAdapters {
  return { config: lora, params: createParamBuffers(gpu, layoutLora(cfg, lora, gpu.limits.maxStorageBufferBindingSize), label), scale: loraScale(lora) };
}

/**
 * The weights a forward pass reads: the base parameters, with adapters on top when `lora` is set (the
 * base is then frozen). A plain ParamBuffers is a model without adapters, so code that only passes
 * weights along (the generator) needs no change.
 */
export type ModelWeights = ParamBuffers & { lora?: LoraAdapters };

export function withAdapters(base: ParamBuffers, lora: LoraAdapters): ModelWeights {
  return { ...base, lora };
}

/** The adapter of layer l's target t, if the weights carry one. */
export function adapterOf(w: ModelWeights, l: number, t: LoraTarget): { A: View; B: View; r: number; scale: number } | undefined {
  const lora = w.lora;
  if (!lora || !lora.config.targets.includes(t)) return undefined;
  return { A: lora.params.view(loraName(l, t, 'A')), B: lora.params.view(loraName(l, t, 'B')), r: lora.config.rank, scale: lora.scale };
}

export interface LoraForwardArgs {
  x: View; // [M,K] the linear's input
  y: View; // [M,N] the linear's output, added to
  u: View; // [M,r] written: x·A^T
  A: View; // [r,K]
  B: View; // [N,r]
  M: number; N: number; K: number; r: number;
  scale: number;
}

/** y += scale·(x·A^T)·B^T, keeping u = x·A^T. */
export function loraForward(gpu: Gpu, { x, y, u, A, B, M, N, K, r, scale }: LoraForwardArgs): Dispatch[] {
  return [
    ...matmul(gpu, { a: x, b: A, c: u, M, N: r, K, transB: true }),
    ...matmul(gpu, { a: u, b: B, c: y, M, N, K: r, transB: true, accumulate: true, alpha: scale }),
  ];
}

export interface LoraBackwardArgs extends Omit<LoraForwardArgs, 'y'> {
  dy: View; // [M,N]
  dx: View; // [M,K] added to (the base layer wrote dy·W first)
  du: View; // [M,r] scratch
  dA: View; // [r,K] written
  dB: View; // [N,r] written
}

/** dB = scale·dy^T·u, du = scale·dy·B, dA = du^T·x, dx += du·A. */
export function loraBackward(gpu: Gpu, { x, u, A, B, M, N, K, r, scale, dy, dx, du, dA, dB }: LoraBackwardArgs): Dispatch[] {
  return [
    ...matmul(gpu, { a: dy, b: u, c: dB, M: N, N: r, K: M, transA: true, alpha: scale }),
    ...matmul(gpu, { a: dy, b: B, c: du, M, N: r, K: N, alpha: scale }),
    ...matmul(gpu, { a: du, b: x, c: dA, M: r, N: K, K: M, transA: true }),
    ...matmul(gpu, { a: du, b: A, c: dx, M, N: K, K: r, accumulate: true }),
  ];
}

/**
 * Host-side merge for export: every targeted weight becomes W + scale·B·A (summed in float64, rounded
 * once to f32); other tensors are shared with `base`, not copied.
 */
export function mergeLora(cfg: ModelConfig, lora: LoraConfig, base: ParamTensors, adapters: ParamTensors): ParamTensors {
  const out: ParamTensors = new Map(base);
  const s = loraScale(lora);
  const r = lora.rank;
  const get = (m: ParamTensors, name: string) => {
    const t = m.get(name);
    if (!t) throw new Error(`mergeLora: missing tensor ${name}`);
    return t;
  };
  for (let l = 0; l < cfg.nLayers; l++) {
    for (const t of lora.targets) {
      const [N, K] = targetDims(cfg, t);
      const wName = layerName(l, `${LORA_MODULES[t]}.weight`);
      const [W, A, B] = [get(base, wName), get(adapters, loraName(l, t, 'A')), get(adapters, loraName(l, t, 'B'))];
      const merged = new Float32Array(N * K);
      for (let n = 0; n < N; n++) {
        for (let k = 0; k < K; k++) {
          let d = 0;
          for (let i = 0; i < r; i++) d += B[n * r + i] * A[i * K + k];
          merged[n * K + k] = W[n * K + k] + s * d;
        }
      }
      out.set(wName, merged);
    }
  }
  return out;
}
