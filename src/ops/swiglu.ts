// Host side of shaders/swiglu.wgsl: the Llama MLP gate out = silu(gate) * up over n = BT * F floats.
//
// forward  swiglu({ gate, up, out, n })                      out [n]
//          swigluPacked({ gu, out, rows, F })               out [rows, F] from gu [rows, 2F] (gate | up per row)
// backward swigluBackward({ gate, up, dout, dgate, dup, n })  dgate, dup [n], overwritten
import code from '../../shaders/swiglu.wgsl?raw';
import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, grid1d, makeDispatch } from '../gpu/kernel';
import { checkLen, checkNoAlias } from './shapes';

const shader = { name: 'swiglu', code };

export interface SwigluArgs {
  gate: View; // [n]
  up: View; // [n]
  out: View; // [n], must not overlap gate or up
  n: number;
}

export interface SwigluBackwardArgs {
  gate: View; // [n], the forward inputs
  up: View; // [n]
  dout: View; // [n]
  dgate: View; // [n], written
  dup: View; // [n], written
  n: number;
}


export function swiglu(gpu: Gpu, { gate, up, out, n }: SwigluArgs): Dispatch[] {
  checkLen('swiglu', { gate, up, out }, n);
  checkNoAlias('swiglu', 'out', out, { gate, up });
  return [
    makeDispatch(gpu, {
      label: 'swiglu.forward',
      shader,
      entry: 'forward',
      uniforms: [n, 0],
      buffers: { 1: gate, 2: up, 3: out },
      workgroups: grid1d(gpu, n, 256),
    }),
  ];
}

export interface SwigluPackedArgs {
  gu: View; // [rows, 2F]: each row's F gate values, then its F up values
  out: View; // [rows, F], must not overlap gu
  rows: number;
  F: number;
}

/** The forward with gate and up side by side in each row of one buffer (a single matmul over both weights wrote it). */
export function swigluPacked(gpu: Gpu, { gu, out, rows, F }: SwigluPackedArgs): Dispatch[] {
  checkLen('swigluPacked', { gu }, rows * 2 * F);
  checkLen('swigluPacked', { out }, rows * F);
  checkNoAlias('swigluPacked', 'out', out, { gu });
  return [
    makeDispatch(gpu, {
      label: 'swiglu.forward_packed',
      shader,
      entry: 'forward_packed',
      uniforms: [rows * F, F],
      buffers: { 1: gu, 3: out },
      workgroups: grid1d(gpu, rows * F, 256),
    }),
  ];
}

export function swigluBackward(gpu: Gpu, { gate, up, dout, dgate, dup, n }: SwigluBackwardArgs): Dispatch[] {
  checkLen('swigluBackward', { gate, up, dout, dgate, dup }, n);
  checkNoAlias('swigluBackward', 'dgate', dgate, { gate, up, dout, dup });
  checkNoAlias('swigluBackward', 'dup', dup, { gate, up, dout });
  return [
    makeDispatch(gpu, {
      label: 'swiglu.backward',
      shader,
      entry: 'backward',
      uniforms: [n, 0],
      buffers: { 1: gate, 2: up, 4: dout, 5: dgate, 6: dup },
      workgroups: grid1d(gpu, n, 256),
    }),
  ];
}
