// The page's side of the worker boundary: a typed Comlink handle on the engine worker, and Stop, which
// terminates the worker (ending a run within a moment, whatever the GPU is doing) and starts a new one.

import * as Comlink from 'comlink';
import type { EngineApi, EngineEvent } from './api';

export interface EngineClient {
  /** The current worker's API; replaced by stop(), so read it at each call. */
  readonly api: Comlink.Remote<EngineApi>;
  /** Ends the worker at once and starts a fresh one. Stored runs are untouched; a running one is now interrupted. */
  stop(): void;
  /** Wraps an event handler so the worker can call it. */
  listener(onEvent: (e: EngineEvent) => void): (e: EngineEvent) => void;
  /** Sends a buffer to the worker without copying it (the page's copy becomes empty). */
  transfer<T>(value: T, buffers: Transferable[]): T;
}

function spawn(): { worker: Worker; api: Comlink.Remote<EngineApi> } {
  const worker = new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module', name: 'star-engine' });
  return { worker, api: Comlink.wrap<EngineApi>(worker) };
}

export function createEngineClient(): EngineClient {
  let current = spawn();
  return {
    get api() {
      return current.api;
    },
    stop() {
      current.api[Comlink.releaseProxy]();
      current.worker.terminate();
      current = spawn();
    },
    listener: (onEvent) => Comlink.proxy(onEvent),
    transfer: (value, buffers) => Comlink.transfer(value, buffers),
  };
}
