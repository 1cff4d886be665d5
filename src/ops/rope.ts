// Host side of shaders/rope.wgsl: rotary position embedding in place on q or k, and its backward.
//
// forward  rope({ x: q, positions, rows: BT, heads: H, D, theta })                 q [BT, H*D] rotated in place
// backward rope({ x: dq, positions, rows: BT, heads: H, D, theta, inverse: true }) dq rotated back in place
// (the rotation is orthogonal, so its transpose, the backward, is the rotation by -angle).
// inv_freq travels in the uniforms as the f32 table HF builds, so the angles match HF bit for bit
// (see the shader header for how large angles stay accurate).
import code from '../../shaders/rope.wgsl?raw';
import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, grid1d, makeDispatch, type UniformField } from '../gpu/kernel';
import { checkDims, checkLen, checkNoAlias } from './shapes';

const shader = { name: 'rope', code };

/** Largest head dim the uniform inv_freq table holds (MAX_HALF * 2 in the shader). */
export const ROPE_MAX_D = 512;

export interface RopeArgs {
  x: View; // [rows, heads * D], rotated in place
  positions: View; // [rows] u32, the position of each row in its sequence
  rows: number;
  heads: number;
  D: number; // head dim, even
  theta: number; // base, e.g. 10000 (Llama 2) or 500000 (Llama 3)
  /** true: rotate by -angle (undoes the forward; the backward applied to the gradient). */
  inverse?: boolean;
  /** A second tensor of the same rows, positions and D rotated in the same dispatch (k beside q). */
  also?: { x: View; heads: number };
}

/**
 * HF's inv_freq in f32: 1 / theta ** (arange(0, D, 2).float() / D), each step rounded to f32 as torch
 * does (f32 exponent, f32 power, f32 reciprocal).
 */
export function ropeInvFreq(D: number, theta: number): Float32Array {
  const f = Math.fround;
  const out = new Float32Array(D / 2);
  for (let i = 0; i < D / 2; i++) out[i] = f(1 / f(Math.pow(f(theta), f((2 * i) / D))));
  return out;
}

export function rope(gpu: Gpu, { x, positions, rows, heads, D, theta, inverse = false, also }: RopeArgs): Dispatch[] {
  checkDims('rope', { rows, heads, D });
  if (D % 2 !== 0) throw new Error(`rope: head dim D must be even (pairs i, i + D/2 rotate together), got ${D}`);
  if (D > ROPE_MAX_D) throw new Error(`rope: head dim D = ${D} exceeds the ${ROPE_MAX_D} the shader's inv_freq table holds`);
  if (!Number.isFinite(theta) || theta <= 0) throw new Error(`rope: theta must be a positive number, got ${theta}`);
  checkLen('rope', { 'x [rows,heads*D]': x }, rows * heads * D);
  checkLen('rope', { 'positions [rows] (u32)': positions }, rows);
  if (x.buffer === positions.buffer && x.offset < positions.offset + positions.size && positions.offset < x.offset + x.size) {
    throw new Error('rope: x overlaps positions; they must be separate ranges');
  }
  if (also) {
    checkDims('rope', { 'also.heads': also.heads });
    checkLen('rope', { 'also.x [rows,also.heads*D]': also.x }, rows * also.heads * D);
    checkNoAlias('rope', 'also.x', also.x, { x, positions });
  }
  const half = D / 2;
  const n = rows * heads * half;
  // Header (n, heads, half, pad), then the full inv_freq table: the uniform struct has a fixed size.
  const table: UniformField[] = Array.from({ length: ROPE_MAX_D / 2 }, () => ({ f32: 0 }));
  ropeInvFreq(D, theta).forEach((v, i) => (table[i] = { f32: v }));
  const n2 = also ? rows * also.heads * half : 0;
  return [
    makeDispatch(gpu, {
      label: inverse ? 'rope.inverse' : 'rope.forward',
      shader,
      entry: also ? 'main2' : 'main',
      constants: { INVERSE: inverse ? 1 : 0 },
      uniforms: [n, heads, half, n2, also?.heads ?? 0, 0, 0, 0, ...table],
      buffers: also ? { 1: x, 2: positions, 3: also.x } : { 1: x, 2: positions },
      workgroups: grid1d(gpu, n + n2, 256),
    }),
  ];
}
