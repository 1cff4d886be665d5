// Shared test plumbing: one GPU per test file, seeded inputs, and views made from CPU arrays.
import { createWith, readF32, readU32, type View } from '../../src/gpu/buffers';
import { type Gpu, requestGpu } from '../../src/gpu/device';

let cached: Promise<Gpu> | null = null;

/** The test GPU. Never skips: with no adapter, requestGpu throws a GpuError with a hint and the test fails. */
export function testGpu(): Promise<Gpu> {
  cached ??= requestGpu();
  return cached;
}

export function f32View(gpu: Gpu, data: ArrayLike<number>, label = ''): View {
  return createWith(gpu, Float32Array.from(data), label);
}

export function u32View(gpu: Gpu, data: ArrayLike<number>, label = ''): View {
  return createWith(gpu, Uint32Array.from(data), label);
}

export { readF32, readU32 };
