// A RunStore in memory, for tests and throwaway runs. Values are cloned on the way in and out, as a real
// store serializes them, so neither side can change what the other holds.

import type { PhaseName, RunStore } from '../types';

export class MemoryStore implements RunStore {
  private readonly phases = new Map<string, unknown>();
  private readonly weights = new Map<string, Uint8Array>();
  private readonly docs = new Map<string, unknown>();

  async getPhase<T>(iteration: number, phase: PhaseName): Promise<T | undefined> {
    return structuredClone(this.phases.get(`${iteration}/${phase}`)) as T | undefined;
  }

  async putPhase<T>(iteration: number, phase: PhaseName, value: T): Promise<void> {
    this.phases.set(`${iteration}/${phase}`, structuredClone(value));
  }

  async getWeights(name: string): Promise<Uint8Array | undefined> {
    return this.weights.get(name)?.slice();
  }

  async putWeights(name: string, bytes: Uint8Array): Promise<void> {
    this.weights.set(name, bytes.slice());
  }

  async getJSON<T>(key: string): Promise<T | undefined> {
    return structuredClone(this.docs.get(key)) as T | undefined;
  }

  async putJSON<T>(key: string, value: T): Promise<void> {
    this.docs.set(key, structuredClone(value));
  }

  /** The completed phases as "iteration/phase", in the order they were first written (for tests). */
  phaseKeys(): string[] {
    return [...this.phases.keys()];
  }
}
