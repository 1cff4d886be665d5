// Parameters in one flat allocation with named views.
//
// Names follow Hugging Face's Llama checkpoints (model.layers.0.self_attn.q_proj.weight, ...), so a
// safetensors file maps onto the layout by name. Tensors are packed into segments: normally one,
// more only when the device's per-binding limit (maxStorageBufferBindingSize) requires a split.
// Inside a segment, weight-decayed tensors (matrices) come first and the rest (norm weights, biases)
// after, so AdamW decays the range [0, decayEnd) of each segment. Gradients and both AdamW moments
// use the very same layout, so one optimizer dispatch per segment covers every parameter.

import { ALIGN, createBuffer, readF32, subView, upload, type View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { rng, randn } from '../util/random';
import { headDim, type ModelConfig } from './config';

export interface ParamSpec {
  name: string;
  shape: number[];
  /** Matrices get weight decay; norm weights and biases do not. */
  decay: boolean;
  init: 'normal' | 'ones' | 'zeros';
  /** Standard deviation for 'normal'. */
  std: number;
}

export interface ParamEntry extends ParamSpec {
  segment: number;
  /** Offset in floats inside its segment (a multiple of ALIGN/4). */
  offset: number;
  /** Number of floats. */
  size: number;
}

export interface ParamLayout {
  entries: ParamEntry[];
  byName: Map<string, ParamEntry>;
  /** Floats per segment (aligned). */
  segmentSizes: number[];
  /** Per segment: tensors before this float offset are weight-decayed. */
  decayEnds: number[];
  /** Real parameter count (without alignment padding). */
  count: number;
}

const FLOATS_ALIGN = ALIGN / 4;

export function layerName(l: number, rest: string): string {
  return `model.layers.${l}.${rest}`;
}

/** The tensors of a config, in Hugging Face names and PyTorch Linear layout ([out, in]). */
export function paramSpecs(cfg: ModelConfig): ParamSpec[] {
  const C = cfg.dModel;
  const D = headDim(cfg);
  const std = 0.02;
  // GPT-2's scaled init for projections that write into the residual stream.
  const residStd = std / Math.sqrt(2 * cfg.nLayers);
  const mat = (name: string, rows: number, cols: number, s = std): ParamSpec => ({ name, shape: [rows, cols], decay: true, init: 'normal', std: s });
  const vec = (name: string, n: number, init: 'ones' | 'zeros'): ParamSpec => ({ name, shape: [n], decay: false, init, std: 0 });
  const specs: ParamSpec[] = [mat('model.embed_tokens.weight', cfg.vocab, C)];
  for (let l = 0; l < cfg.nLayers; l++) {
    specs.push(
      vec(layerName(l, 'input_layernorm.weight'), C, 'ones'),
      mat(layerName(l, 'self_attn.q_proj.weight'), cfg.nHeads * D, C),
      mat(layerName(l, 'self_attn.k_proj.weight'), cfg.nKvHeads * D, C),
      mat(layerName(l, 'self_attn.v_proj.weight'), cfg.nKvHeads * D, C),
    );
    if (cfg.qkvBias) {
      specs.push(
        vec(layerName(l, 'self_attn.q_proj.bias'), cfg.nHeads * D, 'zeros'),
        vec(layerName(l, 'self_attn.k_proj.bias'), cfg.nKvHeads * D, 'zeros'),
        vec(layerName(l, 'self_attn.v_proj.bias'), cfg.nKvHeads * D, 'zeros'),
      );
    }
    specs.push(
      mat(layerName(l, 'self_attn.o_proj.weight'), C, cfg.nHeads * D, residStd),
      vec(layerName(l, 'post_attention_layernorm.weight'), C, 'ones'),
      mat(layerName(l, 'mlp.gate_proj.weight'), cfg.dFF, C),
      mat(layerName(l, 'mlp.up_proj.weight'), cfg.dFF, C),
      mat(layerName(l, 'mlp.down_proj.weight'), C, cfg.dFF, residStd),
    );
  }
  specs.push(vec('model.norm.weight', C, 'ones'));
  if (!cfg.tieEmbeddings) specs.push(mat('lm_head.weight', cfg.vocab, C));
  return specs;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The model's parameters packed into segments of at most `maxSegmentBytes` (the device's binding limit). */
export function layoutParams(cfg: ModelConfig, maxSegmentBytes = 1 << 30): ParamLayout {
  return layoutSpecs(paramSpecs(cfg), maxSegmentBytes);
}

/** Packs any tensor specs (the model's, or LoRA adapters') into segments of at most `maxSegmentBytes`. */
export function layoutSpecs(specs: ParamSpec[], maxSegmentBytes = 1 << 30): ParamLayout {
  const ordered = [...specs.filter((s) => s.decay), ...specs.filter((s) => !s.decay)];
  const maxFloats = Math.floor(maxSegmentBytes / 4 / FLOATS_ALIGN) * FLOATS_ALIGN;
  const entries: ParamEntry[] = [];
  const segmentSizes: number[] = [0];
  const decayEnds: number[] = [0];
  for (const spec of ordered) {
    const size = numel(spec.shape);
    const padded = Math.ceil(size / FLOATS_ALIGN) * FLOATS_ALIGN;
    if (padded > maxFloats) {
      throw new Error(
        `Parameter ${spec.name} (${spec.shape.join('x')}) needs ${padded * 4} bytes, more than this GPU can bind at once ` +
          `(${maxSegmentBytes} bytes). Use a smaller model.`,
      );
    }
    let seg = segmentSizes.length - 1;
    if (segmentSizes[seg] + padded > maxFloats) {
      segmentSizes.push(0);
      decayEnds.push(0);
      seg++;
    }
    entries.push({ ...spec, segment: seg, offset: segmentSizes[seg], size });
    segmentSizes[seg] += padded;
    if (spec.decay) decayEnds[seg] = segmentSizes[seg];
  }
  return {
    entries,
    byName: new Map(entries.map((e) => [e.name, e])),
    segmentSizes,
    decayEnds,
    count: entries.reduce((a, e) => a + e.size, 0),
  };
}

/** One set of buffers laid out like the parameters: parameters, gradients or an optimizer moment. */
export interface ParamBuffers {
  layout: ParamLayout;
  segments: View[];
  view(name: string): View;
}

export function createParamBuffers(gpu: Gpu, layout: ParamLayout, label: string): ParamBuffers {
  const segments = layout.segmentSizes.map((n, i) => createBuffer(gpu, n * 4, `${label}[${i}]`));
  const views = new Map(layout.entries.map((e) => [e.name, subView(segments[e.segment], e.offset * 4, e.size * 4)]));
  return {
    layout,
    segments,
    view(name) {
      const v = views.get(name);
      if (!v) throw new Error(`No parameter named ${name}`);
      return v;
    },
  };
}

/** Host-side parameters by name (f32), as produced by init or read from a checkpoint. */
export type ParamTensors = Map<string, Float32Array>;

/** Seeded initialisation: normal(0, std) for matrices, ones for norm weights, zeros for biases. */
export function initParams(cfg: ModelConfig, seed: number): ParamTensors {
  return initSpecs(paramSpecs(cfg), seed);
}

/** Seeded initialisation of any tensor specs, each by its `init` and `std`, in spec order. */
export function initSpecs(specs: ParamSpec[], seed: number): ParamTensors {
  const r = rng(seed);
  const out: ParamTensors = new Map();
  for (const s of specs) {
    const n = numel(s.shape);
    out.set(s.name, s.init === 'normal' ? randn(n, r, s.std) : new Float32Array(n).fill(s.init === 'ones' ? 1 : 0));
  }
  return out;
}

/** Uploads every tensor, checking names and sizes. Tensors missing from `tensors` are an error. */
export function uploadParams(gpu: Gpu, bufs: ParamBuffers, tensors: ParamTensors): void {
  for (const e of bufs.layout.entries) {
    const t = tensors.get(e.name);
    if (!t) throw new Error(`Weights are missing tensor ${e.name} (${e.shape.join('x')}).`);
    if (t.length !== e.size) {
      throw new Error(`Tensor ${e.name} has ${t.length} values but the config needs ${e.shape.join('x')} = ${e.size}.`);
    }
    upload(gpu, bufs.view(e.name), t);
  }
}

/** Reads every parameter back into host tensors (for checkpoints and tests). */
export async function downloadParams(gpu: Gpu, bufs: ParamBuffers): Promise<ParamTensors> {
  const out: ParamTensors = new Map();
  const segs = await Promise.all(bufs.segments.map((s) => readF32(gpu, s)));
  for (const e of bufs.layout.entries) out.set(e.name, segs[e.segment].slice(e.offset, e.offset + e.size));
  return out;
}
