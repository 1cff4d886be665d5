// Kernels as data: one pipeline cache, and Dispatch records built once and encoded many times.
//
// An op's host side (src/ops/*.ts) checks shapes, packs its uniforms and returns Dispatch records.
// A model builds all of them once per (config, batch shape); a step then only encodes them, so it
// allocates nothing and reads nothing back.

import { createBuffer, type View } from './buffers';
import { type Gpu, guard } from './device';
import { gpuCounters, submitCommands } from './counters';

export interface Shader {
  /** Unique name, used as the cache key (the file name under shaders/). */
  name: string;
  /** WGSL source. */
  code: string;
}

export interface Dispatch {
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
  /** The uniform buffer bound at binding 0, if any; rewrite it with setUniforms() between submits. */
  uniform?: GPUBuffer;
}

const caches = new WeakMap<GPUDevice, { modules: Map<string, GPUShaderModule>; pipelines: Map<string, GPUComputePipeline> }>();

function cacheOf(gpu: Gpu) {
  let c = caches.get(gpu.device);
  if (!c) {
    c = { modules: new Map(), pipelines: new Map() };
    caches.set(gpu.device, c);
  }
  return c;
}

/** The one pipeline cache: a (shader, entry point, override constants) triple compiles once per device. */
export function getPipeline(gpu: Gpu, shader: Shader, entryPoint: string, constants: Record<string, number> = {}): GPUComputePipeline {
  const c = cacheOf(gpu);
  const key = `${shader.name}:${entryPoint}:${JSON.stringify(constants)}`;
  let p = c.pipelines.get(key);
  if (!p) {
    let module = c.modules.get(shader.name);
    if (!module) {
      module = gpu.device.createShaderModule({ label: shader.name, code: shader.code });
      c.modules.set(shader.name, module);
    }
    p = gpu.device.createComputePipeline({
      label: key,
      layout: 'auto',
      compute: { module, entryPoint, constants },
    });
    c.pipelines.set(key, p);
  }
  return p;
}

/** Number of pipelines compiled so far on this device (for tests and benchmarks). */
export function pipelineCount(gpu: Gpu): number {
  return cacheOf(gpu).pipelines.size;
}

/** A uniform field: a plain number is a u32, {f32: x} a float, {i32: x} a signed int. */
export type UniformField = number | { f32: number } | { i32: number };

/** Packs fields as consecutive 4-byte words (declare the WGSL struct in the same order), padded to 16 bytes. */
export function packUniforms(fields: UniformField[]): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const dv = new DataView(buf);
  fields.forEach((f, i) => {
    if (typeof f === 'number') {
      if (!Number.isInteger(f) || f < 0 || f > 0xffffffff) throw new Error(`uniform field ${i} = ${f} is not a u32`);
      dv.setUint32(i * 4, f, true);
    } else if ('f32' in f) dv.setFloat32(i * 4, f.f32, true);
    else dv.setInt32(i * 4, f.i32, true);
  });
  return buf;
}

export interface DispatchSpec {
  label?: string;
  shader: Shader;
  entry: string;
  constants?: Record<string, number>;
  /** Bound at @binding(0) as a uniform buffer, when given. */
  uniforms?: UniformField[];
  /** Storage bindings by binding number. Only bindings the entry point uses may be listed. */
  buffers: Record<number, View>;
  workgroups: [number, number?, number?];
}

/** Builds a Dispatch: compiles (or reuses) the pipeline and creates its bind group and uniform buffer once. */
export function makeDispatch(gpu: Gpu, spec: DispatchSpec): Dispatch {
  const pipeline = getPipeline(gpu, spec.shader, spec.entry, spec.constants);
  const entries: GPUBindGroupEntry[] = [];
  let uniform: GPUBuffer | undefined;
  if (spec.uniforms) {
    const data = packUniforms(spec.uniforms);
    uniform = createBuffer(gpu, data.byteLength, `${spec.label ?? spec.entry}.uniforms`, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST).buffer;
    gpu.device.queue.writeBuffer(uniform, 0, data);
    entries.push({ binding: 0, resource: { buffer: uniform } });
  }
  for (const [binding, v] of Object.entries(spec.buffers)) {
    if (v.size % 4 !== 0) throw new Error(`binding ${binding} of ${spec.entry}: view size ${v.size} is not a multiple of 4`);
    entries.push({ binding: Number(binding), resource: { buffer: v.buffer, offset: v.offset, size: v.size } });
  }
  const label = spec.label ?? `${spec.shader.name}.${spec.entry}`;
  const bindGroup = gpu.device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
  const [x, y = 1, z = 1] = spec.workgroups;
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (x > max || y > max || z > max) throw new Error(`${label}: grid ${x}x${y}x${z} exceeds ${max} workgroups per dimension`);
  return { label, pipeline, bindGroup, workgroups: [x, y, z], uniform };
}

/** Rewrites a dispatch's uniforms (same field count as when it was made). Takes effect at the next submit. */
export function setUniforms(gpu: Gpu, d: Dispatch, fields: UniformField[]): void {
  if (!d.uniform) throw new Error(`${d.label} has no uniforms`);
  gpu.device.queue.writeBuffer(d.uniform, 0, packUniforms(fields));
}

/**
 * A 1-D problem of n items, `perGroup` items per workgroup, as a grid that respects the
 * per-dimension limit: [x, y]. Shaders recover the flat group index as
 * `wid.x + wid.y * nwg.x` (nwg = @builtin(num_workgroups)).
 */
export function grid1d(gpu: Gpu, n: number, perGroup: number): [number, number] {
  const groups = Math.max(1, Math.ceil(n / perGroup));
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [groups, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

/** Records dispatches into one compute pass. */
export function encode(pass: GPUComputePassEncoder, dispatches: Dispatch[]): void {
  gpuCounters.dispatches += dispatches.length;
  for (const d of dispatches) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
  }
}

/** Encodes dispatches in one command buffer and submits it. Does not wait. */
export function submit(gpu: Gpu, dispatches: Dispatch[]): void {
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  encode(pass, dispatches);
  pass.end();
  submitCommands(gpu, enc);
}

/** Submits and waits for the GPU to finish (tests, benchmarks). Throws on loss or uncaptured errors. */
export async function run(gpu: Gpu, dispatches: Dispatch[]): Promise<void> {
  submit(gpu, dispatches);
  await guard(gpu, gpu.device.queue.onSubmittedWorkDone());
}
