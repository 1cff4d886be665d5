// Shape checks shared by the ops' host sides: fail before any GPU work, naming the op and the tensor.
import type { View } from '../gpu/buffers';

/** Every view must hold at least `n` 4-byte elements. */
export function checkLen(op: string, views: Record<string, View>, n: number, elemBytes = 4): void {
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${op}: element count must be a positive integer, got ${n}`);
  for (const [name, v] of Object.entries(views)) {
    if (v.size < n * elemBytes) {
      throw new Error(`${op}: ${name} holds ${v.size / elemBytes} elements but the shape needs ${n}`);
    }
  }
}

/** Every dimension must be a positive integer. */
export function checkDims(op: string, dims: Record<string, number>): void {
  for (const [name, d] of Object.entries(dims)) {
    if (!Number.isInteger(d) || d <= 0) throw new Error(`${op}: ${name} must be a positive integer, got ${d}`);
  }
}

/** Throws when the writable view `out` overlaps any of `inputs` (a WebGPU validation error otherwise). */
export function checkNoAlias(op: string, outName: string, out: View, inputs: Record<string, View>): void {
  for (const [name, v] of Object.entries(inputs)) {
    if (v.buffer === out.buffer && v.offset < out.offset + out.size && out.offset < v.offset + v.size) {
      throw new Error(`${op}: ${outName} overlaps ${name}; the output must be a separate range`);
    }
  }
}
