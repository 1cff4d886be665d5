// The benchmark suite as data (which shapes, which budgets) and the loop that runs it on our engine and
// on every peer that loaded. Node (bench/run.ts) and the browser page (bench/browser.ts) both call it.

import type { Gpu } from '../src/gpu/device';
import { headDim, presetConfig } from '../src/model/config';
import { type AttentionShape, attentionCases, crossEntropyCase, type MatmulShape, matmulCase, rmsnormCase } from './cases/kernels';
import { type DecodeShape, decodeCase } from './cases/decode';
import { type GenerateShape, generateCase, raggedCase } from './cases/generate';
import { type StarSize, starCases } from './cases/star';
import { lossAgrees, makeTrainJob, trainCase, trainConfig, type TrainShape } from './cases/train';
import type { Peer } from './peers/peer';
import { type CaseResult, withPeer } from './report';
import { type Budget, timeAdaptive } from './timing';

export const GROUPS = ['matmul', 'attention', 'norm', 'loss', 'train', 'generate', 'star'] as const;
export type Group = (typeof GROUPS)[number];

export interface Plan {
  suite: 'quick' | 'full';
  matmul: MatmulShape[];
  attention: AttentionShape[];
  rmsnorm: { label: string; rows: number; C: number }[];
  crossEntropy: { label: string; rows: number; V: number }[];
  train: TrainShape[];
  /** Steady-state decode steps (no prefill, no readback): the decode throughput. */
  decode: DecodeShape[];
  /** Whole generate() calls through the product's generator (prefill + decode + readbacks). */
  generate: GenerateShape[];
  /** generate() with rows that stop at different steps: finished rows compacted away against kept in place. */
  ragged: GenerateShape[];
  star: StarSize;
  kernelBudget: Budget;
  trainBudget: Budget;
  generateRepeats: number;
}

const decodeAt = (steps: number) => [1, 64, 256].map((B): DecodeShape => ({ preset: 'arithmetic', B, steps, from: 8 }));

/** The matmuls one linear layer of a preset runs in its forward, at BT rows: y[BT,N] = x[BT,K]·W^T. */
export function presetMatmuls(preset: string, BT: number, which: ('q_proj' | 'mlp.up' | 'mlp.down' | 'lm_head')[]): MatmulShape[] {
  const c = presetConfig(preset);
  const HD = c.nHeads * headDim(c);
  const dims = {
    q_proj: { N: HD, K: c.dModel, what: '[BT,C]x[H*D,C]^T' },
    'mlp.up': { N: c.dFF, K: c.dModel, what: '[BT,C]x[F,C]^T' },
    'mlp.down': { N: c.dModel, K: c.dFF, what: '[BT,F]x[C,F]^T' },
    lm_head: { N: c.vocab, K: c.dModel, what: '[BT,C]x[V,C]^T' },
  };
  return which.map((w) => ({ label: `${preset} ${w} ${dims[w].what}`, M: BT, N: dims[w].N, K: dims[w].K, transB: true }));
}

const square = (n: number): MatmulShape => ({ label: `square`, M: n, N: n, K: n, transB: false });
/** The same product with B (the weight) stored as packed halves, as the frozen base under LoRA is. */
const withF16B = (s: MatmulShape): MatmulShape => ({ ...s, f16B: true });

function attentionShape(preset: string, B: number, T: number): AttentionShape {
  const c = presetConfig(preset);
  return { label: `${preset} B${B} T${T}`, B, T, H: c.nHeads, Hkv: c.nKvHeads, D: headDim(c) };
}

/**
 * quick: a subset at small shapes that finishes in under two minutes on SwiftShader (a CPU driver);
 * full: the preset shapes at real batch sizes and the 1024-4096 squares (minutes per case on SwiftShader).
 */
export function plan(quick: boolean): Plan {
  if (quick) {
    return {
      suite: 'quick',
      matmul: [...presetMatmuls('arithmetic', 128, ['mlp.up']), ...presetMatmuls('gpt5m', 64, ['mlp.up']), square(256), withF16B(presetMatmuls('gpt5m', 64, ['mlp.up'])[0])],
      attention: [attentionShape('arithmetic', 4, 32)],
      rmsnorm: [{ label: 'arithmetic BT=128', rows: 128, C: 128 }],
      crossEntropy: [{ label: 'gpt5m BT=128', rows: 128, V: 4096 }],
      train: [{ preset: 'arithmetic', B: 1, T: 32 }],
      decode: decodeAt(1),
      generate: [],
      ragged: [{ preset: 'arithmetic-small', B: 128, steps: 32, prompt: 12 }],
      star: 'micro',
      kernelBudget: { targetSeconds: 0.2, repeats: 3, maxSeconds: 0.6 },
      trainBudget: { targetSeconds: 0.5, repeats: 3, maxSeconds: 3, maxIters: 20 },
      generateRepeats: 2,
    };
  }
  return {
    suite: 'full',
    matmul: [
      ...presetMatmuls('arithmetic', 4096, ['q_proj', 'mlp.up', 'mlp.down']),
      ...presetMatmuls('gpt5m', 4096, ['q_proj', 'mlp.up', 'mlp.down', 'lm_head']),
      square(1024), square(2048), square(4096),
      ...presetMatmuls('gpt5m', 4096, ['mlp.up']).map(withF16B), withF16B(square(1024)), withF16B(square(4096)),
    ],
    attention: [attentionShape('arithmetic', 32, 128), attentionShape('gpt5m', 16, 256)],
    rmsnorm: [{ label: 'arithmetic BT=4096', rows: 4096, C: 128 }, { label: 'gpt5m BT=4096', rows: 4096, C: 256 }],
    crossEntropy: [{ label: 'arithmetic BT=4096', rows: 4096, V: 32 }, { label: 'gpt5m BT=4096', rows: 4096, V: 4096 }],
    train: [{ preset: 'arithmetic', B: 32, T: 128 }, { preset: 'gpt5m', B: 16, T: 256 }],
    decode: decodeAt(32),
    generate: [1, 64, 256].map((B) => ({ preset: 'arithmetic', B, steps: 64, prompt: 8 })),
    ragged: [{ preset: 'arithmetic', B: 256, steps: 64, prompt: 8 }],
    star: 'five',
    kernelBudget: { targetSeconds: 0.5, repeats: 5, maxSeconds: 10 },
    trainBudget: { targetSeconds: 1, repeats: 5, maxSeconds: 20, maxIters: 20 },
    generateRepeats: 3,
  };
}

/** Parses "preset:BxT,..." (e.g. "gpt5m:1x16,arithmetic:8x64") into training shapes. */
export function parseTrainShapes(text: string): TrainShape[] {
  return text.split(',').map((item) => {
    const m = /^([\w-]+):(\d+)x(\d+)$/.exec(item.trim());
    if (!m) throw new Error(`training shape "${item}" is not preset:BxT (e.g. gpt5m:1x16)`);
    presetConfig(m[1]); // throws on an unknown preset
    return { preset: m[1], B: Number(m[2]), T: Number(m[3]) };
  });
}

/**
 * Parses "MxNxK,..." into matmul shapes; a trailing "t" stores B as [N,K] (a Linear weight, y = x·W^T),
 * a trailing "h" (after any "t") stores B as packed halves.
 */
export function parseMatmulShapes(text: string): MatmulShape[] {
  return text.split(',').map((item) => {
    const m = /^(\d+)x(\d+)x(\d+)(t?)(h?)$/.exec(item.trim());
    if (!m) throw new Error(`matmul shape "${item}" is not MxNxK, MxNxKt, MxNxKh or MxNxKth (e.g. 1024x1024x1024)`);
    const [M, N, K] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const shape: MatmulShape = { label: m[4] ? 'linear x·W^T' : M === N && N === K ? 'square' : 'plain', M, N, K, transB: m[4] === 't' };
    return m[5] ? { ...shape, f16B: true } : shape;
  });
}

export interface SuiteOptions {
  peers: Peer[];
  peakTflops?: number;
  /** Run only these groups (all when absent). */
  groups?: Set<Group>;
  log: (line: string) => void;
}

/** Runs a peer's version of a case and attaches its time; a peer that fails is logged and left out. */
async function addPeer(c: CaseResult, peer: Peer, opts: SuiteOptions, make: () => Promise<{ run(): void | Promise<void>; sync(): Promise<void>; dispose(): void }>, b: Budget): Promise<CaseResult> {
  const t0 = performance.now();
  try {
    const r = await make();
    try {
      const t = await timeAdaptive(() => r.run(), () => r.sync(), b);
      opts.log(`    ${peer.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s with setup and warmup`);
      return withPeer(c, peer.name, t.median, { warmupSeconds: t.warmupSeconds });
    } finally {
      r.dispose();
    }
  } catch (e) {
    opts.log(`  ${peer.name} failed on ${c.name}: ${(e as Error).message}`);
    return { ...c, note: [c.note, `${peer.name} failed: ${(e as Error).message}`].filter(Boolean).join('; ') };
  }
}

export async function runSuite(gpu: Gpu, p: Plan, opts: SuiteOptions): Promise<CaseResult[]> {
  const want = (g: Group) => !opts.groups || opts.groups.has(g);
  const out: CaseResult[] = [];
  let since = performance.now();
  const done = (...cs: CaseResult[]) => {
    for (const c of cs) {
      out.push(c);
      const peers = (c.peers ?? []).map((x) => `${x.peer} ${x.peerValue.toPrecision(3)} (${x.ratio.toFixed(2)}x)`).join(', ');
      opts.log(`  ${c.name}: ${c.value.toPrecision(3)} ${c.unit}${peers ? `; ${peers}` : ''}`);
    }
    opts.log(`    (${((performance.now() - since) / 1000).toFixed(1)} s)`);
    since = performance.now();
  };
  if (want('matmul')) {
    for (const s of p.matmul) {
      let c = await matmulCase(gpu, s, p.kernelBudget, opts.peakTflops);
      // The peers' matmuls are f32: f16-B cases have no peer.
      if (!s.f16B) for (const peer of opts.peers) c = await addPeer(c, peer, opts, () => peer.matmul(s), p.kernelBudget);
      done(c);
    }
  }
  if (want('attention')) for (const s of p.attention) done(...(await attentionCases(gpu, s, p.kernelBudget)));
  if (want('norm')) for (const s of p.rmsnorm) done(await rmsnormCase(gpu, s.label, s.rows, s.C, p.kernelBudget));
  if (want('loss')) for (const s of p.crossEntropy) done(await crossEntropyCase(gpu, s.label, s.rows, s.V, p.kernelBudget));
  if (want('train')) {
    for (const s of p.train) {
      const job = makeTrainJob(trainConfig(s), s.B, s.T);
      const ours = await trainCase(gpu, s, job, p.trainBudget, opts.peakTflops);
      let c: CaseResult = { ...ours.result, params: { ...ours.result.params, loss0: ours.loss0 } };
      for (const peer of opts.peers) {
        let peerLoss = NaN;
        c = await addPeer(c, peer, opts, async () => {
          const tr = await peer.train(job);
          peerLoss = tr.loss0;
          if (!lossAgrees(ours.loss0, tr.loss0)) {
            tr.dispose();
            throw new Error(`step-0 loss ${tr.loss0} differs from ours ${ours.loss0} by more than 1e-3 relative: not timed`);
          }
          return tr;
        }, p.trainBudget);
        c = { ...c, params: { ...c.params, [`${peer.name}Loss0`]: peerLoss } };
      }
      done(c);
    }
  }
  if (want('generate')) {
    for (const s of p.decode) done(await decodeCase(gpu, s, p.generateRepeats));
    for (const s of p.generate) done(await generateCase(gpu, s, p.generateRepeats));
    for (const s of p.ragged) done(await raggedCase(gpu, s, p.generateRepeats));
  }
  if (want('star')) done(...(await starCases(gpu, p.star)));
  return out;
}
