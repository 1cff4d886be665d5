// One way to get a GPU, in the browser (navigator.gpu) and in Node (the `webgpu` package, i.e. Dawn).
//
// Failures are typed (GpuError) and carry a hint saying what to do. A lost device or an uncaptured
// validation error never turns into a hang: every readback races the device's `lost` promise, and
// `checkGpu()` rethrows the first uncaptured error.

export type GpuErrorKind = 'no-webgpu' | 'no-adapter' | 'device-lost' | 'validation' | 'out-of-memory' | 'internal';

export class GpuError extends Error {
  constructor(
    readonly kind: GpuErrorKind,
    message: string,
    readonly hint: string,
  ) {
    super(`${message}\nHint: ${hint}`);
    this.name = 'GpuError';
  }
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Where the adapter came from: 'browser', 'dawn' or 'dawn+swiftshader'. */
  backend: string;
}

export interface Gpu {
  device: GPUDevice;
  adapter: AdapterSummary;
  limits: GPUSupportedLimits;
  /** True when the device was created with the `shader-f16` feature. */
  f16: boolean;
  /**
   * Which kernel variants the ops pick: 'gpu' (shared-memory tiles, a workgroup per row) on real GPUs;
   * 'cpu' (no shared memory, no barriers, a thread per row) on CPU drivers such as SwiftShader, where
   * each barrier costs a context switch. Both give the same results; tests run both.
   */
  kernels: KernelProfile;
  /** Counts what the engine allocated through src/gpu/buffers.ts (tests use it to prove reuse). */
  stats: { buffersCreated: number; bytesCreated: number };
  /** The first uncaptured error or loss, if any. */
  failure: GpuError | null;
  /** Resolves (never rejects) with the loss as a GpuError when the device is lost. */
  lost: Promise<GpuError>;
}

export type KernelProfile = 'gpu' | 'cpu';

/** CPU Vulkan/D3D drivers (SwiftShader, WARP, llvmpipe) run compute on the host's cores. */
export function kernelProfileOf(info: { vendor?: string; architecture?: string; description?: string; device?: string; isFallbackAdapter?: boolean }): KernelProfile {
  if (info.isFallbackAdapter) return 'cpu';
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.description ?? ''} ${info.device ?? ''}`.toLowerCase();
  return /swiftshader|llvmpipe|lavapipe|microsoft basic render|warp/.test(text) ? 'cpu' : 'gpu';
}

/** Debian's chromium package ships SwiftShader, a CPU Vulkan driver that Dawn can use. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

const LIMITS_WE_WANT: (keyof GPUSupportedLimits)[] = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
];

function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node;
}

// Dawn instances and adapters are kept for the life of the process: finalizing one (say the first
// instance, which found no adapter, or the adapter of a live device) tears down driver state in use and
// crashes (SwiftShader: "The futex facility returned an unexpected error code"). They are kept on
// globalThis, not in a module array, because a bundler drops an array nobody reads (Rollup did, for the
// bench kit in bench/portable, and the first garbage collection crashed the run).
export function keepForever(x: object): void {
  const g = globalThis as { __starDawnKeep?: object[] };
  (g.__starDawnKeep ??= []).push(x);
}

/**
 * On Linux without a desktop session, the Vulkan loader's display probe prints "error: XDG_RUNTIME_DIR is
 * invalid or not set in the environment." twice per Dawn instance. Nothing is ever written there, so when
 * the variable is unset or names no folder it is pointed at a private empty one (mode 0700), removed when
 * the process exits.
 */
function privateRuntimeDir(fs: typeof import('node:fs')): void {
  if (process.platform !== 'linux') return;
  const current = process.env.XDG_RUNTIME_DIR;
  if (current && fs.statSync(current, { throwIfNoEntry: false })?.isDirectory()) return;
  const dir = fs.mkdtempSync(`${process.env.TMPDIR || '/tmp'}/star-webgpu-runtime-`);
  process.env.XDG_RUNTIME_DIR = dir;
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
}

async function nodeAdapter(powerPreference: GPUPowerPreference): Promise<{ adapter: GPUAdapter | null; backend: string }> {
  // A variable specifier keeps bundlers from pulling the native module into the browser build.
  const spec = 'webgpu';
  const dawn = (await import(/* @vite-ignore */ spec)) as {
    create: (flags: string[]) => GPU;
    globals: Record<string, unknown>;
  };
  Object.assign(globalThis, dawn.globals);
  const fsName = 'node:fs';
  const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs');
  privateRuntimeDir(fs);
  const instance = () => {
    const g = dawn.create([]);
    keepForever(g);
    return g;
  };
  let adapter = await instance().requestAdapter({ powerPreference });
  if (adapter) {
    keepForever(adapter);
    return { adapter, backend: 'dawn' };
  }
  if (process.platform === 'linux' && !process.env.VK_ICD_FILENAMES && fs.existsSync(SWIFTSHADER_ICD)) {
    // No usable adapter: fall back to SwiftShader. The Vulkan loader reads this on the next instance.
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    adapter = await instance().requestAdapter({ powerPreference });
    if (adapter) {
      keepForever(adapter);
      return { adapter, backend: 'dawn+swiftshader' };
    }
  }
  return { adapter: null, backend: 'dawn' };
}

/** Acquire a device with the adapter's own limits (not the defaults), ready for the engine. */
export async function requestGpu(opts: { powerPreference?: GPUPowerPreference; f16?: boolean; kernels?: KernelProfile } = {}): Promise<Gpu> {
  const powerPreference = opts.powerPreference ?? 'high-performance';
  let adapter: GPUAdapter | null;
  let backend: string;
  if (typeof navigator !== 'undefined' && navigator.gpu) {
    adapter = await navigator.gpu.requestAdapter({ powerPreference });
    backend = 'browser';
  } else if (isNode()) {
    ({ adapter, backend } = await nodeAdapter(powerPreference));
  } else {
    throw new GpuError(
      'no-webgpu',
      'This browser has no WebGPU (navigator.gpu is missing).',
      'Use a recent Chrome, Edge or Safari 26+, or enable WebGPU (chrome://flags/#enable-unsafe-webgpu). Firefox needs version 141+ on Windows.',
    );
  }
  if (!adapter) {
    throw new GpuError(
      'no-adapter',
      'WebGPU is present but no GPU adapter was found.',
      isNode()
        ? `On Linux install a Vulkan driver (apt-get install libvulkan1 mesa-vulkan-drivers, or the GPU vendor's), or apt-get install chromium libvulkan1 to get SwiftShader at ${SWIFTSHADER_ICD}; set VK_ICD_FILENAMES to a driver's ICD file to pick one.`
        : 'Update the GPU driver, check chrome://gpu, or enable WebGPU (chrome://flags/#enable-unsafe-webgpu).',
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS_WE_WANT) requiredLimits[k] = adapter.limits[k] as number;
  const wantF16 = (opts.f16 ?? true) && adapter.features.has('shader-f16');
  const device = await adapter.requestDevice({
    requiredLimits,
    requiredFeatures: wantF16 ? ['shader-f16'] : [],
  });
  const info = adapter.info;
  const gpu: Gpu = {
    device,
    adapter: {
      vendor: info?.vendor ?? '',
      architecture: info?.architecture ?? '',
      device: info?.device ?? '',
      description: info?.description ?? '',
      backend,
    },
    limits: device.limits,
    f16: wantF16,
    kernels: opts.kernels ?? kernelProfileOf({ ...info, isFallbackAdapter: (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter }),
    stats: { buffersCreated: 0, bytesCreated: 0 },
    failure: null,
    lost: device.lost.then((l) => {
      const err = new GpuError(
        'device-lost',
        `The GPU device was lost (${l.reason}): ${l.message}`,
        'The GPU was reset or ran out of memory. Progress up to the last finished phase is kept: resume the run, or try a smaller batch or model.',
      );
      gpu.failure ??= err;
      return err;
    }),
  };
  device.addEventListener('uncapturederror', (ev) => {
    const e = (ev as GPUUncapturedErrorEvent).error;
    const oom = typeof GPUOutOfMemoryError !== 'undefined' && e instanceof GPUOutOfMemoryError;
    gpu.failure ??= new GpuError(
      oom ? 'out-of-memory' : 'validation',
      `GPU ${oom ? 'out of memory' : 'error'}: ${e.message}`,
      oom ? 'Use a smaller batch, sequence length or model.' : 'This is a bug in the engine: please report it with the message above.',
    );
  });
  return gpu;
}

/** Throws the first uncaptured GPU error or loss, if there was one. */
export function checkGpu(gpu: Gpu): void {
  if (gpu.failure) throw gpu.failure;
}

/** Awaits `work` unless the device is lost first; then rejects with the loss. */
export async function guard<T>(gpu: Gpu, work: Promise<T>): Promise<T> {
  const result = await Promise.race([work, gpu.lost.then((e) => Promise.reject(e))]);
  checkGpu(gpu);
  return result;
}
