// CPU twin of the whole model (src/model/transformer.ts + the loss), in float64, built from the
// reference ops. Tests only: it checks the GPU's logits, loss and every parameter gradient.

import { headDim, type ModelConfig } from '../model/config';
import { layerName } from '../model/params';
import { add } from './add';
import { attention, attentionBackward } from './attention';
import { crossEntropy } from './cross_entropy';
import { embedding, embeddingBackward } from './embedding';
import { matmul, sumRows } from './matmul';
import { rmsnorm, rmsnormBackward } from './rmsnorm';
import { rope } from './rope';
import { swiglu, swigluBackward } from './swiglu';

export type RefParams = Map<string, ArrayLike<number>>;

export interface RefBatch {
  B: number;
  T: number;
  tokens: ArrayLike<number>;
  targets: ArrayLike<number>;
  /** Per-token loss weights (mask / count). */
  weights: ArrayLike<number>;
  start: ArrayLike<number>;
}

const linear = (x: ArrayLike<number>, w: ArrayLike<number>, M: number, N: number, K: number, bias?: ArrayLike<number>) =>
  matmul({ a: x, b: w, M, N, K, transB: true, bias });

function positionsOf(b: RefBatch): Uint32Array {
  const pos = new Uint32Array(b.B * b.T);
  for (let i = 0; i < b.B; i++) for (let t = 0; t < b.T; t++) pos[i * b.T + t] = Math.max(0, t - b.start[i]);
  return pos;
}

function addInto(dst: Float64Array, src: ArrayLike<number>): Float64Array {
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
  return dst;
}

/** Forward and backward of the whole model. Returns logits, the mean masked loss and every parameter gradient. */
export function modelForwardBackward(cfg: ModelConfig, P: RefParams, batch: RefBatch) {
  const { B, T } = batch;
  const BT = B * T;
  const C = cfg.dModel;
  const D = headDim(cfg);
  const [H, Hkv, F, V] = [cfg.nHeads, cfg.nKvHeads, cfg.dFF, cfg.vocab];
  const eps = cfg.normEps;
  const theta = cfg.ropeTheta;
  const positions = positionsOf(batch);
  const w = (l: number, rest: string) => P.get(layerName(l, rest))!;
  const bias = (l: number, n: string) => (cfg.qkvBias ? w(l, `self_attn.${n}.bias`) : undefined);
  const head = cfg.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';

  // Forward, keeping what backward needs.
  let x: ArrayLike<number> = embedding({ tokens: batch.tokens, table: P.get('model.embed_tokens.weight')!, rows: BT, C, V });
  const saved = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const n1 = rmsnorm({ x, w: w(l, 'input_layernorm.weight'), rows: BT, C, eps });
    const q = rope({ x: linear(n1.y, w(l, 'self_attn.q_proj.weight'), BT, H * D, C, bias(l, 'q_proj')), positions, rows: BT, heads: H, D, theta });
    const k = rope({ x: linear(n1.y, w(l, 'self_attn.k_proj.weight'), BT, Hkv * D, C, bias(l, 'k_proj')), positions, rows: BT, heads: Hkv, D, theta });
    const v = linear(n1.y, w(l, 'self_attn.v_proj.weight'), BT, Hkv * D, C, bias(l, 'v_proj'));
    const att = attention({ q, k, v, start: batch.start, B, Tq: T, Tk: T, H, Hkv, D });
    const xMid = add({ a: x, b: linear(att.out, w(l, 'self_attn.o_proj.weight'), BT, C, H * D), n: BT * C });
    const n2 = rmsnorm({ x: xMid, w: w(l, 'post_attention_layernorm.weight'), rows: BT, C, eps });
    const gate = linear(n2.y, w(l, 'mlp.gate_proj.weight'), BT, F, C);
    const up = linear(n2.y, w(l, 'mlp.up_proj.weight'), BT, F, C);
    const h = swiglu({ gate, up, n: BT * F });
    const xOut = add({ a: xMid, b: linear(h, w(l, 'mlp.down_proj.weight'), BT, C, F), n: BT * C });
    saved.push({ x, n1, q, k, v, att, xMid, n2, gate, up, h });
    x = xOut;
  }
  const nF = rmsnorm({ x, w: P.get('model.norm.weight')!, rows: BT, C, eps });
  const logits = linear(nF.y, P.get(head)!, BT, V, C);
  const ce = crossEntropy({ logits, targets: batch.targets, weights: batch.weights, rows: BT, V });

  // Backward.
  const G = new Map<string, Float64Array>();
  const gw = (l: number, rest: string, g: Float64Array) => G.set(layerName(l, rest), g);
  // dx = dy·W ; dW = dy^T·x
  const back = (xIn: ArrayLike<number>, wt: ArrayLike<number>, dy: ArrayLike<number>, M: number, N: number, K: number) => ({
    dx: matmul({ a: dy, b: wt, M, N: K, K: N }),
    dw: matmul({ a: dy, b: xIn, M: N, N: K, K: M, transA: true }),
  });
  const lm = back(nF.y, P.get(head)!, ce.dlogits, BT, V, C);
  G.set(head, lm.dw);
  const fb = rmsnormBackward({ dy: lm.dx, x, w: P.get('model.norm.weight')!, rows: BT, C, eps });
  G.set('model.norm.weight', fb.dw);
  let dres: Float64Array = Float64Array.from(fb.dx);
  for (let l = cfg.nLayers - 1; l >= 0; l--) {
    const s = saved[l];
    const down = back(s.h, w(l, 'mlp.down_proj.weight'), dres, BT, C, F);
    gw(l, 'mlp.down_proj.weight', down.dw);
    const sg = swigluBackward({ gate: s.gate, up: s.up, dout: down.dx, n: BT * F });
    const gp = back(s.n2.y, w(l, 'mlp.gate_proj.weight'), sg.dgate, BT, F, C);
    const upb = back(s.n2.y, w(l, 'mlp.up_proj.weight'), sg.dup, BT, F, C);
    gw(l, 'mlp.gate_proj.weight', gp.dw);
    gw(l, 'mlp.up_proj.weight', upb.dw);
    const n2b = rmsnormBackward({ dy: addInto(Float64Array.from(gp.dx), upb.dx), x: s.xMid, w: w(l, 'post_attention_layernorm.weight'), rows: BT, C, eps });
    gw(l, 'post_attention_layernorm.weight', n2b.dw);
    addInto(dres, n2b.dx);
    const o = back(s.att.out, w(l, 'self_attn.o_proj.weight'), dres, BT, C, H * D);
    gw(l, 'self_attn.o_proj.weight', o.dw);
    const ab = attentionBackward({ q: s.q, k: s.k, v: s.v, dout: o.dx, start: batch.start, B, T, H, Hkv, D });
    const dq = rope({ x: ab.dq, positions, rows: BT, heads: H, D, theta, inverse: true });
    const dk = rope({ x: ab.dk, positions, rows: BT, heads: Hkv, D, theta, inverse: true });
    const qb = back(s.n1.y, w(l, 'self_attn.q_proj.weight'), dq, BT, H * D, C);
    const kb = back(s.n1.y, w(l, 'self_attn.k_proj.weight'), dk, BT, Hkv * D, C);
    const vb = back(s.n1.y, w(l, 'self_attn.v_proj.weight'), ab.dv, BT, Hkv * D, C);
    gw(l, 'self_attn.q_proj.weight', qb.dw);
    gw(l, 'self_attn.k_proj.weight', kb.dw);
    gw(l, 'self_attn.v_proj.weight', vb.dw);
    if (cfg.qkvBias) {
      gw(l, 'self_attn.q_proj.bias', sumRows({ x: dq, M: BT, N: H * D }));
      gw(l, 'self_attn.k_proj.bias', sumRows({ x: dk, M: BT, N: Hkv * D }));
      gw(l, 'self_attn.v_proj.bias', sumRows({ x: ab.dv, M: BT, N: Hkv * D }));
    }
    const n1b = rmsnormBackward({ dy: addInto(addInto(Float64Array.from(qb.dx), kb.dx), vb.dx), x: s.x, w: w(l, 'input_layernorm.weight'), rows: BT, C, eps });
    gw(l, 'input_layernorm.weight', n1b.dw);
    dres = addInto(dres, n1b.dx);
  }
  const demb = embeddingBackward({ dout: dres, tokens: batch.tokens, rows: BT, C, V });
  G.set('model.embed_tokens.weight', cfg.tieEmbeddings ? addInto(G.get(head)!, demb) : demb);
  return { logits, loss: ce.loss, grads: G };
}
