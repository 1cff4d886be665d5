import { describe, expect, it } from 'vitest';
import { run } from '../../src/gpu/kernel';
import { kvWrite, setKvWritePos } from '../../src/ops/kv_cache';
import * as ref from '../../src/reference/kv_cache';
import { randn, rng } from '../../src/util/random';
import { f32View, readF32, testGpu } from '../helpers/gpu';
import { assertClose, FWD } from '../helpers/numeric';

describe('kvWrite', () => {
  it('writes rows at pos0 and leaves the rest of the cache alone, for several positions', async () => {
    const gpu = await testGpu();
    const [B, S, W] = [3, 9, 5];
    const r = rng(1);
    let expected: Float64Array = Float64Array.from(randn(B * S * W, r));
    const cache = f32View(gpu, expected);
    // Prefill-like write of 4 rows, then two decode-like writes of 1 row with the position rewritten.
    const pre = randn(B * 4 * W, r);
    await run(gpu, kvWrite(gpu, { src: f32View(gpu, pre), cache, B, Tq: 4, S, W, pos0: 0 }));
    expected = ref.kvWrite({ src: pre, cache: expected, B, Tq: 4, S, W, pos0: 0 });
    const one = randn(B * W, r);
    const args = { src: f32View(gpu, one), cache, B, Tq: 1, S, W };
    const ds = kvWrite(gpu, args);
    for (const pos of [4, 8]) {
      setKvWritePos(gpu, ds, args, pos);
      await run(gpu, ds);
      expected = ref.kvWrite({ src: one, cache: expected, B, Tq: 1, S, W, pos0: pos });
    }
    assertClose(await readF32(gpu, cache), expected, FWD, 'cache');
  });

  it('writes keys and values in one dispatch (also), each as a write of its own would', async () => {
    const gpu = await testGpu();
    const [B, S, W, Tq] = [2, 7, 3, 2];
    const r = rng(2);
    const [k0, v0] = [randn(B * S * W, r), randn(B * S * W, r)];
    const [k, v] = [randn(B * Tq * W, r), randn(B * Tq * W, r)];
    const kc = f32View(gpu, k0);
    const vc = f32View(gpu, v0);
    const args = { src: f32View(gpu, k), cache: kc, B, Tq, S, W, also: { src: f32View(gpu, v), cache: vc } };
    const ds = kvWrite(gpu, args);
    expect(ds).toHaveLength(1);
    setKvWritePos(gpu, ds, args, 5);
    await run(gpu, ds);
    assertClose(await readF32(gpu, kc), ref.kvWrite({ src: k, cache: k0, B, Tq, S, W, pos0: 5 }), FWD, 'keys');
    assertClose(await readF32(gpu, vc), ref.kvWrite({ src: v, cache: v0, B, Tq, S, W, pos0: 5 }), FWD, 'values');
  });

  it('refuses a write past the cache', async () => {
    const gpu = await testGpu();
    const args = { src: f32View(gpu, new Float32Array(4)), cache: f32View(gpu, new Float32Array(16)), B: 1, Tq: 1, S: 4, W: 4 };
    expect(() => kvWrite(gpu, { ...args, pos0: 4 })).toThrow(/do not fit/);
    const ds = kvWrite(gpu, args);
    expect(() => setKvWritePos(gpu, ds, args, 7)).toThrow(/do not fit/);
  });
});
