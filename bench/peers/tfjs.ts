// TensorFlow.js on its WebGPU backend as a peer: a matmul, and our model's training step written plainly
// the way the TF.js docs show (tf.variable, optimizer.minimize, tf.train.adam).
//
// The model is ours, op for op: embedding gather, per block RMSNorm -> q/k/v projections -> rotate-half
// RoPE -> causal GQA attention (kv heads repeated to the query heads) -> o_proj + residual -> RMSNorm ->
// SwiGLU MLP + residual, final RMSNorm, LM head (tied to the embedding when the config says so), mean
// softmax cross-entropy over every position. Linear weights keep our [out, in] layout: y = x·W^T.
//
// In Node, TF.js finds WebGPU through globalThis.navigator.gpu, which bench/node_gpu.ts sets from the
// `webgpu` package before this module is loaded.

import type * as TF from '@tensorflow/tfjs-core';
import { headDim } from '../../src/model/config';
import { layerName, paramSpecs } from '../../src/model/params';
import type { MatmulShape } from '../cases/kernels';
import { causalMask, type Peer, type PeerRunner, type PeerTrainer, ropeTables, type TrainJob } from './peer';

type Tf = typeof TF;

interface WebGpuBackendLike {
  device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** Loads TF.js with the WebGPU backend; throws (with the reason) where it cannot run. */
export async function loadTfjs(): Promise<Peer> {
  const tf: Tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  // tfjs-core alone registers no gradients (the @tensorflow/tfjs bundle does this import for you).
  await import('@tensorflow/tfjs-core/dist/register_all_gradients');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed (no navigator.gpu adapter?)');
  await tf.ready();
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  // TF.js batches kernels into an open compute pass and submits every few; close and submit what is
  // pending (as its own readback path does), then wait for the queue like ours.
  const sync = async () => {
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.submitQueue();
    await backend.device.queue.onSubmittedWorkDone();
  };
  return {
    name: 'tfjs',
    version: `@tensorflow/tfjs-core ${tf.version_core} (${tf.getBackend()})`,
    matmul: async (s) => tfMatmul(tf, s, sync),
    train: async (job) => tfTrain(tf, job, sync),
  };
}

async function tfMatmul(tf: Tf, { M, N, K, transB }: MatmulShape, sync: () => Promise<void>): Promise<PeerRunner> {
  const a = tf.randomNormal([M, K]);
  const b = tf.randomNormal(transB ? [N, K] : [K, N]);
  return {
    run: () => tf.matMul(a, b, false, transB).dispose(),
    sync,
    dispose: () => tf.dispose([a, b]),
  };
}

async function tfTrain(tf: Tf, job: TrainJob, sync: () => Promise<void>): Promise<PeerTrainer> {
  const { cfg, B, T } = job;
  const [D, H, Hkv, V] = [headDim(cfg), cfg.nHeads, cfg.nKvHeads, cfg.vocab];
  const vars = new Map<string, TF.Variable>();
  for (const spec of paramSpecs(cfg)) vars.set(spec.name, tf.variable(tf.tensor(job.weights.get(spec.name)!, spec.shape), true, spec.name));
  const P = (name: string) => vars.get(name)!;
  const W = (l: number, rest: string) => P(layerName(l, rest));
  const tokens = tf.tensor1d(Int32Array.from(job.tokens), 'int32');
  const labels = tf.oneHot(tf.tensor1d(Int32Array.from(job.targets), 'int32'), V);
  const { cos: c, sin: s } = ropeTables(T, D, cfg.ropeTheta);
  // [1, T, 1, D/2]: broadcast over batch and heads.
  const cos = tf.tensor4d(c, [1, T, 1, D / 2]);
  const sin = tf.tensor4d(s, [1, T, 1, D / 2]);
  const mask = tf.tensor2d(causalMask(T), [T, T]);
  const scale = 1 / Math.sqrt(D);

  const rmsnorm = (x: TF.Tensor, w: TF.Tensor) => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), cfg.normEps))), w);
  const linear = (x: TF.Tensor, w: TF.Tensor) => tf.matMul(x as TF.Tensor2D, w as TF.Tensor2D, false, true);
  const rope = (x: TF.Tensor, heads: number) => {
    const x4 = tf.reshape(x, [B, T, heads, D]);
    const [x1, x2] = tf.split(x4, 2, -1);
    const out = tf.concat([tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x2, cos), tf.mul(x1, sin))], -1);
    return tf.transpose(out, [0, 2, 1, 3]); // [B, heads, T, D]
  };
  const repeatKv = (x: TF.Tensor) => {
    if (H === Hkv) return x;
    // Query head h reads kv head h / (H / Hkv). Rank 4 on purpose: the WebGPU Tile kernel reads rank-5
    // tensors back to the CPU (readSync, which needs OffscreenCanvas and fails in Node).
    const [b, g, t, d] = x.shape;
    return tf.reshape(tf.tile(tf.reshape(x, [b, g, 1, t * d]), [1, 1, H / Hkv, 1]), [b, H, t, d]);
  };
  const attention = (q: TF.Tensor, k: TF.Tensor, v: TF.Tensor) => {
    const scores = tf.add(tf.mul(tf.matMul(q as TF.Tensor4D, k as TF.Tensor4D, false, true), scale), mask);
    const out = tf.matMul(tf.softmax(scores) as TF.Tensor4D, v as TF.Tensor4D); // [B, H, T, D]
    return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [B * T, H * D]);
  };
  const loss = (): TF.Scalar => {
    let x: TF.Tensor = tf.gather(P('model.embed_tokens.weight'), tokens);
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = rmsnorm(x, W(l, 'input_layernorm.weight'));
      const q = rope(linear(h, W(l, 'self_attn.q_proj.weight')), H);
      const k = repeatKv(rope(linear(h, W(l, 'self_attn.k_proj.weight')), Hkv));
      const v = repeatKv(tf.transpose(tf.reshape(linear(h, W(l, 'self_attn.v_proj.weight')), [B, T, Hkv, D]), [0, 2, 1, 3]));
      x = tf.add(x, linear(attention(q, k, v), W(l, 'self_attn.o_proj.weight')));
      const h2 = rmsnorm(x, W(l, 'post_attention_layernorm.weight'));
      const gate = linear(h2, W(l, 'mlp.gate_proj.weight'));
      const up = linear(h2, W(l, 'mlp.up_proj.weight'));
      x = tf.add(x, linear(tf.mul(tf.mul(gate, tf.sigmoid(gate)), up), W(l, 'mlp.down_proj.weight')));
    }
    const logits = linear(rmsnorm(x, P('model.norm.weight')), P(cfg.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'));
    return tf.losses.softmaxCrossEntropy(labels, logits) as TF.Scalar;
  };

  const lossNow = async () => {
    const t = tf.tidy(loss);
    const value = (await t.data())[0];
    t.dispose();
    return value;
  };
  const loss0 = await lossNow();
  const opt = tf.train.adam(job.adam.lr, job.adam.beta1, job.adam.beta2, job.adam.eps);
  const varList = [...vars.values()];
  return {
    loss0,
    loss: lossNow,
    run: () => {
      opt.minimize(loss, false, varList);
    },
    sync,
    dispose: () => {
      opt.dispose();
      tf.dispose([...varList, tokens, labels, cos, sin, mask]);
    },
  };
}
