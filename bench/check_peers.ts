// Are the peers doing our work? Trains the same job (weights, batch, Adam without decay or clipping)
// for a few steps in every engine and prints the loss before each step, side by side:
//
//   npx vite-node bench/check_peers.ts -- [--train preset:BxT,...] [--steps N]
//
// The suite itself checks only the step-0 loss before timing (cheap); this shows the trajectories agree.

import { type FlagSpec, parseArgs, usage } from '../src/cli/args';
import { requestGpu } from '../src/gpu/device';
import { presetConfig } from '../src/model/config';
import { createTrainer } from '../src/train/trainer';
import { comparableOptim, makeTrainJob } from './cases/train';
import { installNavigatorGpu } from './node_gpu';
import { loadJax } from './peers/jax';
import { loadTfjs } from './peers/tfjs';
import { parseTrainShapes } from './suite';

const FLAGS: Record<string, FlagSpec> = {
  train: { type: 'string', help: 'shapes, preset:BxT,... (default arithmetic:2x32,gpt5m:1x16)' },
  steps: { type: 'int', help: 'Adam steps per engine (default 3)' },
  help: { type: 'bool', help: 'print this help' },
};

async function main(argv: string[]): Promise<void> {
  const { flags } = parseArgs(argv, FLAGS, []);
  if (flags.help) {
    process.stdout.write(usage('vite-node bench/check_peers.ts -- [flags]', FLAGS) + '\n');
    return;
  }
  const steps = (flags.steps as number | undefined) ?? 3;
  const gpu = await requestGpu();
  installNavigatorGpu();
  const peers = [await loadTfjs(), await loadJax()];
  for (const s of parseTrainShapes((flags.train as string | undefined) ?? 'arithmetic:2x32,gpt5m:1x16')) {
    const job = makeTrainJob(presetConfig(s.preset), s.B, s.T);
    const tr = createTrainer(gpu, job.cfg, { B: s.B, T: s.T }, comparableOptim(job));
    tr.loadParams(job.weights);
    tr.setBatch({ tokens: job.tokens, targets: job.targets, mask: new Float32Array(s.B * s.T).fill(1) });
    const rows: [string, number[]][] = [['ours', []]];
    for (let i = 0; i <= steps; i++) {
      tr.forward();
      rows[0][1].push(await tr.readLoss());
      if (i < steps) tr.trainStep(1_000_000);
    }
    tr.destroy();
    for (const p of peers) {
      const pt = await p.train(job);
      const losses: number[] = [];
      for (let i = 0; i <= steps; i++) {
        losses.push(await pt.loss());
        if (i < steps) {
          await pt.run();
          await pt.sync();
        }
      }
      pt.dispose();
      rows.push([p.name, losses]);
    }
    process.stdout.write(`${s.preset} B${s.B} T${s.T}: loss before steps 1..${steps + 1}\n`);
    for (const [name, ls] of rows) {
      const worst = Math.max(...ls.map((x, i) => Math.abs(x - rows[0][1][i]) / Math.abs(rows[0][1][i])));
      process.stdout.write(`  ${name.padEnd(7)} ${ls.map((x) => x.toFixed(6)).join('  ')}   max rel. diff vs ours ${worst.toExponential(1)}\n`);
    }
  }
}

const args = process.argv.slice(2);
main(args[0] === '--' ? args.slice(1) : args).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`error: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
