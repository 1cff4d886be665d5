// Node only: gives the peers (TF.js, jax-js) the WebGPU that browsers expose as navigator.gpu.
//
// Both libraries look for globalThis.navigator.gpu. Node 20 has no navigator at all (Node 21+ has one
// without gpu), so we set it from the `webgpu` package (Dawn): create([]) returns a GPU object like the
// browser's. Call this AFTER requestGpu(): when no hardware adapter exists, requestGpu falls back to
// SwiftShader by setting VK_ICD_FILENAMES, and Dawn reads that variable when an instance is created, so
// the peers then land on the very same adapter as our engine. The instance is kept for the process's
// life (finalizing a Dawn instance while another is in use crashes SwiftShader; see src/gpu/device.ts).

import { cpus } from 'node:os';
import { create, globals } from 'webgpu';
import { keepForever } from '../src/gpu/device';

export function installNavigatorGpu(): GPU {
  Object.assign(globalThis, globals); // GPUBufferUsage, GPUMapMode, ... (requestGpu did this already)
  const gpu = create([]);
  keepForever(gpu); // as requestGpu keeps its own (src/gpu/device.ts)
  const g = globalThis as { navigator?: object };
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  else g.navigator = { gpu, userAgent: `Node.js ${process.version}`, hardwareConcurrency: cpus().length };
  return gpu;
}

/**
 * Holds Node's event loop open until the program calls process.exit. Dawn's pending promises
 * (queue.onSubmittedWorkDone, mapAsync) do not: under vite-node its server does, but the bundled kit
 * (bench/portable) runs on plain node, which would exit mid-run.
 */
export function holdEventLoopUntilExit(): void {
  setInterval(() => {}, 1 << 30);
}
