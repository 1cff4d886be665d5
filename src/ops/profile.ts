// The one kernel-profile switch: which variant of each kernel an op dispatches, and why.
//
// gpu.kernels (src/gpu/device.ts) is 'gpu' on real GPUs and 'cpu' on CPU drivers (SwiftShader, WARP, llvmpipe),
// where a workgroup runs its threads one after another on a host core, so every barrier is a context switch
// and shared memory buys nothing. Both profiles compute the same values (tests run both); only the threads
// differ. Every choice an op makes between them is a function of this file:
//
//   op                       'gpu' profile                                  'cpu' profile
//   rmsnorm, rmsnorm+add,    `<entry>`: a workgroup per row, tree           `<entry>_row`: a thread per row,
//   cross_entropy, adamw     reduction in shared memory (perRow)            ROW_THREADS rows per workgroup
//     norm partials
//   attention (forward,      `<entry>` in attention.wgsl: a workgroup per   `<entry>_row4` in attention_row.wgsl
//   backward)                query row (or key row), shared-memory tiles    (vectors in vec4 registers) when D is
//                                                                           a multiple of 4 up to ROW4_MAX_D, else
//                                                                           `<entry>_row`; dk and dv from one
//                                                                           kernel where 9 storage buffers bind
//   matmul                   `main`: shared-memory tiles, 4x4 outputs per   `direct`: no shared memory, 4x4
//                            thread, workgroup side by shape                threads of 8x8 outputs each
//   greedy decoding          `main`: a workgroup per row (argmax tree)      `greedy_row`: a thread per row
//   (sampling.wgsl)                                                         (sampling with a temperature keeps
//                                                                           the workgroup per row)
//
// Each `_row`/`direct` variant is documented in its shader's header next to the variant it replaces, and the
// kernel tests run every op under both profiles (tests/helpers/gpu.ts: KERNEL_PROFILES, gpuWith).

import type { Gpu } from '../gpu/device';
import { grid1d } from '../gpu/kernel';

/** Threads per workgroup of the thread-per-row variants ('<entry>_row') that CPU drivers get. */
export const ROW_THREADS = 64;

/** Whether the ops dispatch the CPU drivers' variants (see the table above). */
export const cpuKernels = (gpu: Gpu): boolean => gpu.kernels === 'cpu';

/**
 * Threads for a workgroup-per-row kernel whose rows hold n values: about four values each, a power of
 * two between 32 and 256 (short rows then waste fewer threads and barriers).
 */
export function threadsPerRow(n: number): number {
  return Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(Math.ceil(n / 4)))));
}

/**
 * A per-row op's entry point and grid: on GPUs `entry` with a workgroup per row; on CPU drivers its
 * barrier-free twin `<entry>_row` with a thread per row, ROW_THREADS rows per workgroup. Either way the
 * shader finds its row from the flat workgroup index (see grid1d).
 */
export function perRow(gpu: Gpu, entry: string, rows: number): { entry: string; workgroups: [number, number] } {
  return cpuKernels(gpu) ? { entry: `${entry}_row`, workgroups: grid1d(gpu, rows, ROW_THREADS) } : { entry, workgroups: grid1d(gpu, rows, 1) };
}

/** Largest head dim of the attention row kernels that keep vectors in named vec4 chunks (attention_row.wgsl). */
export const ROW4_MAX_D = 32;

/** Attention's variant for head dim D: a workgroup per row ('gpu'), or a thread per row with vectors in vec4 registers ('row4') or in memory ('row'). */
export function attentionVariant(gpu: Gpu, D: number): 'workgroup' | 'row4' | 'row' {
  if (!cpuKernels(gpu)) return 'workgroup';
  return D % 4 === 0 && D <= ROW4_MAX_D ? 'row4' : 'row';
}

/**
 * Whether attention's backward computes dk and dv in one kernel (bwd_dkv_row4): the row4 variant, where the
 * adapter binds the 9 storage buffers it needs (SwiftShader: 12; the WebGPU default is 8).
 */
export function attentionFusedKeyRows(gpu: Gpu, D: number): boolean {
  return attentionVariant(gpu, D) === 'row4' && gpu.limits.maxStorageBuffersPerShaderStage >= 9;
}

/** Matmul's variant: shared-memory tiles ('tiled') or the barrier-free direct kernel of CPU drivers. */
export function matmulVariant(gpu: Gpu): 'tiled' | 'direct' {
  return cpuKernels(gpu) ? 'direct' : 'tiled';
}

/** Whether greedy decoding takes a thread per row (CPU drivers); sampling with a temperature never does. */
export function greedyPerRow(gpu: Gpu, greedy: boolean): boolean {
  return cpuKernels(gpu) && greedy;
}
