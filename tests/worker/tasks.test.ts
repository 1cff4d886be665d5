// The worker's per-task entries (src/worker/tasks.ts): every task of the registry has one, and an arithmetic
// config is prepared as the start button needs it (refused with the estimate's reason, else run as given).

import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { runConfig } from '../../src/star/run_config';
import type { AnyRunConfig } from '../../src/star/run_configs';
import { TASK_NAMES } from '../../src/star/tasks/registry';
import { openDb } from '../../src/storage/db';
import { createCsqaInputs } from '../../src/worker/csqa';
import { type WorkerCtx, workerTask } from '../../src/worker/tasks';

const ctx = (): WorkerCtx => ({
  db: openDb(`tasks-${Math.random()}`), calibFor: async () => null, csqa: createCsqaInputs({ cache: null }),
  fetchBytes: async () => new Uint8Array(), now: () => 0,
});

describe('the worker\'s task entries', () => {
  it('cover every task of the registry', () => {
    for (const task of TASK_NAMES) {
      const w = workerTask({ task } as AnyRunConfig);
      expect(typeof w.estimate, task).toBe('function');
      expect(typeof w.prepare, task).toBe('function');
      expect(typeof w.open, task).toBe('function');
    }
  });

  it('prepares an arithmetic run as given, or refuses it with the estimate\'s reason', async () => {
    const cfg = runConfig('demo');
    const x = ctx();
    const ok = await workerTask(cfg).prepare(x, cfg, undefined, { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27 });
    expect(ok).toEqual({ refusal: null, config: cfg });
    const small = await workerTask(cfg).prepare(x, cfg, undefined, { maxBufferSize: 2 ** 20, maxStorageBufferBindingSize: 2 ** 16 });
    expect(small.refusal).toMatch(/buffer; this GPU binds at most|GPU memory/);
    const est = await workerTask(cfg).estimate(x, cfg, undefined, null);
    expect(est.trainSteps).toBeGreaterThan(0);
  });
});
