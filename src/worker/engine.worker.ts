// The engine's dedicated module worker: the real GPU and the browser's IndexedDB behind the EngineApi,
// exposed with Comlink. Everything heavy (kernels, the STaR loop, storage, zips) runs here, so the page
// never freezes; the page ends a run at once by terminating this worker (client.ts). CommonsenseQA's
// pretrained model is uploaded here as loaded (src/hub/load.ts) and fine-tuned fully or through LoRA.

import * as Comlink from 'comlink';
import { requestGpu } from '../gpu/device';
import { createRunEngine } from '../star/run_engine';
import { createCsqaEngine } from '../star/tasks/csqa_run';
import { openDb } from '../storage/db';
import type { EngineApi } from './api';
import { createEngineApi, type GpuBackend } from './engine';

async function connectGpu(): Promise<GpuBackend> {
  const gpu = await requestGpu();
  const { limits } = gpu;
  return {
    info: {
      description: gpu.adapter.description || [gpu.adapter.vendor, gpu.adapter.architecture].filter(Boolean).join(' ') || 'WebGPU adapter',
      vendor: gpu.adapter.vendor,
      architecture: gpu.adapter.architecture,
      backend: gpu.adapter.backend,
      f16: gpu.f16,
      maxBufferSize: limits.maxBufferSize,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
    },
    limits: { maxBufferSize: limits.maxBufferSize, maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, kernels: gpu.kernels },
    lost: gpu.lost,
    createEngine: (cfg) => createRunEngine(gpu, cfg),
    createCsqaEngine: (cfg, model) => createCsqaEngine(gpu, cfg, model),
  };
}

const api = createEngineApi({ db: openDb(), connectGpu });

const exposed: EngineApi = {
  ...api,
  async exportRun(runId) {
    const zip = await api.exportRun(runId);
    return Comlink.transfer(zip, [zip]);
  },
};

Comlink.expose(exposed);
