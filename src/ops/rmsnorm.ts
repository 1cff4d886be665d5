// Host side of shaders/rmsnorm.wgsl: Llama RMSNorm y = x * rstd * w over rows of C, and its backward.
//
// forward  rmsnorm({ x, w, y, rstd, rows: BT, C, eps })          y [BT,C], rstd [BT] (saved for the backward)
// fused    rmsnorm({ x, w, y, rstd, rows, C, eps, residual: { a, b } })  x = a + b is written, then normalized:
//          the residual add and the next norm in one dispatch (same bits as add() then rmsnorm())
// backward rmsnormBackward({ dy, x, w, rstd, dx, dw, rows, C })  dx [BT,C] (+)= ..., dw [C] = ...
// The backward is two dispatches: dx (one workgroup per row) and dw (one thread column per C, looping
// over rows in a fixed order), so both are deterministic. dw is always overwritten: the model keeps one
// weight per norm and accumulates nothing across calls; dx may accumulate into the residual stream.
// Without dw (a frozen norm, as under LoRA) only the dx dispatch is returned.
import code from '../../shaders/rmsnorm.wgsl?raw';
import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, grid1d, makeDispatch } from '../gpu/kernel';
import { perRow, threadsPerRow } from './profile';
import { checkDims, checkLen, checkNoAlias } from './shapes';

const shader = { name: 'rmsnorm', code };

/** Columns per backward_dw workgroup (DW_COLS in the shader). */
const DW_COLS = 64;

export interface RmsnormArgs {
  x: View; // [rows, C]; with `residual`, written (x = a + b) rather than read
  w: View; // [C]
  y: View; // [rows, C], must not overlap x or w
  rstd: View; // [rows], written
  rows: number;
  C: number;
  eps: number;
  /** Fuse the residual add in front: x = a + b (a, b [rows, C], neither overlapping x, y or rstd). */
  residual?: { a: View; b: View };
}

export interface RmsnormBackwardArgs {
  dy: View; // [rows, C]
  x: View; // [rows, C], the forward input
  w: View; // [C]
  rstd: View; // [rows], from the forward
  dx: View; // [rows, C], written (or added to when accumulate)
  dw?: View; // [C], always overwritten; omitted: the norm is frozen and gets no gradient
  rows: number;
  C: number;
  /** true: dx += result (the residual stream's gradient); false: dx = result. */
  accumulate?: boolean;
}


export function rmsnorm(gpu: Gpu, { x, w, y, rstd, rows, C, eps, residual }: RmsnormArgs): Dispatch[] {
  checkDims('rmsnorm', { rows, C });
  if (!Number.isFinite(eps) || eps < 0) throw new Error(`rmsnorm: eps must be a finite number >= 0, got ${eps}`);
  checkLen('rmsnorm', { 'x [rows,C]': x, 'y [rows,C]': y }, rows * C);
  checkLen('rmsnorm', { 'w [C]': w }, C);
  checkLen('rmsnorm', { 'rstd [rows]': rstd }, rows);
  checkNoAlias('rmsnorm', 'y', y, { x, w, rstd });
  checkNoAlias('rmsnorm', 'rstd', rstd, { x, w });
  if (residual) {
    const { a, b } = residual;
    checkLen('rmsnorm', { 'residual a [rows,C]': a, 'residual b [rows,C]': b }, rows * C);
    checkNoAlias('rmsnorm', 'x (the residual sum)', x, { a, b, w });
    checkNoAlias('rmsnorm', 'y', y, { a, b });
    checkNoAlias('rmsnorm', 'rstd', rstd, { a, b });
    return [
      makeDispatch(gpu, {
        label: 'rmsnorm.add_forward',
        shader,
        ...perRow(gpu, 'add_forward', rows),
        constants: { WG: threadsPerRow(C) },
        uniforms: [rows, C, { f32: eps }],
        buffers: { 2: w, 3: y, 4: rstd, 9: a, 10: b, 11: x },
      }),
    ];
  }
  return [
    makeDispatch(gpu, {
      label: 'rmsnorm.forward',
      shader,
      ...perRow(gpu, 'forward', rows),
      constants: { WG: threadsPerRow(C) },
      uniforms: [rows, C, { f32: eps }],
      buffers: { 1: x, 2: w, 3: y, 4: rstd },
    }),
  ];
}

export function rmsnormBackward(gpu: Gpu, args: RmsnormBackwardArgs): Dispatch[] {
  const { dy, x, w, rstd, dx, dw, rows, C } = args;
  const accumulate = args.accumulate ?? false;
  checkDims('rmsnormBackward', { rows, C });
  checkLen('rmsnormBackward', { 'dy [rows,C]': dy, 'x [rows,C]': x, 'dx [rows,C]': dx }, rows * C);
  checkLen('rmsnormBackward', dw ? { 'w [C]': w, 'dw [C]': dw } : { 'w [C]': w }, C);
  checkLen('rmsnormBackward', { 'rstd [rows]': rstd }, rows);
  checkNoAlias('rmsnormBackward', 'dx', dx, { dy, x, w, rstd });
  if (dw) checkNoAlias('rmsnormBackward', 'dw', dw, { dy, x, rstd });
  // eps is not needed: rstd already holds it.
  const uniforms = [rows, C, { f32: 0 }];
  const dxPass = makeDispatch(gpu, {
    label: 'rmsnorm.backward_dx',
    shader,
    ...perRow(gpu, 'backward_dx', rows),
    constants: { ACCUMULATE: accumulate ? 1 : 0, WG: threadsPerRow(C) },
    uniforms,
    buffers: { 1: x, 2: w, 5: dy, 6: rstd, 7: dx },
  });
  if (!dw) return [dxPass];
  return [
    dxPass,
    makeDispatch(gpu, {
      label: 'rmsnorm.backward_dw',
      shader,
      entry: 'backward_dw',
      uniforms,
      buffers: { 1: x, 5: dy, 6: rstd, 8: dw },
      workgroups: grid1d(gpu, C, DW_COLS),
    }),
  ];
}
