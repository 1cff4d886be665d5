// Host side of shaders/adamw.wgsl: the global gradient norm (two deterministic stages) and one AdamW
// update over the flat parameter, gradient and moment buffers.
//
// A training step encodes [...gradNormSq(...), ...adamw(...)] once, then per step only calls
// setAdamwHyper (the learning rate and the step count change) before submitting again.
import code from '../../shaders/adamw.wgsl?raw';
import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, grid1d, makeDispatch, setUniforms, type UniformField } from '../gpu/kernel';
import { perRow } from './profile';
import { checkLen } from './shapes';

const shader = { name: 'adamw', code };

/** Gradient floats summed by one workgroup of the first norm stage (256 threads x 16; one thread on CPU drivers). */
const CHUNK = 4096;

/** How many floats the `partials` scratch view of gradNormSq must hold for n gradient floats. */
export function gradNormPartials(n: number): number {
  return Math.ceil(n / CHUNK);
}

export interface GradNormArgs {
  grads: View; // [n]
  partials: View; // [gradNormPartials(n)] scratch
  out: View; // [1] out: sum of g^2
  n: number;
}

/** out[0] = sum over the n gradient floats of g^2: per-chunk partial sums, then one workgroup adds them. */
export function gradNormSq(gpu: Gpu, { grads, partials, out, n }: GradNormArgs): Dispatch[] {
  checkLen('gradNormSq', { grads }, n);
  const groups = gradNormPartials(n);
  checkLen('gradNormSq', { partials }, groups);
  checkLen('gradNormSq', { out }, 1);
  const uniforms = [n, groups];
  return [
    makeDispatch(gpu, {
      shader,
      ...perRow(gpu, 'norm_partials', groups), // CPU drivers: a thread per chunk
      constants: { CHUNK },
      uniforms,
      buffers: { 1: grads, 2: partials },
    }),
    makeDispatch(gpu, { shader, entry: 'norm_total', uniforms, buffers: { 2: partials, 3: out }, workgroups: [1] }),
  ];
}

export interface AdamwHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based count of updates, for the bias corrections. */
  step: number;
  /** Clip the gradient to this global norm; <= 0: no clipping. */
  maxGradNorm: number;
}

export interface AdamwArgs {
  params: View; // [n] updated in place
  grads: View; // [n]
  m: View; // [n] first moment, updated in place (zero before step 1)
  v: View; // [n] second moment, updated in place (zero before step 1)
  normSq: View; // [1] from gradNormSq (bound but unread when maxGradNorm <= 0)
  n: number;
  /** Elements [0, decayEnd) get weight decay (matrices); [decayEnd, n) none (norm weights, biases). */
  decayEnd: number;
  hyper: AdamwHyper;
}

/** The shape half of each update dispatch's uniforms, which setAdamwHyper keeps as it was. */
const shapes = new WeakMap<Dispatch, { n: number; decayEnd: number }>();

function checkHyper(h: AdamwHyper): void {
  const bad = (what: string) => {
    throw new Error(`adamw: ${what} (got ${JSON.stringify(h)})`);
  };
  if (!Number.isInteger(h.step) || h.step < 1) bad('step must be an integer >= 1');
  if (!(h.beta1 >= 0 && h.beta1 < 1) || !(h.beta2 >= 0 && h.beta2 < 1)) bad('beta1 and beta2 must lie in [0, 1)');
  if (!(h.eps > 0) || !(h.lr >= 0) || !(h.weightDecay >= 0)) bad('eps must be > 0, lr and weightDecay >= 0');
  if (![h.lr, h.eps, h.weightDecay, h.maxGradNorm].every(Number.isFinite)) bad('hyper-parameters must be finite');
}

/** The uniforms of the update entry point, in the order of the WGSL struct Hyper. */
function hyperFields(h: AdamwHyper, n: number, decayEnd: number): UniformField[] {
  checkHyper(h);
  // Bias corrections in float64: 1 - 0.999^t loses most of its digits if formed in f32 for small t.
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  return [
    { f32: h.lr },
    { f32: h.beta1 },
    { f32: h.beta2 },
    { f32: h.eps },
    { f32: h.weightDecay },
    { f32: bc1 },
    { f32: bc2 },
    { f32: h.maxGradNorm },
    n,
    decayEnd,
  ];
}

/** One AdamW update of params, m and v (one thread per element), clipping by the norm in normSq. */
export function adamw(gpu: Gpu, { params, grads, m, v, normSq, n, decayEnd, hyper }: AdamwArgs): Dispatch[] {
  checkLen('adamw', { params, grads, m, v }, n);
  checkLen('adamw', { normSq }, 1);
  if (!Number.isInteger(decayEnd) || decayEnd < 0 || decayEnd > n) {
    throw new Error(`adamw: decayEnd must be an integer in [0, n = ${n}], got ${decayEnd}`);
  }
  const d = makeDispatch(gpu, {
    label: 'adamw.update',
    shader,
    entry: 'update',
    uniforms: hyperFields(hyper, n, decayEnd),
    buffers: { 4: params, 5: grads, 6: m, 7: v, 8: normSq },
    workgroups: grid1d(gpu, n, 256),
  });
  shapes.set(d, { n, decayEnd });
  return [d];
}

/**
 * Rewrites the hyper-parameters (lr and step change every step) of the update dispatches among
 * `dispatches`, allocating no GPU memory. Takes effect at the next submit.
 */
export function setAdamwHyper(gpu: Gpu, dispatches: Dispatch[], hyper: AdamwHyper): void {
  let found = 0;
  for (const d of dispatches) {
    const shape = shapes.get(d);
    if (!shape) continue;
    setUniforms(gpu, d, hyperFields(hyper, shape.n, shape.decayEnd));
    found++;
  }
  if (found === 0) throw new Error('setAdamwHyper: none of these dispatches was made by adamw()');
}
