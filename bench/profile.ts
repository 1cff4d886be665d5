// `npx vite-node bench/profile.ts -- [--train preset:BxT] [--decode preset:B] [--repeats N]`
//
// Where the time of one training step (or one decode step) goes, per kernel, for both kernel profiles
// side by side on this adapter: 'gpu' (shared-memory tiles, a workgroup per row) and 'cpu' (barrier-free,
// a thread per row; see src/gpu/device.ts). The whole step is timed as the product submits it (one
// command buffer); then each of its dispatches alone, summed by kernel (matmul split by layout), so the
// table says which kernels dominate and what each profile costs. Ratios are gpu-profile time /
// cpu-profile time of the same work. A decode step is the generator's: the Tq = 1 inference plan at
// position 64 of the cache (KV append, attention over 65 keys, logits) and greedy sampling, all B rows live.

import { type FlagSpec, parseArgs, UsageError, usage } from '../src/cli/args';
import { type Gpu, type KernelProfile, requestGpu } from '../src/gpu/device';
import { type Dispatch, run, submit } from '../src/gpu/kernel';
import { presetConfig } from '../src/model/config';
import { createTrainer } from '../src/train/trainer';
import { decodeRig } from './cases/decode';
import { holdEventLoopUntilExit } from './node_gpu';
import { parseTrainShapes } from './suite';

const FLAGS: Record<string, FlagSpec> = {
  train: { type: 'string', help: 'the model preset and batch shape, preset:BxT (default arithmetic-tiny:16x96 when --decode is absent)' },
  decode: { type: 'string', help: 'profile a decode step instead (or as well): preset:B, e.g. arithmetic-small:128' },
  repeats: { type: 'int', help: 'timed submissions per measurement (default 3)' },
  help: { type: 'bool', help: 'print this help' },
};

const ms = (t0: number) => performance.now() - t0;

/** A kernel's row in the table: the entry point, and for matmuls the operand layout. */
function kernelOf(label: string): string {
  const name = label.split(' ')[0];
  if (name !== 'matmul') return name;
  return label.includes(' tA') ? 'matmul dW (A^T)' : label.includes(' tB') ? 'matmul x·W^T' : 'matmul dX';
}

interface Profile {
  step: number;
  dispatches: number;
  byKernel: Map<string, number>;
}

/** Times `step` whole, then each of `dispatches` alone, summed by kernel. */
async function timeStep(gpu: Gpu, step: () => void, dispatches: readonly Dispatch[], repeats: number): Promise<Profile> {
  step(); // compiles every pipeline
  await run(gpu, []);
  let t0 = performance.now();
  for (let i = 0; i < repeats; i++) step();
  await run(gpu, []);
  const time = ms(t0) / repeats;
  const byKernel = new Map<string, number>();
  for (const d of dispatches) {
    t0 = performance.now();
    for (let i = 0; i < repeats; i++) submit(gpu, [d]);
    await run(gpu, []);
    const k = kernelOf(d.label);
    byKernel.set(k, (byKernel.get(k) ?? 0) + ms(t0) / repeats);
  }
  return { step: time, dispatches: dispatches.length, byKernel };
}

/** One decode step of the generator at cache position 64 (the same work every step), B rows, every row live. */
async function profileDecode(gpu: Gpu, preset: string, B: number, repeats: number): Promise<Profile> {
  const rig = decodeRig(gpu, preset, B);
  const pos = Math.min(64, rig.S - 1);
  const r = await timeStep(gpu, () => rig.step(pos), rig.dispatches, repeats);
  rig.destroy();
  return r;
}

async function profile(gpu: Gpu, preset: string, B: number, T: number, repeats: number): Promise<Profile> {
  const cfg = presetConfig(preset);
  const tr = createTrainer(gpu, cfg, { B, T });
  const BT = B * T;
  tr.setBatch({
    tokens: Uint32Array.from({ length: BT }, (_, i) => (i * 7) % cfg.vocab),
    targets: Uint32Array.from({ length: BT }, (_, i) => (i * 7 + 1) % cfg.vocab),
    mask: new Float32Array(BT).fill(1),
  });
  const r = await timeStep(gpu, () => tr.trainStep(10), tr.stepDispatches, repeats);
  tr.destroy();
  return r;
}

/** The two profiles' results as a Markdown table, slowest kernel (cpu profile) first. */
function table(title: string, g: Profile, c: Profile): string {
  const rows = [...new Set([...g.byKernel.keys(), ...c.byKernel.keys()])].sort((x, y) => (c.byKernel.get(y) ?? 0) - (c.byKernel.get(x) ?? 0));
  const f = (x: number | undefined) => (x === undefined ? '' : x.toFixed(1));
  return [
    `${title}, ${g.dispatches} dispatches; ms per step and per kernel (each dispatch alone, summed)`,
    '| kernel | gpu profile ms | cpu profile ms | gpu / cpu |',
    '| --- | ---: | ---: | ---: |',
    `| **whole step (one command buffer)** | ${f(g.step)} | ${f(c.step)} | ${(g.step / c.step).toFixed(2)} |`,
    ...rows.map((k) => {
      const [x, y] = [g.byKernel.get(k), c.byKernel.get(k)];
      return `| ${k} | ${f(x)} | ${f(y)} | ${x !== undefined && y ? (x / y).toFixed(2) : ''} |`;
    }),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, []);
  if (flags.help) {
    process.stdout.write(usage('npx vite-node bench/profile.ts -- [flags]', FLAGS) + '\n');
    return 0;
  }
  const decode = flags.decode as string | undefined;
  const train = (flags.train as string | undefined) ?? (decode ? undefined : 'arithmetic-tiny:16x96');
  const repeats = (flags.repeats as number | undefined) ?? 3;
  if (repeats < 1) throw new UsageError('--repeats must be at least 1.');
  let decodeShape: { preset: string; B: number } | undefined;
  if (decode) {
    const m = /^([\w-]+):(\d+)$/.exec(decode.trim());
    if (!m || Number(m[2]) < 1) throw new UsageError(`--decode "${decode}" is not preset:B (e.g. arithmetic-small:128)`);
    presetConfig(m[1]); // throws on an unknown preset
    decodeShape = { preset: m[1], B: Number(m[2]) };
  }
  const trainShape = train ? parseTrainShapes(train)[0] : undefined;
  const gpu = await requestGpu();
  const a = gpu.adapter;
  process.stderr.write(`device: ${a.description || a.device} [${a.vendor} ${a.architecture}] via ${a.backend}; default profile ${gpu.kernels}\n`);
  const profiles: KernelProfile[] = ['gpu', 'cpu'];
  const out: string[] = [];
  if (trainShape) {
    const { preset, B, T } = trainShape;
    const [g, c] = [await profile({ ...gpu, kernels: profiles[0] }, preset, B, T, repeats), await profile({ ...gpu, kernels: profiles[1] }, preset, B, T, repeats)];
    out.push(table(`train step ${preset} B${B} T${T}`, g, c));
  }
  if (decodeShape) {
    const { preset, B } = decodeShape;
    const [g, c] = [await profileDecode({ ...gpu, kernels: profiles[0] }, preset, B, repeats), await profileDecode({ ...gpu, kernels: profiles[1] }, preset, B, repeats)];
    out.push(table(`decode step ${preset} B${B} at position 64`, g, c));
  }
  process.stdout.write(out.join('\n\n') + '\n');
  return 0;
}

holdEventLoopUntilExit();
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`error: ${e instanceof Error ? e.message : e}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
