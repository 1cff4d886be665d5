// The loop bootstraps on the real engine: from a base model that adds single digits 40% of the time unaided
// and follows hints more often, two STaR iterations (rationale filter, hint replay, accumulation) raise
// held-out accuracy, on a fixed seed.
//
// The fixture tests/fixtures/star/micro-base.safetensors is the micro model (6k parameters) trained by the
// PyTorch twin for 1,000 steps on one-digit sums, half of them hinted:
//   /usr/bin/python3 scripts/twin/pretrain.py --preset micro --lo 1 --hi 1 --hint-hi 1 --report-hi 1 --n 1000 \
//     --steps 1000 --batch 16 --lr 5e-3 --warmup 20 --check-every 5000 --target 1.01 --seed 1 --out DIR
// (on the twin it solves 41% of the 81 problems unaided, 67% shown the hint).

import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { StarConfig } from '../../src/star/config';
import { runStar } from '../../src/star/loop';
import { type RunConfig, runConfig } from '../../src/star/run_config';
import { createRunEngine } from '../../src/star/run_engine';
import { MemoryStore } from '../../src/star/stores/memory';
import { arithmeticTask } from '../../src/star/tasks/arithmetic_task';
import { testGpu } from '../helpers/gpu';

describe('STaR on the engine', () => {
  it('a micro run from a weak base raises held-out accuracy over two iterations', async () => {
    const preset = runConfig('micro');
    const star: StarConfig = {
      ...preset.star, minDigits: 1, maxDigits: 1, iterations: 2, trainSize: 200, poolSize: 2000, evalSize: 162, seed: 7,
      filter: 'rationale', hintReplay: true, accumulate: true, steps: { kind: 'epochs', epochs: 8, min: 80, max: 80 },
    };
    const cfg: RunConfig = { ...preset, star, optim: { ...preset.optim, lr: 3e-3, warmupSteps: 10 }, trainBatch: 16, genBatch: 128 };
    const store = new MemoryStore();
    await store.putWeights('base', new Uint8Array(await readFile(new URL('../fixtures/star/micro-base.safetensors', import.meta.url))));
    const summary = await runStar(cfg.star, { task: arithmeticTask(cfg.star), engine: createRunEngine(await testGpu(), cfg), store });
    const acc = summary.iterations.map((r) => r.evalAccuracy);
    console.log(`micro bootstrap: accuracy ${acc.map((a) => (100 * a).toFixed(1)).join(' -> ')}; rationalized ${summary.iterations.map((r) => r.rationalized).join(', ')}`);
    expect(acc[0]).toBeGreaterThan(0.2);
    expect(acc[0]).toBeLessThan(0.6); // weak, but not hopeless
    expect(summary.iterations[1].rationalized).toBeGreaterThan(0); // the hint brought back some failures...
    expect(acc[2]).toBeGreaterThan(acc[0] + 0.05); // ...and two iterations later it adds better (here and in CI: 34.6 -> 43.8 -> 42.0%)
    expect(acc[1]).toBeGreaterThan(acc[0]);
  }, 300_000);
});
