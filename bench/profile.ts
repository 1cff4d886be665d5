// `npx vite-node bench/profile.ts -- [--train preset:BxT] [--repeats N]`
//
// Where the time of one training step goes, per kernel, for both kernel profiles side by side on this
// adapter: 'gpu' (shared-memory tiles, a workgroup per row) and 'cpu' (barrier-free, a thread per row; see
// src/gpu/device.ts). The whole step is timed as the trainer submits it (one command buffer); then each of
// its dispatches alone, summed by kernel (matmul split by layout), so the table says which kernels
// dominate and what each profile costs. Ratios are gpu-profile time / cpu-profile time of the same work.

import { type FlagSpec, parseArgs, UsageError, usage } from '../src/cli/args';
import { type Gpu, type KernelProfile, requestGpu } from '../src/gpu/device';
import { run, submit } from '../src/gpu/kernel';
import { presetConfig } from '../src/model/config';
import { createTrainer } from '../src/train/trainer';
import { parseTrainShapes } from './suite';

const FLAGS: Record<string, FlagSpec> = {
  train: { type: 'string', help: 'the model preset and batch shape, preset:BxT (default arithmetic-tiny:16x96)' },
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

async function profile(gpu: Gpu, preset: string, B: number, T: number, repeats: number) {
  const cfg = presetConfig(preset);
  const tr = createTrainer(gpu, cfg, { B, T });
  const BT = B * T;
  tr.setBatch({
    tokens: Uint32Array.from({ length: BT }, (_, i) => (i * 7) % cfg.vocab),
    targets: Uint32Array.from({ length: BT }, (_, i) => (i * 7 + 1) % cfg.vocab),
    mask: new Float32Array(BT).fill(1),
  });
  tr.trainStep(10); // compiles every pipeline
  await run(gpu, []);
  let t0 = performance.now();
  for (let i = 0; i < repeats; i++) tr.trainStep(10);
  await run(gpu, []);
  const step = ms(t0) / repeats;
  const byKernel = new Map<string, number>();
  for (const d of tr.stepDispatches) {
    t0 = performance.now();
    for (let i = 0; i < repeats; i++) submit(gpu, [d]);
    await run(gpu, []);
    const k = kernelOf(d.label);
    byKernel.set(k, (byKernel.get(k) ?? 0) + ms(t0) / repeats);
  }
  tr.destroy();
  return { step, dispatches: tr.stepDispatches.length, byKernel };
}

async function main(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, []);
  if (flags.help) {
    process.stdout.write(usage('npx vite-node bench/profile.ts -- [flags]', FLAGS) + '\n');
    return 0;
  }
  const [{ preset, B, T }] = parseTrainShapes((flags.train as string | undefined) ?? 'arithmetic-tiny:16x96');
  const repeats = (flags.repeats as number | undefined) ?? 3;
  if (repeats < 1) throw new UsageError('--repeats must be at least 1.');
  const gpu = await requestGpu();
  const a = gpu.adapter;
  process.stderr.write(`device: ${a.description || a.device} [${a.vendor} ${a.architecture}] via ${a.backend}; default profile ${gpu.kernels}\n`);
  const profiles: KernelProfile[] = ['gpu', 'cpu'];
  const results = [];
  for (const kernels of profiles) results.push(await profile({ ...gpu, kernels }, preset, B, T, repeats));
  const [g, c] = results;
  const rows = [...new Set([...g.byKernel.keys(), ...c.byKernel.keys()])].sort((x, y) => (c.byKernel.get(y) ?? 0) - (c.byKernel.get(x) ?? 0));
  const f = (x: number | undefined) => (x === undefined ? '' : x.toFixed(1));
  const lines = [
    `train step ${preset} B${B} T${T}, ${g.dispatches} dispatches; ms per step and per kernel (each dispatch alone, summed)`,
    '| kernel | gpu profile ms | cpu profile ms | gpu / cpu |',
    '| --- | ---: | ---: | ---: |',
    `| **whole step (one command buffer)** | ${f(g.step)} | ${f(c.step)} | ${(g.step / c.step).toFixed(2)} |`,
    ...rows.map((k) => {
      const [x, y] = [g.byKernel.get(k), c.byKernel.get(k)];
      return `| ${k} | ${f(x)} | ${f(y)} | ${x !== undefined && y ? (x / y).toFixed(2) : ''} |`;
    }),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`error: ${e instanceof Error ? e.message : e}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
