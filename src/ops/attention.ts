// Host side of shaders/attention.wgsl (workgroup kernels, GPUs) and shaders/attention_row.wgsl (a thread
// per row, CPU drivers), both prefixed with shaders/attention_common.wgsl: causal GQA attention with left
// padding, forward and backward.
import common from '../../shaders/attention_common.wgsl?raw';
import code from '../../shaders/attention.wgsl?raw';
import rowCode from '../../shaders/attention_row.wgsl?raw';
import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, grid1d, makeDispatch, type Shader, setUniforms, type UniformField } from '../gpu/kernel';
import { attentionFusedKeyRows, attentionVariant, ROW_THREADS } from './profile';
import { checkDims, checkLen } from './shapes';

const shader = { name: 'attention', code: common + code };
const rowShader = { name: 'attention_row', code: common + rowCode };

/**
 * Shader, entry point, constants and grid of a per-row kernel in the variant ./profile.ts picks: on GPUs
 * `entry` with a workgroup per row; on CPU drivers a thread per row, `<entry>_row4` (vectors in registers)
 * or `<entry>_row`.
 */
function rowKernel(gpu: Gpu, entry: string, rows: number, D: number): { shader: Shader; entry: string; constants?: Record<string, number>; workgroups: [number, number] } {
  const variant = attentionVariant(gpu, D);
  if (variant === 'workgroup') return { shader, entry, workgroups: grid1d(gpu, rows, 1) };
  const workgroups = grid1d(gpu, rows, ROW_THREADS);
  if (variant === 'row4') return { shader: rowShader, entry: `${entry}_row4`, constants: { DC: D / 4 }, workgroups };
  return { shader: rowShader, entry: `${entry}_row`, workgroups };
}

/** Largest head dim: the shader's threads own two output dims each (64 threads). */
export const MAX_HEAD_DIM = 128;
/** Threads per workgroup in every entry point (rows of bwd_delta per workgroup). */
const WG = 64;

export interface AttentionArgs {
  q: View; // [B, Tq, H, D]  (rows of the q projection: row b*Tq+t holds H heads of D)
  k: View; // [B, Tk, Hkv, D] (Tk = key capacity: T in training, the KV-cache length when decoding)
  v: View; // [B, Tk, Hkv, D]
  out: View; // [B, Tq, H, D]
  lse: View; // [B, H, Tq] f32: log-sum-exp of the scaled scores of each query row (saved for backward)
  start: View; // [B] u32: index of the first real (non-padding) key/query of each sequence (left padding); 0 = none
  B: number;
  Tq: number;
  Tk: number;
  H: number;
  Hkv: number;
  D: number;
  qOffset?: number; // absolute position of query row 0 (default 0); query t attends keys j with start[b] <= j <= qOffset + t
  scale?: number; // default 1/sqrt(D)
}

export interface AttentionBackwardArgs {
  q: View; // [B, T, H, D]
  k: View; // [B, T, Hkv, D]
  v: View; // [B, T, Hkv, D]
  out: View; // [B, T, H, D]   forward output
  dout: View; // [B, T, H, D]
  lse: View; // [B, H, T]      forward log-sum-exp
  start: View; // [B] u32
  dq: View; // [B, T, H, D]   written
  dk: View; // [B, T, Hkv, D] written
  dv: View; // [B, T, Hkv, D] written
  delta: View; // scratch [B, H, T] f32: rowsum(dout * out)
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
  scale?: number;
}

function checkHeads(op: string, H: number, Hkv: number, D: number): void {
  if (H % Hkv !== 0) throw new Error(`${op}: H = ${H} query heads must be a multiple of Hkv = ${Hkv} kv heads`);
  if (D > MAX_HEAD_DIM) throw new Error(`${op}: head dim D = ${D} exceeds the supported maximum ${MAX_HEAD_DIM}`);
}

function scaleOf(op: string, D: number, scale?: number): number {
  const s = scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(s)) throw new Error(`${op}: scale must be finite, got ${scale}`);
  return s;
}

function checkOffset(op: string, qOffset: number, Tq: number, Tk: number): void {
  if (!Number.isInteger(qOffset) || qOffset < 0) throw new Error(`${op}: qOffset must be a non-negative integer, got ${qOffset}`);
  // The last query (position qOffset + Tq - 1) must find its own key in the cache.
  if (qOffset + Tq > Tk) throw new Error(`${op}: qOffset ${qOffset} + Tq ${Tq} exceeds the key capacity Tk = ${Tk}`);
}

/** The uniform fields, in the order of `struct Params` in the shader. */
function params(B: number, Tq: number, Tk: number, H: number, Hkv: number, D: number, qOffset: number, scale: number): UniformField[] {
  return [B, Tq, Tk, H, Hkv, D, qOffset, { f32: scale }];
}

function forwardParams(a: AttentionArgs, qOffset: number): UniformField[] {
  return params(a.B, a.Tq, a.Tk, a.H, a.Hkv, a.D, qOffset, scaleOf('attention', a.D, a.scale));
}

/** Forward: out and lse from q, k, v, per (b, t, h) query row. */
export function attention(gpu: Gpu, args: AttentionArgs): Dispatch[] {
  const { q, k, v, out, lse, start, B, Tq, Tk, H, Hkv, D } = args;
  const op = 'attention';
  checkDims(op, { B, Tq, Tk, H, Hkv, D });
  checkHeads(op, H, Hkv, D);
  const qOffset = args.qOffset ?? 0;
  checkOffset(op, qOffset, Tq, Tk);
  checkLen(op, { q, out }, B * Tq * H * D);
  checkLen(op, { k, v }, B * Tk * Hkv * D);
  checkLen(op, { lse }, B * H * Tq);
  checkLen(op, { start }, B);
  return [
    makeDispatch(gpu, {
      label: 'attention.forward',
      ...rowKernel(gpu, 'forward', B * Tq * H, D),
      uniforms: forwardParams(args, qOffset),
      buffers: { 1: q, 2: k, 3: v, 4: start, 5: out, 6: lse },
    }),
  ];
}

/** Rewrites the query offset of dispatches made by attention() with the same args (one decode step). */
export function setAttentionOffset(gpu: Gpu, dispatches: Dispatch[], args: AttentionArgs, qOffset: number): void {
  checkOffset('setAttentionOffset', qOffset, args.Tq, args.Tk);
  for (const d of dispatches) setUniforms(gpu, d, forwardParams(args, qOffset));
}

/**
 * Backward (training: Tq = Tk = T, qOffset 0): delta, then dq per query row, then dk and dv per key
 * row. Writes every element of dq, dk, dv (no accumulation) and uses delta as scratch.
 */
export function attentionBackward(gpu: Gpu, args: AttentionBackwardArgs): Dispatch[] {
  const { q, k, v, out, dout, lse, start, dq, dk, dv, delta, B, T, H, Hkv, D } = args;
  const op = 'attentionBackward';
  checkDims(op, { B, T, H, Hkv, D });
  checkHeads(op, H, Hkv, D);
  const scale = scaleOf(op, D, args.scale);
  checkLen(op, { q, out, dout, dq }, B * T * H * D);
  checkLen(op, { k, v, dk, dv }, B * T * Hkv * D);
  checkLen(op, { lse, delta }, B * H * T);
  checkLen(op, { start }, B);
  const uniforms = params(B, T, T, H, Hkv, D, 0, scale);
  const queryRows = B * T * H;
  const keyRows = B * T * Hkv;
  const common = { 1: q, 2: k, 4: start, 8: dout, 10: lse };
  return [
    makeDispatch(gpu, {
      label: 'attention.bwd_delta',
      shader,
      entry: 'bwd_delta',
      uniforms,
      buffers: { 7: out, 8: dout, 9: delta },
      workgroups: grid1d(gpu, B * T * H, WG),
    }),
    makeDispatch(gpu, {
      label: 'attention.bwd_dq',
      ...rowKernel(gpu, 'bwd_dq', queryRows, D),
      uniforms,
      buffers: { ...common, 3: v, 11: delta, 12: dq },
    }),
    ...(attentionFusedKeyRows(gpu, D)
      ? [makeDispatch(gpu, {
          label: 'attention.bwd_dkv',
          ...rowKernel(gpu, 'bwd_dkv', keyRows, D),
          uniforms,
          buffers: { ...common, 3: v, 11: delta, 13: dk, 14: dv },
        })]
      : [
          makeDispatch(gpu, {
            label: 'attention.bwd_dk',
            ...rowKernel(gpu, 'bwd_dk', keyRows, D),
            uniforms,
            buffers: { ...common, 3: v, 11: delta, 13: dk },
          }),
          makeDispatch(gpu, {
            label: 'attention.bwd_dv',
            ...rowKernel(gpu, 'bwd_dv', keyRows, D),
            uniforms,
            buffers: { ...common, 14: dv },
          }),
        ]),
  ];
}
