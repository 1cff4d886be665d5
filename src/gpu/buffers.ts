// Buffers and views. Every engine allocation goes through createBuffer, so tests can count them.
//
// A View is a byte range of a GPUBuffer. Ops bind views, so one flat allocation (all parameters,
// all gradients) can be handed out tensor by tensor. Offsets of views that are bound must be
// multiples of the device's minStorageBufferOffsetAlignment (256 on every known device).

import { type Gpu, guard } from './device';
import { gpuCounters, submitCommands } from './counters';

export interface View {
  buffer: GPUBuffer;
  /** Byte offset into buffer. */
  offset: number;
  /** Byte length. */
  size: number;
}

/** Storage buffers the engine reads, writes, uploads to and reads back from. */
function storageUsage(): number {
  // GPUBufferUsage is a global in browsers; in Node it appears once `webgpu` is loaded, so read it lazily.
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

export const ALIGN = 256;

export function alignUp(n: number, a = ALIGN): number {
  return Math.ceil(n / a) * a;
}

/** A new storage buffer of at least `bytes` (rounded up to 16), zero-filled, as a whole-buffer view. */
export function createBuffer(gpu: Gpu, bytes: number, label = '', usage = storageUsage()): View {
  const size = Math.max(16, alignUp(bytes, 16));
  if (size > gpu.limits.maxBufferSize) {
    throw new Error(
      `Buffer "${label}" needs ${size} bytes but this GPU allows at most ${gpu.limits.maxBufferSize} per buffer. ` +
        'Use a smaller model, batch or sequence length.',
    );
  }
  const buffer = gpu.device.createBuffer({ label, size, usage });
  gpu.stats.buffersCreated++;
  gpu.stats.bytesCreated += size;
  return { buffer, offset: 0, size: bytes };
}

/** A sub-range of a view. `offset` is relative to the view, in bytes. */
export function subView(v: View, offset: number, size: number): View {
  if (offset < 0 || offset + size > v.size) throw new Error(`subView [${offset}, ${offset + size}) outside a view of ${v.size} bytes`);
  return { buffer: v.buffer, offset: v.offset + offset, size };
}

/** Writes typed data at the start of a view (or at a byte offset inside it). */
export function upload(gpu: Gpu, v: View, data: ArrayBufferView, byteOffset = 0): void {
  if (byteOffset + data.byteLength > v.size) {
    throw new Error(`upload of ${data.byteLength} bytes at ${byteOffset} does not fit a view of ${v.size} bytes`);
  }
  // writeBuffer needs a multiple of 4 bytes.
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  const padded = bytes.byteLength % 4 === 0 ? bytes : (() => {
    const p = new Uint8Array(alignUp(bytes.byteLength, 4));
    p.set(bytes);
    return p;
  })();
  gpu.device.queue.writeBuffer(v.buffer, v.offset + byteOffset, padded);
}

/** Creates a buffer holding `data`. */
export function createWith(gpu: Gpu, data: ArrayBufferView, label = ''): View {
  const v = createBuffer(gpu, data.byteLength, label);
  upload(gpu, v, data);
  return v;
}

/** Copies a view back to the CPU. The only way the engine reads GPU memory; call it only when asked. */
export async function readBytes(gpu: Gpu, v: View): Promise<ArrayBuffer> {
  const size = alignUp(v.size, 4);
  gpuCounters.readbacks++;
  const staging = gpu.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = gpu.device.createCommandEncoder();
  enc.copyBufferToBuffer(v.buffer, v.offset, staging, 0, size);
  submitCommands(gpu, enc);
  await guard(gpu, staging.mapAsync(GPUMapMode.READ));
  const out = staging.getMappedRange().slice(0, v.size);
  staging.unmap();
  staging.destroy();
  return out;
}

export async function readF32(gpu: Gpu, v: View): Promise<Float32Array> {
  return new Float32Array(await readBytes(gpu, v));
}

export async function readU32(gpu: Gpu, v: View): Promise<Uint32Array> {
  return new Uint32Array(await readBytes(gpu, v));
}
