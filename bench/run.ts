// `npm run bench -- [--quick] [--json FILE] [--peak-tflops X] [--only GROUPS] [--peers LIST]
//                   [--train preset:BxT,...] [--matmul MxNxK,...] [--decode-steps N]`
//
// Runs the suite (bench/suite.ts) in Node on Dawn: our engine, then the same work in TensorFlow.js
// (WebGPU backend) and jax-js (WebGPU device) on the same adapter, and prints one table. --json writes
// the document (adapter info + every case) that docs/performance.md is built from.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type FlagSpec, parseArgs, UsageError, usage } from '../src/cli/args';
import { requestGpu } from '../src/gpu/device';
import { holdEventLoopUntilExit, installNavigatorGpu } from './node_gpu';
import type { Peer } from './peers/peer';
import { type BenchDocument, checkDocument, formatTable, type PeerName } from './report';
import { STAR_SIZES, type StarSize } from './cases/star';
import { type Group, GROUPS, parseMatmulShapes, parseTrainShapes, plan, runSuite } from './suite';

const FLAGS: Record<string, FlagSpec> = {
  quick: { type: 'bool', help: 'a subset at small shapes (under two minutes on SwiftShader)' },
  json: { type: 'string', help: 'write the results as JSON to this file' },
  'peak-tflops': { type: 'string', help: "the device's f32 peak in TFLOP/s: enables MFU" },
  only: { type: 'string', help: `comma-separated groups: ${GROUPS.join(', ')}` },
  peers: { type: 'string', help: 'comma-separated peers to run: tfjs, jax-js, none (default tfjs,jax-js)' },
  train: { type: 'string', help: "replace the suite's training shapes: preset:BxT,... (e.g. gpt5m:1x16)" },
  matmul: { type: 'string', help: "replace the suite's matmul shapes: MxNxK[t],... (t: B is a [N,K] weight)" },
  'decode-steps': { type: 'int', help: "replace the suite's decode steps (per timed repeat, and per generate call)" },
  star: { type: 'string', help: `the STaR run to time: ${STAR_SIZES.join(', ')} (default: micro for --quick, five otherwise)` },
  help: { type: 'bool', help: 'print this help' },
};

// Peer modules load on demand: a peer package that is missing or broken then costs only that peer.
const LOADERS: Record<PeerName, () => Promise<Peer>> = {
  tfjs: async () => (await import('./peers/tfjs')).loadTfjs(),
  'jax-js': async () => (await import('./peers/jax')).loadJax(),
};

function list<T extends string>(flag: string, value: string | undefined, known: readonly T[], fallback: T[]): T[] {
  if (value === undefined) return fallback;
  if (value === 'none') return [];
  const items = value.split(',').map((s) => s.trim()) as T[];
  for (const x of items) if (!known.includes(x)) throw new UsageError(`--${flag}: unknown "${x}"; known: ${known.join(', ')}.`);
  return items;
}

async function main(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, []);
  if (flags.help) {
    process.stdout.write(usage('npm run bench -- [flags]', FLAGS) + '\n');
    return 0;
  }
  const peak = flags['peak-tflops'] === undefined ? undefined : Number(flags['peak-tflops']);
  if (peak !== undefined && !(peak > 0)) throw new UsageError(`--peak-tflops takes a positive number, got "${flags['peak-tflops']}".`);
  const groups = flags.only === undefined ? undefined : new Set(list<Group>('only', flags.only as string, GROUPS, []));
  const peerNames = list<PeerName>('peers', flags.peers as string | undefined, ['tfjs', 'jax-js'], ['tfjs', 'jax-js']);
  const quick = flags.quick === true;
  const p = plan(quick);
  try {
    if (typeof flags.train === 'string') p.train = parseTrainShapes(flags.train);
    if (typeof flags.matmul === 'string') p.matmul = parseMatmulShapes(flags.matmul);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (flags.star !== undefined) {
    if (!STAR_SIZES.includes(flags.star as StarSize)) throw new UsageError(`--star: unknown "${flags.star}"; known: ${STAR_SIZES.join(', ')}.`);
    p.star = flags.star as StarSize;
  }
  if (flags['decode-steps'] !== undefined) {
    const steps = flags['decode-steps'] as number;
    if (steps < 1) throw new UsageError('--decode-steps must be at least 1.');
    p.generate = p.generate.map((g) => ({ ...g, steps }));
    p.decode = p.decode.map((d) => ({ ...d, steps }));
  }
  const log = (line: string) => process.stderr.write(line + '\n');

  const gpu = await requestGpu();
  const a = gpu.adapter;
  log(`device: ${a.description || a.device} [${a.vendor} ${a.architecture}] via ${a.backend}; suite ${quick ? 'quick' : 'full'}`);
  installNavigatorGpu(); // after requestGpu: the peers get the same adapter (SwiftShader included)
  const peers: Peer[] = [];
  const peerStatus: BenchDocument['peerStatus'] = {};
  for (const name of peerNames) {
    try {
      const peer = await LOADERS[name]();
      peers.push(peer);
      peerStatus[name] = peer.version;
    } catch (e) {
      peerStatus[name] = `not run: ${(e as Error).message}`;
    }
    log(`peer ${name}: ${peerStatus[name]}`);
  }

  const t0 = performance.now();
  const cases = await runSuite(gpu, p, { peers, peakTflops: peak, groups, log });
  const doc: BenchDocument = {
    suite: quick ? 'quick' : 'full',
    date: new Date().toISOString(),
    adapter: gpu.adapter,
    runtime: `Node.js ${process.version} (${process.platform}-${process.arch}), webgpu (Dawn)`,
    command: ['npm run bench --', ...argv].join(' '),
    peakTflops: peak ?? null,
    peerStatus,
    cases,
  };
  checkDocument(doc);
  process.stdout.write(formatTable(cases) + '\n');
  log(`suite took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (typeof flags.json === 'string') {
    await mkdir(dirname(flags.json), { recursive: true });
    await writeFile(flags.json, JSON.stringify(doc, null, 2) + '\n');
    log(`wrote ${flags.json}`);
  }
  return 0;
}

holdEventLoopUntilExit();
const args = process.argv.slice(2);
main(args[0] === '--' ? args.slice(1) : args).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(e instanceof UsageError ? `error: ${e.message}\n` : `error: ${(e as Error).stack ?? e}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
