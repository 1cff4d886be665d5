// The activation buffers of one (config, batch shape), and the memory report built from the same sizes.
//
// Sizes are computed first (in floats) and allocated second, so the memory report the app shows
// before a run is exactly what the trainer will allocate. With LoRA, each targeted linear also keeps
// u = x·A^T [BT, r] (src/model/lora.ts), and the backward has one du scratch of the same size.
// Both depend on the device's binding limit (maxBindingBytes, default 1 GiB): the logits [BT, V] are
// split into row blocks that each fit one binding (src/model/vocab.ts), and the parameter layout into
// segments and row chunks (src/model/params.ts). allocateActs refuses a batch with any other buffer
// over the limit, naming the largest B x T that fits.

import { createBuffer, subView, type View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { gradNormPartials } from '../ops/adamw';
import { headDim, type ModelConfig } from './config';
import { layoutLora, type LoraConfig, type LoraTarget } from './lora';
import { layoutParams, type ParamDtype, type ParamLayout } from './params';
import { logitBlocks } from './vocab';

/** What one transformer block keeps from its forward pass for the backward pass. */
export interface LayerActs<T> {
  xIn: T; // [BT, C] residual stream entering the block
  rstd1: T; // [BT]
  xn1: T; // [BT, C]
  q: T; // [BT, H*D] after RoPE
  k: T; // [BT, Hkv*D] after RoPE
  v: T; // [BT, Hkv*D]
  att: T; // [BT, H*D] attention output, before o_proj
  lse: T; // [B, H, T]
  xMid: T; // [BT, C] residual after attention
  rstd2: T; // [BT]
  xn2: T; // [BT, C]
  gate: T; // [BT, F]
  up: T; // [BT, F]
  h: T; // [BT, F] silu(gate) * up
  lora: Partial<Record<LoraTarget, T>>; // [BT, r] u = x·A^T per targeted linear (empty without LoRA)
}

export interface Acts<T> {
  // Inputs of a batch.
  tokens: T; // [BT] u32
  targets: T; // [BT] u32
  weights: T; // [BT] loss weight per token (mask / count)
  positions: T; // [BT] u32 RoPE positions
  start: T; // [B] u32 first real token (left padding)
  tokUnique: T; // [BT] u32 token index for the embedding backward
  tokOffsets: T; // [BT+1] u32
  tokPositions: T; // [BT] u32
  // Forward.
  layers: LayerActs<T>[];
  xOut: T; // [BT, C] residual leaving the last block
  rstdF: T; // [BT]
  xnF: T; // [BT, C]
  logits: T[]; // [BT, V] as row blocks (logitBlocks), each overwritten in place by dlogits in a training step
  losses: T; // [BT]
  loss: T; // [1]
  proj: T; // [BT, C] scratch: o_proj / down_proj output before the residual add
  // Backward scratch.
  dres: T; // [BT, C] gradient of the residual stream
  dxn: T; // [BT, C]
  dq: T; // [BT, H*D] (also the gradient of `att`)
  dk: T; // [BT, Hkv*D]
  dv: T; // [BT, Hkv*D]
  datt: T; // [BT, H*D]
  dgate: T; // [BT, F]
  dup: T; // [BT, F]
  dh: T; // [BT, F]
  delta: T; // [B, H, T]
  normPartials: T; // gradient-norm reduction scratch
  normSq: T; // [1]
  loraDu?: T; // [BT, r] LoRA backward scratch (only with LoRA)
}

/** The default binding limit of sizes computed without a device, as for layoutParams. */
export const DEFAULT_BINDING_BYTES = 1 << 30;

/**
 * Float counts of every activation buffer for a batch of B sequences of T tokens (with LoRA adapters of
 * `lora`), on a device binding at most `maxBindingBytes` per buffer.
 */
export function activationSizes(cfg: ModelConfig, B: number, T: number, lora?: LoraConfig, maxBindingBytes = DEFAULT_BINDING_BYTES): Acts<number> {
  const BT = B * T;
  const C = cfg.dModel;
  const D = headDim(cfg);
  const HD = cfg.nHeads * D;
  const KD = cfg.nKvHeads * D;
  const F = cfg.dFF;
  const layer = (): LayerActs<number> => ({
    xIn: BT * C, rstd1: BT, xn1: BT * C, q: BT * HD, k: BT * KD, v: BT * KD, att: BT * HD,
    lse: B * cfg.nHeads * T, xMid: BT * C, rstd2: BT, xn2: BT * C, gate: BT * F, up: BT * F, h: BT * F,
    lora: Object.fromEntries((lora?.targets ?? []).map((t) => [t, BT * lora!.rank])),
  });
  // The gradient norm runs over what is trained: the adapters with LoRA, else every parameter.
  const maxSeg = Math.max(...trainableLayout(cfg, lora, maxBindingBytes).segmentSizes);
  return {
    tokens: BT, targets: BT, weights: BT, positions: BT, start: B, tokUnique: BT, tokOffsets: BT + 1, tokPositions: BT,
    layers: Array.from({ length: cfg.nLayers }, layer),
    xOut: BT * C, rstdF: BT, xnF: BT * C, logits: logitBlocks(cfg.vocab, BT, maxBindingBytes).map((b) => b.rows * cfg.vocab),
    losses: BT, loss: 1, proj: BT * C,
    dres: BT * C, dxn: BT * C, dq: BT * HD, dk: BT * KD, dv: BT * KD, datt: BT * HD, dgate: BT * F, dup: BT * F, dh: BT * F,
    delta: B * cfg.nHeads * T, normPartials: gradNormPartials(maxSeg), normSq: 1,
    ...(lora ? { loraDu: BT * lora.rank } : {}),
  };
}

function trainableLayout(cfg: ModelConfig, lora: LoraConfig | undefined, maxBindingBytes: number): ParamLayout {
  return lora ? layoutLora(cfg, lora, maxBindingBytes) : layoutParams(cfg, maxBindingBytes);
}

function mapActs<A, B>(acts: Acts<A>, f: (a: A, name: string) => B): Acts<B> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(acts)) {
    if (k === 'layers') out[k] = (v as LayerActs<A>[]).map((l, i) => mapLayer(l, (a, n) => f(a, `layers.${i}.${n}`)));
    else if (Array.isArray(v)) out[k] = (v as A[]).map((a, i) => f(a, `${k}.${i}`));
    else out[k] = f(v as A, k);
  }
  return out as unknown as Acts<B>;
}

function mapLayer<A, B>(l: LayerActs<A>, f: (a: A, name: string) => B): LayerActs<B> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(l)) {
    out[k] = k === 'lora' ? Object.fromEntries(Object.entries(v as Record<string, A>).map(([t, a]) => [t, f(a, `lora.${t}`)])) : f(v as A, k);
  }
  return out as unknown as LayerActs<B>;
}

/** The activations of a batch on this device; refuses a batch with a buffer larger than one binding. */
export function allocateActs(gpu: Gpu, cfg: ModelConfig, B: number, T: number, lora?: LoraConfig): Acts<View> {
  const limit = gpu.limits.maxStorageBufferBindingSize;
  const sizes = activationSizes(cfg, B, T, lora, limit);
  const big = largestActivation(sizes);
  if (big.floats * 4 > limit) {
    // Every buffer over the limit grows with B*T (the logits are already split), so search the largest B*T that fits.
    let [lo, hi] = [0, B * T];
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (largestActivation(activationSizes(cfg, 1, mid, lora, limit)).floats * 4 <= limit) lo = mid;
      else hi = mid - 1;
    }
    throw new Error(
      `The activation ${big.name} of a batch of ${B} x ${T} tokens needs ${big.floats * 4} bytes, more than this GPU can bind at once ` +
        `(maxStorageBufferBindingSize ${limit} bytes). ` +
        (lo > 0 ? `Use a smaller batch or shorter sequences: batch x sequence length at most ${lo}.` : 'Use a smaller model.'),
    );
  }
  return mapActs(sizes, (n, name) => createBuffer(gpu, n * 4, name));
}

/**
 * The activations of a batch of B x T inside `arena`, activations allocated for a longer batch: each a view of the
 * start of the arena's buffer of the same name (every activation is laid out so that a shorter batch is a prefix).
 * Trainers of several lengths that never run at once (bucketed training) then share one set of buffers. Null when
 * the arena cannot hold them (a buffer too small, or split differently).
 */
export function actsWithin(arena: Acts<View>, cfg: ModelConfig, B: number, T: number, lora: LoraConfig | undefined, maxBindingBytes: number): Acts<View> | null {
  const byName = new Map<string, View>();
  mapActs(arena, (v, name) => byName.set(name, v));
  let fits = true;
  const acts = mapActs(activationSizes(cfg, B, T, lora, maxBindingBytes), (n, name) => {
    const v = byName.get(name);
    if (!v || v.size < n * 4) {
      fits = false;
      return v as View;
    }
    return subView(v, 0, n * 4);
  });
  return fits ? acts : null;
}

function largestActivation(acts: Acts<number>): { name: string; floats: number } {
  let big = { name: '', floats: 0 };
  mapActs(acts, (n, name) => {
    if (n > big.floats) big = { name, floats: n };
  });
  return big;
}

function totalFloats(acts: Acts<number>): number {
  let s = 0;
  mapActs(acts, (n) => (s += n));
  return s;
}

/** GPU memory in bytes, by category, for training a config at a batch shape. */
export interface MemoryReport {
  /** Every parameter held: frozenParams + trainableParams. */
  params: number;
  /** The frozen base model under LoRA (its matrices at 2 bytes each with an f16 base); 0 with full fine-tuning. */
  frozenParams: number;
  /** How the base model's matrices are stored: f16 only as a frozen base under LoRA. */
  baseDtype: ParamDtype;
  /** What is trained: the adapters under LoRA, else every parameter. */
  trainableParams: number;
  /** Gradients of the trainable parameters. */
  grads: number;
  /** AdamW's two moments of the trainable parameters. */
  optimizer: number;
  activations: number;
  kvCache: number;
  total: number;
}

const layoutBytes = (layout: ParamLayout) => layout.segmentSizes.reduce((a, b) => a + b, 0) * 4;

/**
 * The base model's storage when none is asked for: f16 for a frozen base under LoRA, f32 when every weight
 * trains. Refuses f16 without LoRA (AdamW updates f32 weights in place).
 */
export function baseDtypeFor(lora: LoraConfig | undefined, asked?: ParamDtype): ParamDtype {
  if (asked === 'f16' && !lora) {
    throw new Error('baseDtype f16 keeps a frozen base in half precision, but full fine-tuning trains every weight in f32: use baseDtype f32, or fine-tune LoRA adapters.');
  }
  if (asked !== undefined && asked !== 'f16' && asked !== 'f32') throw new Error(`baseDtype must be 'f16' or 'f32', got ${JSON.stringify(asked)}.`);
  return asked ?? (lora ? 'f16' : 'f32');
}

/**
 * `lora`: fine-tune adapters of this config on a frozen base instead of every parameter.
 * `baseDtype`: how that frozen base stores its matrices (default f16 with LoRA; f32 without, the only choice).
 * `maxBindingBytes`: the device's maxStorageBufferBindingSize (default 1 GiB), which decides the splits.
 */
export function memoryReport(
  cfg: ModelConfig,
  shape: { B: number; T: number; kvCache?: number; lora?: LoraConfig; baseDtype?: ParamDtype; maxBindingBytes?: number },
): MemoryReport {
  const { lora } = shape;
  const baseDtype = baseDtypeFor(lora, shape.baseDtype);
  const limit = shape.maxBindingBytes ?? DEFAULT_BINDING_BYTES;
  const frozenParams = lora ? layoutBytes(layoutParams(cfg, limit, baseDtype)) : 0;
  const trainableParams = layoutBytes(trainableLayout(cfg, lora, limit));
  const activations = totalFloats(activationSizes(cfg, shape.B, shape.T, lora, limit)) * 4;
  const kvCache = shape.kvCache ?? 0;
  const r = { params: frozenParams + trainableParams, frozenParams, baseDtype, trainableParams, grads: trainableParams, optimizer: 2 * trainableParams, activations, kvCache };
  return { ...r, total: r.params + r.grads + r.optimizer + r.activations + r.kvCache };
}
