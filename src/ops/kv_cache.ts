// Host side of shaders/kv_cache.wgsl: write Tq new key/value rows per sequence into the cache at pos0 (with
// `also`, the values beside the keys in the same dispatch).
import code from '../../shaders/kv_cache.wgsl?raw';
import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, grid1d, makeDispatch, setUniforms } from '../gpu/kernel';
import { checkDims, checkLen } from './shapes';

const shader = { name: 'kv_cache', code };

export interface KvWriteArgs {
  src: View; // [B, Tq, W]
  cache: View; // [B, S, W]
  B: number;
  Tq: number;
  S: number;
  W: number;
  pos0?: number;
  /** A second tensor of the same shape written in the same dispatch (a layer's values beside its keys). */
  also?: { src: View; cache: View };
}

function fields(a: KvWriteArgs, pos0: number): number[] {
  if (!Number.isInteger(pos0) || pos0 < 0 || pos0 + a.Tq > a.S) {
    throw new Error(`kvWrite: rows ${pos0}..${pos0 + a.Tq - 1} do not fit a cache of ${a.S} positions`);
  }
  return [a.B, a.Tq, a.S, a.W, pos0];
}

export function kvWrite(gpu: Gpu, a: KvWriteArgs): Dispatch[] {
  checkDims('kvWrite', { B: a.B, Tq: a.Tq, S: a.S, W: a.W });
  checkLen('kvWrite', { src: a.src }, a.B * a.Tq * a.W);
  checkLen('kvWrite', { cache: a.cache }, a.B * a.S * a.W);
  if (a.also) {
    checkLen('kvWrite', { 'also.src': a.also.src }, a.B * a.Tq * a.W);
    checkLen('kvWrite', { 'also.cache': a.also.cache }, a.B * a.S * a.W);
  }
  return [
    makeDispatch(gpu, {
      shader, entry: a.also ? 'pair' : 'main', uniforms: fields(a, a.pos0 ?? 0),
      buffers: a.also ? { 1: a.src, 2: a.cache, 3: a.also.src, 4: a.also.cache } : { 1: a.src, 2: a.cache },
      workgroups: grid1d(gpu, a.B * a.Tq * a.W, 256),
    }),
  ];
}

/** Moves the write position (each decode step) without allocating. */
export function setKvWritePos(gpu: Gpu, dispatches: Dispatch[], a: KvWriteArgs, pos0: number): void {
  for (const d of dispatches) setUniforms(gpu, d, fields(a, pos0));
}
