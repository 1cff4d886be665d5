import { describe, it } from 'vitest';
import { createBuffer } from '../../src/gpu/buffers';
import { run } from '../../src/gpu/kernel';
import { add } from '../../src/ops/add';
import * as ref from '../../src/reference/add';
import { rng, randn } from '../../src/util/random';
import { f32View, readF32, testGpu } from '../helpers/gpu';
import { assertClose, FWD } from '../helpers/numeric';

describe('add', () => {
  for (const n of [1, 7, 256, 1000, 70_000]) {
    it(`matches the reference for n=${n}`, async () => {
      const gpu = await testGpu();
      const r = rng(n);
      const a = randn(n, r);
      const b = randn(n, r);
      const out = createBuffer(gpu, n * 4);
      await run(gpu, add(gpu, { a: f32View(gpu, a), b: f32View(gpu, b), out, n }));
      assertClose(await readF32(gpu, out), ref.add({ a, b, n }), FWD, 'add');
    });
  }
});
