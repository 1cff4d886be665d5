// What a peer engine (TensorFlow.js, jax-js) provides to the suite: the same work as one of our cases,
// as run/sync callbacks that bench/timing.ts times exactly like ours.

import type { ModelConfig } from '../../src/model/config';
import type { ParamTensors } from '../../src/model/params';
import type { MatmulShape } from '../cases/kernels';
import type { PeerName } from '../report';

/** Work a peer set up once and can repeat: `run` submits one call, `sync` waits for the device. */
export interface PeerRunner {
  run(): void | Promise<void>;
  sync(): Promise<void>;
  dispose(): void;
}

/** One training step of our model, written in the peer's own API, from our initial weights. */
export interface TrainJob {
  cfg: ModelConfig;
  B: number;
  T: number;
  /** Our initial weights by Hugging Face name (Linear weights [out, in]). */
  weights: ParamTensors;
  /** [B*T] token ids and next-token targets; every position is trained (mask all ones). */
  tokens: Uint32Array;
  targets: Uint32Array;
  /** Adam without weight decay or clipping: TF.js has no AdamW, so our side runs with decay 0 too. */
  adam: { lr: number; beta1: number; beta2: number; eps: number };
}

export interface PeerTrainer extends PeerRunner {
  /** Mean cross-entropy of the batch at the initial weights, before any step (checked against ours). */
  loss0: number;
  /** Mean cross-entropy of the batch at the current weights (waits for pending steps; not for timing). */
  loss(): Promise<number>;
}

export interface Peer {
  name: PeerName;
  /** Package version and backend, e.g. "@tensorflow/tfjs-core 4.22.0 (webgpu)". */
  version: string;
  matmul(s: MatmulShape): Promise<PeerRunner>;
  train(job: TrainJob): Promise<PeerTrainer>;
}

/** Rotate-half RoPE tables [T, D/2] for positions 0..T-1, with the f32 angle our shader uses. */
export function ropeTables(T: number, D: number, theta: number): { cos: Float32Array<ArrayBuffer>; sin: Float32Array<ArrayBuffer> } {
  const f = Math.fround;
  const half = D / 2;
  const cos = new Float32Array(T * half);
  const sin = new Float32Array(T * half);
  for (let i = 0; i < half; i++) {
    const invFreq = f(1 / f(Math.pow(f(theta), f((2 * i) / D))));
    for (let t = 0; t < T; t++) {
      const angle = f(f(t) * invFreq);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** Additive causal mask [T, T]: 0 where key j <= query i, a large negative number above the diagonal. */
export function causalMask(T: number): Float32Array<ArrayBuffer> {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e9;
  return m;
}
