// What the engine has asked of the GPU so far, in this process or page: compute dispatches encoded, command
// buffers submitted, buffers read back. Every dispatch goes through encode() (./kernel.ts), every submit
// through submitCommands, every readback through readBytes (./buffers.ts). The benchmarks read differences
// around the work they time (dispatches per generated token, for one); nothing else depends on them.

import type { Gpu } from './device';

export const gpuCounters = { dispatches: 0, submits: 0, readbacks: 0 };

export type GpuCounts = typeof gpuCounters;

/** A copy of the counters now; subtract two with countsSince. */
export function countsNow(): GpuCounts {
  return { ...gpuCounters };
}

/** What was asked of the GPU since `before` (a countsNow() result). */
export function countsSince(before: GpuCounts): GpuCounts {
  return { dispatches: gpuCounters.dispatches - before.dispatches, submits: gpuCounters.submits - before.submits, readbacks: gpuCounters.readbacks - before.readbacks };
}

/** Finishes `enc` and submits it as one command buffer. */
export function submitCommands(gpu: Gpu, enc: GPUCommandEncoder): void {
  gpuCounters.submits++;
  gpu.device.queue.submit([enc.finish()]);
}
