// Single-kernel cases on our engine: matmul, attention forward/backward, RMSNorm, cross-entropy.
// Each builds its dispatches once (as the model does), then times submit + onSubmittedWorkDone.

import { createBuffer, createWith, type View } from '../../src/gpu/buffers';
import type { Gpu } from '../../src/gpu/device';
import { type Dispatch, run, submit } from '../../src/gpu/kernel';
import { attention, attentionBackward } from '../../src/ops/attention';
import { crossEntropy } from '../../src/ops/cross_entropy';
import { matmul } from '../../src/ops/matmul';
import { rmsnorm } from '../../src/ops/rmsnorm';
import { packF16 } from '../../src/util/half';
import { randn, rng } from '../../src/util/random';
import {
  attentionBackwardFlops, attentionForwardFlops, crossEntropyBytes, giga, matmulFlops, mfu, rmsnormBytes,
} from '../flops';
import type { CaseResult } from '../report';
import { type Budget, timeAdaptive, type Timing } from '../timing';

export interface MatmulShape {
  /** What the shape is, e.g. "gpt5m mlp.up [BT,C]x[F,C]^T". */
  label: string;
  M: number;
  N: number;
  K: number;
  /** B stored [N,K] (a Linear weight): y = x·W^T. */
  transB: boolean;
  /** B in half precision, packed two per 32-bit word (the frozen base weights under LoRA); f32 sums. */
  f16B?: boolean;
}

const randView = (gpu: Gpu, n: number, seed: number, label: string, std = 1): View => createWith(gpu, randn(n, rng(seed), std), label);

/** Times a fixed list of dispatches: submit only, wait on the queue. */
export function timeDispatches(gpu: Gpu, ds: Dispatch[], b: Budget): Promise<Timing> {
  return timeAdaptive(() => submit(gpu, ds), () => gpu.device.queue.onSubmittedWorkDone(), b);
}

function destroy(...views: View[]): void {
  for (const v of views) v.buffer.destroy();
}

export function matmulName(s: MatmulShape): string {
  return `matmul ${s.label} ${s.M}x${s.N}x${s.K}${s.f16B ? ' f16 B' : ''}`;
}

/** Our matmul at one shape, B in f32 or packed f16 (A, C and the sums f32): GFLOP/s = 2MNK / time. */
export async function matmulCase(gpu: Gpu, s: MatmulShape, b: Budget, peakTflops?: number): Promise<CaseResult> {
  const { M, N, K, transB } = s;
  const f16B = s.f16B ?? false;
  const a = randView(gpu, M * K, 1, 'bench.a');
  const wData = randn(K * N, rng(2));
  const w = f16B ? createWith(gpu, packF16(wData), 'bench.b (f16)') : createWith(gpu, wData, 'bench.b');
  const c = createBuffer(gpu, M * N * 4, 'bench.c');
  const t = await timeDispatches(gpu, matmul(gpu, { a, b: w, c, M, N, K, transB, bF16: f16B }), b);
  destroy(a, w, c);
  const flops = matmulFlops(M, N, K);
  return {
    name: matmulName(s), group: 'matmul', value: giga(flops) / t.median, unit: 'GFLOP/s', seconds: t.median, flops,
    mfu: mfu(flops, t.median, peakTflops), params: { M, N, K, transB, bDtype: f16B ? 'f16 (packed)' : 'f32', iters: t.iters },
  };
}

export interface AttentionShape {
  label: string;
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
}

/** Causal GQA attention forward, and backward (delta, dq, dk, dv) from the forward's out and lse. */
export async function attentionCases(gpu: Gpu, s: AttentionShape, b: Budget): Promise<CaseResult[]> {
  const { B, T, H, Hkv, D } = s;
  const nq = B * T * H * D;
  const nk = B * T * Hkv * D;
  const [q, k, v, dout] = [randView(gpu, nq, 3, 'q'), randView(gpu, nk, 4, 'k'), randView(gpu, nk, 5, 'v'), randView(gpu, nq, 6, 'dout')];
  const [out, dq] = [createBuffer(gpu, nq * 4, 'out'), createBuffer(gpu, nq * 4, 'dq')];
  const [dk, dv] = [createBuffer(gpu, nk * 4, 'dk'), createBuffer(gpu, nk * 4, 'dv')];
  const [lse, delta] = [createBuffer(gpu, B * H * T * 4, 'lse'), createBuffer(gpu, B * H * T * 4, 'delta')];
  const start = createBuffer(gpu, B * 4, 'start');
  const fwd = attention(gpu, { q, k, v, out, lse, start, B, Tq: T, Tk: T, H, Hkv, D });
  const bwd = attentionBackward(gpu, { q, k, v, out, dout, lse, start, dq, dk, dv, delta, B, T, H, Hkv, D });
  const tf = await timeDispatches(gpu, fwd, b);
  await run(gpu, fwd); // the backward reads this forward's out and lse
  const tb = await timeDispatches(gpu, bwd, b);
  destroy(q, k, v, dout, out, dq, dk, dv, lse, delta, start);
  const params = { B, T, H, Hkv, D };
  const ff = attentionForwardFlops(B, T, H, D);
  const fb = attentionBackwardFlops(B, T, H, D);
  return [
    { name: `attention fwd ${s.label}`, group: 'attention', value: giga(ff) / tf.median, unit: 'GFLOP/s', seconds: tf.median, flops: ff, params: { ...params, iters: tf.iters } },
    { name: `attention bwd ${s.label}`, group: 'attention', value: giga(fb) / tb.median, unit: 'GFLOP/s', seconds: tb.median, flops: fb, params: { ...params, iters: tb.iters } },
  ];
}

/** RMSNorm forward over rows x C: effective GB/s of its minimum traffic. */
export async function rmsnormCase(gpu: Gpu, label: string, rows: number, C: number, b: Budget): Promise<CaseResult> {
  const x = randView(gpu, rows * C, 7, 'x');
  const w = createWith(gpu, new Float32Array(C).fill(1), 'w');
  const y = createBuffer(gpu, rows * C * 4, 'y');
  const rstd = createBuffer(gpu, rows * 4, 'rstd');
  const t = await timeDispatches(gpu, rmsnorm(gpu, { x, w, y, rstd, rows, C, eps: 1e-5 }), b);
  destroy(x, w, y, rstd);
  const bytes = rmsnormBytes(rows, C);
  return { name: `rmsnorm fwd ${label}`, group: 'norm', value: giga(bytes) / t.median, unit: 'GB/s', seconds: t.median, bytes, params: { rows, C, iters: t.iters } };
}

/**
 * Fused softmax cross-entropy with the gradient written over the logits (the training path): effective
 * GB/s. After the first run the buffer holds gradients, not logits; the work per run is the same.
 */
export async function crossEntropyCase(gpu: Gpu, label: string, rows: number, V: number, b: Budget): Promise<CaseResult> {
  const r = rng(8);
  const logits = randView(gpu, rows * V, 9, 'logits');
  const targets = createWith(gpu, Uint32Array.from({ length: rows }, () => Math.floor(r() * V)), 'targets');
  const weights = createWith(gpu, new Float32Array(rows).fill(1 / rows), 'weights');
  const losses = createBuffer(gpu, rows * 4, 'losses');
  const t = await timeDispatches(gpu, crossEntropy(gpu, { logits, targets, weights, losses, rows, V, grad: true }), b);
  destroy(logits, targets, weights, losses);
  const bytes = crossEntropyBytes(rows, V, true);
  return { name: `cross-entropy fwd+grad ${label}`, group: 'loss', value: giga(bytes) / t.median, unit: 'GB/s', seconds: t.median, bytes, params: { rows, V, iters: t.iters } };
}
