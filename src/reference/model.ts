// CPU twin of the whole model (src/model/transformer.ts + the loss), in float64, built from the
// reference ops. Tests only: it checks the GPU's logits, loss and every parameter gradient, and with
// LoRA adapters (src/model/lora.ts) every adapter gradient: a targeted linear adds s·(x·A^T)·B^T.

import { headDim, type ModelConfig } from '../model/config';
import { LORA_MODULES, loraName, loraScale, type LoraConfig, type LoraTarget, targetDims } from '../model/lora';
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

/** Adapters by PEFT name, on top of the base parameters. */
export interface RefLora {
  config: LoraConfig;
  adapters: RefParams;
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

/**
 * Forward and backward of the whole model. Returns logits, the mean masked loss, every parameter
 * gradient and, with `lora`, every adapter gradient (loraGrads, by PEFT name).
 */
export function modelForwardBackward(cfg: ModelConfig, P: RefParams, batch: RefBatch, lora?: RefLora) {
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
  const scale = lora ? loraScale(lora.config) : 0;
  const r = lora?.config.rank ?? 0;
  const adapter = (l: number, t: LoraTarget) =>
    lora?.config.targets.includes(t) ? { A: lora.adapters.get(loraName(l, t, 'A'))!, B: lora.adapters.get(loraName(l, t, 'B'))! } : undefined;
  const us = new Map<string, Float64Array>(); // u = x·A^T per layer and target, for the backward
  // A block's linear layer t: x·W^T (+ b), plus scale·(x·A^T)·B^T with an adapter.
  const proj = (l: number, t: LoraTarget, x: ArrayLike<number>, bias?: ArrayLike<number>) => {
    const [N, K] = targetDims(cfg, t);
    const y = linear(x, w(l, `${LORA_MODULES[t]}.weight`), BT, N, K, bias);
    const ad = adapter(l, t);
    if (!ad) return y;
    const u = matmul({ a: x, b: ad.A, M: BT, N: r, K, transB: true });
    us.set(`${l}.${t}`, u);
    return matmul({ a: u, b: ad.B, M: BT, N, K: r, transB: true, c0: y, accumulate: true, alpha: scale });
  };

  // Forward, keeping what backward needs.
  let x: ArrayLike<number> = embedding({ tokens: batch.tokens, table: P.get('model.embed_tokens.weight')!, rows: BT, C, V });
  const saved = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const n1 = rmsnorm({ x, w: w(l, 'input_layernorm.weight'), rows: BT, C, eps });
    const q = rope({ x: proj(l, 'q', n1.y, bias(l, 'q_proj')), positions, rows: BT, heads: H, D, theta });
    const k = rope({ x: proj(l, 'k', n1.y, bias(l, 'k_proj')), positions, rows: BT, heads: Hkv, D, theta });
    const v = proj(l, 'v', n1.y, bias(l, 'v_proj'));
    const att = attention({ q, k, v, start: batch.start, B, Tq: T, Tk: T, H, Hkv, D });
    const xMid = add({ a: x, b: proj(l, 'o', att.out), n: BT * C });
    const n2 = rmsnorm({ x: xMid, w: w(l, 'post_attention_layernorm.weight'), rows: BT, C, eps });
    const gate = proj(l, 'gate', n2.y);
    const up = proj(l, 'up', n2.y);
    const h = swiglu({ gate, up, n: BT * F });
    const xOut = add({ a: xMid, b: proj(l, 'down', h), n: BT * C });
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
  const LG = new Map<string, Float64Array>();
  // Backward of a block's linear layer t: the base's dx and dW, then with an adapter
  // dB = scale·dy^T·u, du = scale·dy·B, dA = du^T·x and dx += du·A.
  const projBack = (l: number, t: LoraTarget, xIn: ArrayLike<number>, dy: ArrayLike<number>) => {
    const [N, K] = targetDims(cfg, t);
    const out = back(xIn, w(l, `${LORA_MODULES[t]}.weight`), dy, BT, N, K);
    const ad = adapter(l, t);
    if (!ad) return out;
    const u = us.get(`${l}.${t}`)!;
    LG.set(loraName(l, t, 'B'), matmul({ a: dy, b: u, M: N, N: r, K: BT, transA: true, alpha: scale }));
    const du = matmul({ a: dy, b: ad.B, M: BT, N: r, K: N, alpha: scale });
    LG.set(loraName(l, t, 'A'), matmul({ a: du, b: xIn, M: r, N: K, K: BT, transA: true }));
    return { dw: out.dw, dx: matmul({ a: du, b: ad.A, M: BT, N: K, K: r, c0: out.dx, accumulate: true }) };
  };
  const lm = back(nF.y, P.get(head)!, ce.dlogits, BT, V, C);
  G.set(head, lm.dw);
  const fb = rmsnormBackward({ dy: lm.dx, x, w: P.get('model.norm.weight')!, rows: BT, C, eps });
  G.set('model.norm.weight', fb.dw);
  let dres: Float64Array = Float64Array.from(fb.dx);
  for (let l = cfg.nLayers - 1; l >= 0; l--) {
    const s = saved[l];
    const down = projBack(l, 'down', s.h, dres);
    gw(l, 'mlp.down_proj.weight', down.dw);
    const sg = swigluBackward({ gate: s.gate, up: s.up, dout: down.dx, n: BT * F });
    const gp = projBack(l, 'gate', s.n2.y, sg.dgate);
    const upb = projBack(l, 'up', s.n2.y, sg.dup);
    gw(l, 'mlp.gate_proj.weight', gp.dw);
    gw(l, 'mlp.up_proj.weight', upb.dw);
    const n2b = rmsnormBackward({ dy: addInto(Float64Array.from(gp.dx), upb.dx), x: s.xMid, w: w(l, 'post_attention_layernorm.weight'), rows: BT, C, eps });
    gw(l, 'post_attention_layernorm.weight', n2b.dw);
    addInto(dres, n2b.dx);
    const o = projBack(l, 'o', s.att.out, dres);
    gw(l, 'self_attn.o_proj.weight', o.dw);
    const ab = attentionBackward({ q: s.q, k: s.k, v: s.v, dout: o.dx, start: batch.start, B, T, H, Hkv, D });
    const dq = rope({ x: ab.dq, positions, rows: BT, heads: H, D, theta, inverse: true });
    const dk = rope({ x: ab.dk, positions, rows: BT, heads: Hkv, D, theta, inverse: true });
    const qb = projBack(l, 'q', s.n1.y, dq);
    const kb = projBack(l, 'k', s.n1.y, dk);
    const vb = projBack(l, 'v', s.n1.y, ab.dv);
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
  return { logits, loss: ce.loss, grads: G, loraGrads: LG };
}
