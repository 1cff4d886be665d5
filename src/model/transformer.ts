// The Llama-style decoder for training as dispatch lists: forward (saving what backward needs) and backward.
//
// Both are built once per (config, batch shape) and encoded every step: the token embedding, the blocks
// (src/model/block.ts, shared with the inference plan), then xnF = rmsnorm(xOut) and logits = xnF·Wlm^T
// (Wlm is the embedding when tied). The embedding and the LM head go through src/model/vocab.ts, so they
// work on vocabulary row chunks and logits row blocks when those are larger than one binding.
// Full fine-tuning: gradients of weights are written (never accumulated) except the embedding's, which
// adds onto the LM head's when tied; the trainer clears the gradient buffers before backward.
// LoRA (weights with adapters, src/model/lora.ts): every targeted linear adds scale·(x·A^T)·B^T to its
// output; the base is frozen, so backward only carries dx through it and writes the adapters' gradients.
// A frozen base may store its matrices in f16 (src/model/params.ts): every linear reads its weight as matmul's
// operand B (forward x·W^T, backward dy·W), so it passes bF16 for them; the embedding and LM head go through
// vocab.ts, which reads each chunk's dtype. Norm weights and biases are always f32.

import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import type { Dispatch } from '../gpu/kernel';
import { attention } from '../ops/attention';
import { rmsnorm, rmsnormBackward } from '../ops/rmsnorm';
import type { Acts, LayerActs } from './activations';
import { blockBackward, blockForward, type BlockBuffers } from './block';
import { headDim, type ModelConfig } from './config';
import type { ModelWeights } from './lora';
import { matrixDtype, type ParamBuffers } from './params';
import { blocksOf, embedTokens, embedTokensBackward, lmHead, lmHeadBackward } from './vocab';

export interface Shape {
  B: number;
  T: number;
}

function lmHeadName(cfg: ModelConfig): string {
  return cfg.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
}

/** Adapters need their u and du buffers: activations allocated with the same LoRA config. */
function checkLoraActs(p: ModelWeights, acts: Acts<View>): void {
  const missing = p.lora?.config.targets.find((t) => !acts.layers[0].lora[t]);
  if (p.lora && (missing || !acts.loraDu)) {
    throw new Error(`The weights carry LoRA adapters (${p.lora.config.targets.join(', ')}) but the activations were allocated without them; pass the LoRA config to allocateActs.`);
  }
}

/** Forward pass up to the logits. Reads tokens, positions and start from `acts`. */
export function buildForward(gpu: Gpu, cfg: ModelConfig, p: ModelWeights, acts: Acts<View>, { B, T }: Shape): Dispatch[] {
  checkLoraActs(p, acts);
  const BT = B * T;
  const C = cfg.dModel;
  const D = headDim(cfg);
  const [H, Hkv] = [cfg.nHeads, cfg.nKvHeads];
  const out: Dispatch[] = [];
  out.push(...embedTokens(gpu, { tokens: acts.tokens, table: p.chunks('model.embed_tokens.weight'), out: acts.layers[0].xIn, rows: BT, C, V: cfg.vocab }));
  let pending: { a: View; b: View } | undefined; // the previous block's MLP residual add, fused into the next norm (block.ts)
  for (let l = 0; l < cfg.nLayers; l++) {
    const a = acts.layers[l];
    const x = blockBuffers(a, acts.proj);
    out.push(...blockForward(gpu, cfg, p, {
      layer: l, rows: BT, x, positions: acts.positions, residual: pending,
      attend: () => attention(gpu, { q: a.q, k: a.k, v: a.v, out: a.att, lse: a.lse, start: acts.start, B, Tq: T, Tk: T, H, Hkv, D }),
    }));
    pending = { a: a.xMid, b: acts.proj }; // xNext = xMid + down: the next norm writes it, before anything reuses proj
  }
  out.push(
    ...rmsnorm(gpu, { x: acts.xOut, w: p.view('model.norm.weight'), y: acts.xnF, rstd: acts.rstdF, rows: BT, C, eps: cfg.normEps, residual: pending }),
    ...lmHead(gpu, { x: acts.xnF, w: p.chunks(lmHeadName(cfg)), logits: blocksOf(acts.logits, cfg.vocab), C, V: cfg.vocab }),
  );
  return out;
}

/**
 * Backward pass from dlogits (already in the blocks of acts.logits) to the gradients of what trains, in `g`: every
 * parameter (laid out like `p`), or, when `p` carries adapters, the adapters only (laid out like them).
 */
export function buildBackward(gpu: Gpu, cfg: ModelConfig, p: ModelWeights, g: ParamBuffers, acts: Acts<View>, { B, T }: Shape): Dispatch[] {
  checkLoraActs(p, acts);
  const BT = B * T;
  const C = cfg.dModel;
  const frozen = p.lora !== undefined;
  if (!frozen && matrixDtype(p.layout) === 'f16') {
    throw new Error('buildBackward: these weights store their matrices in f16, which only a frozen base under LoRA may do; full fine-tuning needs f32 weights (baseDtype f32).');
  }
  /** The gradient of a base parameter, or undefined when the base is frozen. */
  const gb = (name: string) => (frozen ? undefined : g.view(name));
  const head = lmHeadName(cfg);
  const out: Dispatch[] = [];
  // LM head and final norm. With tied embeddings the head's gradient is written here and the
  // embedding's gradient is added to it at the end.
  out.push(
    ...lmHeadBackward(gpu, {
      x: acts.xnF, w: p.chunks(head), logits: blocksOf(acts.logits, cfg.vocab), C, V: cfg.vocab, dx: acts.dxn, dw: frozen ? undefined : g.chunks(head),
    }),
    ...rmsnormBackward(gpu, { dy: acts.dxn, x: acts.xOut, w: p.view('model.norm.weight'), rstd: acts.rstdF, dx: acts.dres, dw: gb('model.norm.weight'), rows: BT, C }),
  );
  for (let l = cfg.nLayers - 1; l >= 0; l--) {
    const a = acts.layers[l];
    out.push(...blockBackward(gpu, cfg, p, { layer: l, B, T, x: { ...blockBuffers(a, acts.proj), lse: a.lse }, d: acts, positions: acts.positions, start: acts.start, g, frozen }));
  }
  if (!frozen) {
    out.push(
      ...embedTokensBackward(gpu, {
        dout: acts.dres, unique: acts.tokUnique, offsets: acts.tokOffsets, positions: acts.tokPositions,
        dtable: g.chunks('model.embed_tokens.weight'), rows: BT, C, V: cfg.vocab, accumulate: cfg.tieEmbeddings,
      }),
    );
  }
  return out;
}

/** A layer's saved activations in the roles of block.ts (o_proj's and down_proj's outputs share `proj`). */
function blockBuffers(a: LayerActs<View>, proj: View): BlockBuffers {
  return { ...a, proj, loraU: (t) => a.lora[t]! };
}
