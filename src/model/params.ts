// Parameters in one flat allocation with named views.
//
// Names follow Hugging Face's Llama checkpoints (model.layers.0.self_attn.q_proj.weight, ...), so a
// safetensors file maps onto the layout by name. Tensors are packed into segments: normally one,
// more only when the device's per-binding limit (maxStorageBufferBindingSize) requires a split.
// Inside a segment, weight-decayed tensors (matrices) come first and the rest (norm weights, biases)
// after, so AdamW decays the range [0, decayEnd) of each segment. Gradients and both AdamW moments
// use the very same layout, so one optimizer dispatch per segment covers every parameter.
//
// A tensor larger than one binding (the token embedding and LM head of a large vocabulary, marked
// splitRows) is stored as row chunks of near-equal size, each its own part in some segment: vocabulary
// rows [first, first + rows). Entries stay whole tensors with their Hugging Face names; uploadParams and
// downloadParams split and join them, and the model reads the chunks through chunks(name).
//
// Storage dtype: every tensor is f32 unless its spec says 'f16'. A frozen base model under LoRA keeps its
// matrices in f16 (layoutParams(cfg, limit, 'f16'); norm weights and biases stay f32, they are tiny): IEEE
// halves packed two per 32-bit word (src/util/half.ts, packF16), which every kernel that reads weights widens
// to f32 with WGSL's core unpack2x16float (so any adapter runs it, shader-f16 or not), accumulating in f32.
// uploadParams rounds to nearest-even on the way in and downloadParams widens on the way out, so callers
// always see f32 tensors. Only frozen weights may be f16: gradients, AdamW and adapters are f32.

import { ALIGN, createBuffer, readF32, subView, upload, type View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { packF16, roundToF16, unpackF16 } from '../util/half';
import { rng, randn } from '../util/random';
import { headDim, type ModelConfig } from './config';

/** How a tensor is stored on the GPU: f32, or IEEE halves packed two per 32-bit word. */
export type ParamDtype = 'f32' | 'f16';

export interface ParamSpec {
  name: string;
  shape: number[];
  /** Matrices get weight decay; norm weights and biases do not. */
  decay: boolean;
  init: 'normal' | 'ones' | 'zeros';
  /** Standard deviation for 'normal'. */
  std: number;
  /** May be stored as row chunks when larger than one binding (its readers handle chunks). */
  splitRows?: boolean;
  /** Storage on the GPU; default 'f32'. 'f16' only for frozen weights (nothing writes them but uploadParams). */
  dtype?: ParamDtype;
}

/** Rows [first, first + rows) of a tensor's first dimension, stored contiguously in one segment. */
export interface ParamPart {
  segment: number;
  /** Offset in 32-bit words inside its segment (a multiple of ALIGN/4). */
  offset: number;
  first: number;
  rows: number;
  /** Number of elements (an f16 part takes half as many words, rounded up). */
  size: number;
}

export interface ParamEntry extends ParamSpec {
  dtype: ParamDtype;
  /** Number of elements. */
  size: number;
  /** Where it is stored: one part holding the whole tensor, or its row chunks in order. */
  parts: ParamPart[];
}

export interface ParamLayout {
  entries: ParamEntry[];
  byName: Map<string, ParamEntry>;
  /** 32-bit words per segment (aligned): floats, when every tensor is f32. */
  segmentSizes: number[];
  /** Per segment: tensors before this word offset are weight-decayed. */
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
  const specs: ParamSpec[] = [{ ...mat('model.embed_tokens.weight', cfg.vocab, C), splitRows: true }];
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
  if (!cfg.tieEmbeddings) specs.push({ ...mat('lm_head.weight', cfg.vocab, C), splitRows: true });
  return specs;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * The model's parameters packed into segments of at most `maxSegmentBytes` (the device's binding limit).
 * `matrices` 'f16': the matrices (everything weight-decayed) are stored in f16, for a frozen base under LoRA.
 */
export function layoutParams(cfg: ModelConfig, maxSegmentBytes = 1 << 30, matrices: ParamDtype = 'f32'): ParamLayout {
  return layoutSpecs(paramSpecs(cfg).map((s) => (s.decay ? { ...s, dtype: matrices } : s)), maxSegmentBytes);
}

/** The dtype a layout stores its matrices in: 'f16' when any tensor is f16. */
export function matrixDtype(layout: ParamLayout): ParamDtype {
  return layout.entries.some((e) => e.dtype === 'f16') ? 'f16' : 'f32';
}

const padded = (words: number) => Math.ceil(words / FLOATS_ALIGN) * FLOATS_ALIGN;
const bytesOf = (dtype: ParamDtype) => (dtype === 'f16' ? 2 : 4);
/** 32-bit words holding `n` elements of `dtype`. */
const wordsOf = (n: number, dtype: ParamDtype) => (dtype === 'f16' ? Math.ceil(n / 2) : n);

/** Row chunks [first, rows] of a tensor so that each fits `maxWords`: one when it fits whole, else near-equal ones. */
function rowChunks(spec: ParamSpec, dtype: ParamDtype, maxWords: number, maxSegmentBytes: number): [number, number][] {
  const size = numel(spec.shape);
  if (padded(wordsOf(size, dtype)) <= maxWords) return [[0, spec.shape[0]]];
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  const rows = spec.shape[0];
  const cols = size / rows;
  const el = bytesOf(dtype);
  const maxRows = Math.floor((maxWords * 4) / el / cols);
  if (!spec.splitRows || maxRows < 1) {
    const what = spec.splitRows ? `even one of its rows (${cols * el} bytes) is` : 'it is';
    throw new Error(
      `Parameter ${spec.name} (${spec.shape.join('x')}${dtype === 'f16' ? ', f16' : ''}) needs ${size * el} bytes (${mb(size * el)}) and ${what} more than this GPU can bind at once ` +
        `(maxStorageBufferBindingSize ${maxSegmentBytes} bytes, ${mb(maxSegmentBytes)}). Use a smaller model or a GPU with a larger binding limit.`,
    );
  }
  const n = Math.ceil(rows / maxRows);
  const per = Math.ceil(rows / n);
  return Array.from({ length: Math.ceil(rows / per) }, (_, i) => [i * per, Math.min(per, rows - i * per)]);
}

/** Packs any tensor specs (the model's, or LoRA adapters') into segments of at most `maxSegmentBytes`. */
export function layoutSpecs(specs: ParamSpec[], maxSegmentBytes = 1 << 30): ParamLayout {
  const ordered = [...specs.filter((s) => s.decay), ...specs.filter((s) => !s.decay)];
  const maxWords = Math.floor(maxSegmentBytes / 4 / FLOATS_ALIGN) * FLOATS_ALIGN;
  const entries: ParamEntry[] = [];
  const segmentSizes: number[] = [0];
  const decayEnds: number[] = [0];
  for (const spec of ordered) {
    const dtype = spec.dtype ?? 'f32';
    const size = numel(spec.shape);
    const cols = size / spec.shape[0];
    const parts: ParamPart[] = [];
    for (const [first, rows] of rowChunks(spec, dtype, maxWords, maxSegmentBytes)) {
      const partSize = rows * cols;
      const words = padded(wordsOf(partSize, dtype));
      let seg = segmentSizes.length - 1;
      if (segmentSizes[seg] + words > maxWords) {
        segmentSizes.push(0);
        decayEnds.push(0);
        seg++;
      }
      parts.push({ segment: seg, offset: segmentSizes[seg], first, rows, size: partSize });
      segmentSizes[seg] += words;
      if (spec.decay) decayEnds[seg] = segmentSizes[seg];
    }
    entries.push({ ...spec, dtype, size, parts });
  }
  return {
    entries,
    byName: new Map(entries.map((e) => [e.name, e])),
    segmentSizes,
    decayEnds,
    count: entries.reduce((a, e) => a + e.size, 0),
  };
}

/** A stored row chunk of a tensor: its view holds rows [first, first + rows). */
export interface RowChunk {
  view: View;
  first: number;
  rows: number;
  /** How the view stores its elements; absent: f32. */
  dtype?: ParamDtype;
}

/** One set of buffers laid out like the parameters: parameters, gradients or an optimizer moment. */
export interface ParamBuffers {
  layout: ParamLayout;
  segments: View[];
  /** A tensor stored whole. Throws for one stored as row chunks (read those with chunks). */
  view(name: string): View;
  /** A tensor's row chunks in order: a single chunk when it is stored whole. */
  chunks(name: string): RowChunk[];
  /** How a tensor is stored: 'f16' views hold packed halves (the kernels' bF16 / tableF16 options). */
  dtype(name: string): ParamDtype;
}

export function createParamBuffers(gpu: Gpu, layout: ParamLayout, label: string): ParamBuffers {
  const segments = layout.segmentSizes.map((n, i) => createBuffer(gpu, n * 4, `${label}[${i}]`));
  const chunks = new Map(layout.entries.map((e) => [
    e.name,
    e.parts.map((p): RowChunk => ({
      view: subView(segments[p.segment], p.offset * 4, wordsOf(p.size, e.dtype) * 4), first: p.first, rows: p.rows, dtype: e.dtype,
    })),
  ]));
  const chunksOf = (name: string) => {
    const c = chunks.get(name);
    if (!c) throw new Error(`No parameter named ${name}`);
    return c;
  };
  return {
    layout,
    segments,
    view(name) {
      const c = chunksOf(name);
      if (c.length > 1) {
        throw new Error(`Parameter ${name} is stored as ${c.length} row chunks (it exceeds the binding limit); read it with chunks(name).`);
      }
      return c[0].view;
    },
    chunks: chunksOf,
    dtype: (name) => chunksOf(name)[0].dtype ?? 'f32',
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

/** Finite values of at least this magnitude become inf in f16 (the largest half is 65504; 65520 is the midpoint above it). */
const F16_LIMIT = 65520;

/**
 * Uploads every tensor, checking names, sizes and (for f16 entries) that every finite value stays finite in
 * f16, all before the first upload; f16 entries are rounded to nearest-even. Tensors missing from `tensors` are an error.
 */
export function uploadParams(gpu: Gpu, bufs: ParamBuffers, tensors: ParamTensors): void {
  const checked = bufs.layout.entries.map((e) => {
    const t = tensors.get(e.name);
    if (!t) throw new Error(`Weights are missing tensor ${e.name} (${e.shape.join('x')}).`);
    if (t.length !== e.size) {
      throw new Error(`Tensor ${e.name} has ${t.length} values but the config needs ${e.shape.join('x')} = ${e.size}.`);
    }
    if (e.dtype === 'f16') {
      const i = t.findIndex((v) => Math.abs(v) >= F16_LIMIT && Number.isFinite(v));
      if (i >= 0) {
        throw new Error(`Tensor ${e.name} holds ${t[i]} at [${i}], beyond the range of the f16 base store (largest 65504); load this model with baseDtype f32.`);
      }
    }
    return { e, t };
  });
  for (const { e, t } of checked) {
    const cols = e.size / e.shape[0];
    for (const c of bufs.chunks(e.name)) {
      const rows = t.subarray(c.first * cols, (c.first + c.rows) * cols);
      upload(gpu, c.view, e.dtype === 'f16' ? packF16(rows) : rows);
    }
  }
}

/** Reads every parameter back into f32 host tensors (f16 ones widened), row chunks joined (for checkpoints and tests). */
export async function downloadParams(gpu: Gpu, bufs: ParamBuffers): Promise<ParamTensors> {
  const out: ParamTensors = new Map();
  const segs = await Promise.all(bufs.segments.map((s) => readF32(gpu, s)));
  for (const e of bufs.layout.entries) {
    const t = new Float32Array(e.size);
    const cols = e.size / e.shape[0];
    for (const p of e.parts) {
      const seg = segs[p.segment];
      const part = e.dtype === 'f16'
        ? unpackF16(new Uint32Array(seg.buffer, seg.byteOffset + p.offset * 4, wordsOf(p.size, 'f16')), p.size)
        : seg.subarray(p.offset, p.offset + p.size);
      t.set(part, p.first * cols);
    }
    out.set(e.name, t);
  }
  return out;
}

/**
 * The tensors as a layout stores them: f16 entries rounded to the nearest half, others shared. This is
 * what downloadParams returns after uploadParams, and what a CPU twin of an f16-stored model must use.
 */
export function asStored(layout: ParamLayout, tensors: ParamTensors): ParamTensors {
  const out: ParamTensors = new Map(tensors);
  for (const e of layout.entries) {
    const t = tensors.get(e.name);
    if (t && e.dtype === 'f16') out.set(e.name, roundToF16(t));
  }
  return out;
}
