// Host side of shaders/add.wgsl: out = a + b over n floats.
import code from '../../shaders/add.wgsl?raw';
import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, grid1d, makeDispatch } from '../gpu/kernel';
import { checkLen } from './shapes';

const shader = { name: 'add', code };

export interface AddArgs {
  a: View; // [n]
  b: View; // [n]
  out: View; // [n], must not alias a or b
  n: number;
}

export function add(gpu: Gpu, { a, b, out, n }: AddArgs): Dispatch[] {
  checkLen('add', { a, b, out }, n);
  return [makeDispatch(gpu, { shader, entry: 'main', uniforms: [n], buffers: { 1: a, 2: b, 3: out }, workgroups: grid1d(gpu, n, 256) })];
}
