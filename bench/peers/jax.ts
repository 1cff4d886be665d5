// jax-js on its WebGPU device as a peer: a jitted matmul, and our model's training step as one jitted
// function of valueAndGrad(loss) plus Adam, the way JAX code is written. Same model as bench/peers/tfjs.ts
// (see there), same weights, same Adam (no weight decay, no clipping).
//
// Two jax-js rules shape this file:
// - Arrays are reference counted and every op consumes its arguments: a value used twice is passed as
//   `x.ref` the first time. Constants used by every layer are taken with `.ref` and disposed at the end.
// - Evaluation is lazy: a jitted call only records work; nothing reaches the GPU until a result is
//   awaited. `sync` therefore awaits every output of the timed calls (blockUntilReady), never just the
//   queue, or the timing would measure nothing.
// jax-js documents Node as "Wasm only"; given navigator.gpu from Dawn (bench/node_gpu.ts) its WebGPU
// device runs in Node too. In the browser page it uses the browser's WebGPU.

import type * as Jax from '@jax-js/jax';
import { headDim } from '../../src/model/config';
import { layerName, paramSpecs } from '../../src/model/params';
import type { MatmulShape } from '../cases/kernels';
import { causalMask, type Peer, type PeerRunner, type PeerTrainer, ropeTables, type TrainJob } from './peer';

type JaxModule = typeof Jax;
type Arr = Jax.Array;
type Params = { [name: string]: Arr };
type Consts = { cos: Arr; sin: Arr; mask: Arr };

/** Loads jax-js and starts its WebGPU device; throws (with the reason) where it cannot. */
export async function loadJax(): Promise<Peer> {
  const jax: JaxModule = await import('@jax-js/jax');
  const devices = await jax.init('webgpu');
  if (!devices.includes('webgpu')) throw new Error(`jax-js found no WebGPU device (devices: ${devices.join(', ') || 'none'})`);
  jax.defaultDevice('webgpu');
  return {
    name: 'jax-js',
    version: '@jax-js/jax (webgpu, jit)',
    matmul: async (s) => jaxMatmul(jax, s),
    train: async (job) => jaxTrain(jax, job),
  };
}

const MAX_PENDING_BYTES = 256 << 20;

function randomArray(jax: JaxModule, shape: number[], seed: number): Arr {
  let s = seed >>> 0;
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
  return jax.numpy.array(data).reshape(shape);
}

async function jaxMatmul(jax: JaxModule, { M, N, K, transB }: MatmulShape): Promise<PeerRunner> {
  const np = jax.numpy;
  const a = randomArray(jax, [M, K], 1);
  const b = randomArray(jax, transB ? [N, K] : [K, N], 2);
  const mm = jax.jit((x: Arr, y: Arr) => np.matmul(x, transB ? y.transpose() : y));
  let pending: Arr[] = [];
  const sync = async () => {
    await jax.blockUntilReady(pending);
    pending.forEach((x) => x.dispose());
    pending = [];
  };
  // Outputs must stay alive until awaited (a disposed, unawaited result is never computed); past
  // MAX_PENDING_BYTES of them, wait inside the timed run rather than exhaust GPU memory.
  const outBytes = M * N * 4;
  return {
    run: async () => {
      pending.push(mm(a.ref, b.ref));
      if (pending.length * outBytes > MAX_PENDING_BYTES) await sync();
    },
    sync,
    dispose: () => {
      a.dispose();
      b.dispose();
      mm.dispose();
    },
  };
}

async function jaxTrain(jax: JaxModule, job: TrainJob): Promise<PeerTrainer> {
  const { numpy: np, nn } = jax;
  const { cfg, B, T } = job;
  const [D, H, Hkv, V] = [headDim(cfg), cfg.nHeads, cfg.nKvHeads, cfg.vocab];
  const BT = B * T;
  const scale = 1 / Math.sqrt(D);
  const head = cfg.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';

  const rmsnorm = (x: Arr, w: Arr) => x.ref.mul(np.reciprocal(np.sqrt(np.mean(np.square(x), -1, { keepdims: true }).add(cfg.normEps)))).mul(w);
  const linear = (x: Arr, w: Arr) => np.matmul(x, w.transpose());
  // [BT, heads*D] -> rotate-half RoPE -> [B, heads, T, D]
  const rope = (x: Arr, heads: number, c: Consts) => {
    const [x1, x2] = np.split(x.reshape([B, T, heads, D]), 2, -1);
    const [cos, sin] = [c.cos.ref, c.sin.ref];
    const out = np.concatenate([x1.ref.mul(cos.ref).sub(x2.ref.mul(sin.ref)), x2.mul(cos).add(x1.mul(sin))], -1);
    return out.transpose([0, 2, 1, 3]);
  };
  const attention = (q: Arr, k: Arr, v: Arr, c: Consts) => {
    const rep = H / Hkv;
    const kk = rep === 1 ? k : np.repeat(k, rep, 1);
    const vv = rep === 1 ? v : np.repeat(v, rep, 1);
    const scores = np.matmul(q, kk.transpose([0, 1, 3, 2])).mul(scale).add(c.mask.ref);
    const out = np.matmul(nn.softmax(scores, -1), vv); // [B, H, T, D]
    return out.transpose([0, 2, 1, 3]).reshape([BT, H * D]);
  };
  const loss = (p: Params, tokens: Arr, targets: Arr, c: Consts): Arr => {
    const W = (l: number, rest: string) => p[layerName(l, rest)];
    const embed = p['model.embed_tokens.weight'];
    let x = np.matmul(nn.oneHot(tokens, V), cfg.tieEmbeddings ? embed.ref : embed); // [BT, C]
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = rmsnorm(x.ref, W(l, 'input_layernorm.weight'));
      const q = rope(linear(h.ref, W(l, 'self_attn.q_proj.weight')), H, c);
      const k = rope(linear(h.ref, W(l, 'self_attn.k_proj.weight')), Hkv, c);
      const v = linear(h, W(l, 'self_attn.v_proj.weight')).reshape([B, T, Hkv, D]).transpose([0, 2, 1, 3]);
      x = x.add(linear(attention(q, k, v, c), W(l, 'self_attn.o_proj.weight')));
      const h2 = rmsnorm(x.ref, W(l, 'post_attention_layernorm.weight'));
      const gate = linear(h2.ref, W(l, 'mlp.gate_proj.weight'));
      x = x.add(linear(nn.silu(gate).mul(linear(h2, W(l, 'mlp.up_proj.weight'))), W(l, 'mlp.down_proj.weight')));
    }
    const logits = linear(rmsnorm(x, p['model.norm.weight']), p[head]);
    const picked = nn.logSoftmax(logits, -1).mul(nn.oneHot(targets, V)).sum(-1);
    for (const a of [c.cos, c.sin, c.mask]) a.dispose();
    return picked.mean().neg();
  };

  const { beta1: b1, beta2: b2, eps, lr } = job.adam;
  // One step: value and gradient, then Adam with bias corrections c1 = 1/(1-b1^t), c2 = 1/(1-b2^t).
  const step = jax.jit((p: Params, m: Params, v: Params, tokens: Arr, targets: Arr, c: Consts, c1: Arr, c2: Arr) => {
    const [value, g] = jax.valueAndGrad(loss)(jax.tree.ref(p), tokens, targets, c);
    const [np2, nm, nv]: [Params, Params, Params] = [{}, {}, {}];
    for (const k of Object.keys(p)) {
      const gk = g[k];
      nm[k] = m[k].mul(b1).add(gk.ref.mul(1 - b1));
      nv[k] = v[k].mul(b2).add(np.square(gk).mul(1 - b2));
      const update = nm[k].ref.mul(c1.ref).div(np.sqrt(nv[k].ref.mul(c2.ref)).add(eps)).mul(lr);
      np2[k] = p[k].sub(update);
    }
    c1.dispose();
    c2.dispose();
    return [value, np2, nm, nv] as [Arr, Params, Params, Params];
  });

  let params: Params = {};
  let m: Params = {};
  let v: Params = {};
  for (const s of paramSpecs(cfg)) {
    params[s.name] = np.array(new Float32Array(job.weights.get(s.name)!)).reshape(s.shape);
    m[s.name] = np.zeros(s.shape);
    v[s.name] = np.zeros(s.shape);
  }
  const tokens = np.array(Int32Array.from(job.tokens), { dtype: np.int32 });
  const targets = np.array(Int32Array.from(job.targets), { dtype: np.int32 });
  const { cos: cd, sin: sd } = ropeTables(T, D, cfg.ropeTheta);
  const consts: Consts = {
    cos: np.array(cd).reshape([1, T, 1, D / 2]),
    sin: np.array(sd).reshape([1, T, 1, D / 2]),
    mask: np.array(causalMask(T)).reshape([T, T]),
  };
  const lossJit = jax.jit(loss);
  const lossNow = async () => (await lossJit(jax.tree.ref(params), tokens.ref, targets.ref, jax.tree.ref(consts)).data())[0];
  const loss0 = await lossNow();
  let t = 0;
  let last: Arr | null = null;
  return {
    loss0,
    loss: lossNow,
    run: () => {
      t++;
      const c1 = np.array(1 / (1 - b1 ** t));
      const c2 = np.array(1 / (1 - b2 ** t));
      last?.dispose();
      [last, params, m, v] = step(params, m, v, tokens.ref, targets.ref, jax.tree.ref(consts), c1, c2);
    },
    // The parameters of the last step depend on every earlier step: awaiting them runs them all.
    sync: async () => {
      await jax.blockUntilReady(last ? [last, params] : params);
    },
    dispose: () => {
      for (const tree of [params, m, v]) for (const a of Object.values(tree)) a.dispose();
      for (const a of [tokens, targets, consts.cos, consts.sin, consts.mask]) a.dispose();
      last?.dispose();
      step.dispose();
      lossJit.dispose();
    },
  };
}
