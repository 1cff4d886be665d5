// Shared test plumbing: one GPU per test file, seeded inputs, and views made from CPU arrays.
import { createWith, readF32, readU32, type View } from '../../src/gpu/buffers';
import { type Gpu, type KernelProfile, requestGpu } from '../../src/gpu/device';

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

/** Both kernel profiles: ops pick their variants by gpu.kernels, so kernel tests run each. */
export const KERNEL_PROFILES: readonly KernelProfile[] = ['gpu', 'cpu'];

/** The test GPU with its ops set to one profile's kernel variants (the pipeline cache is shared). */
export async function gpuWith(kernels: KernelProfile): Promise<Gpu> {
  return { ...(await testGpu()), kernels };
}

/**
 * The same device claiming other limits (GPUSupportedLimits' fields are getters, so they are copied one by
 * one), so tests can make the ops choose what a device with those limits gets; the real device still binds
 * whatever the ops ask.
 */
export function withLimits(gpu: Gpu, overrides: Partial<Record<keyof GPUSupportedLimits, number>>): Gpu {
  const limits: Record<string, unknown> = {};
  for (const k in gpu.limits) limits[k] = gpu.limits[k as keyof GPUSupportedLimits];
  return { ...gpu, limits: { ...limits, ...overrides } as unknown as GPUSupportedLimits };
}

/** The same device claiming a smaller maxStorageBufferBindingSize, so tests can make the engine split what a real small limit would split. */
export function withBindingLimit(gpu: Gpu, bytes: number): Gpu {
  return withLimits(gpu, { maxStorageBufferBindingSize: bytes });
}
