// The STaR RunStore (src/star/types.ts) in IndexedDB, for one run. The loop writes each phase's output
// (rationale sets included) with putPhase after the phase ends; that write is one transaction, so a
// phase is either absent or complete. Weights are split into chunks, all written (and the old ones
// removed) in one transaction with their manifest, so a failed save leaves the previous weights whole.
//
// A running run's store (`weightsWithPhase`) also keeps the weights a phase saves (the seed's base model,
// a fine-tune's latest) in memory until that phase's record is written, and writes them in the same
// transaction: a phase cut off between its weights and its record (a full disk, a pause, Stop) leaves
// neither, so the run goes on as if the phase had never started. Without it, stored base weights and no
// seed record would read as a base model shared from another run.

import { promisifyRequest } from 'idb-keyval';
import type { PhaseName, RunStore } from '../star/types';
import { type Db, keys, prefixRange, read, write } from './db';

/** Bytes per weights chunk: large models are stored as many modest records. */
export const CHUNK = 8 << 20;

interface WeightsManifest {
  size: number;
  chunks: number;
}

export class IdbRunStore implements RunStore {
  /** Weights saved by the phase in progress, written with its record (weightsWithPhase only). */
  private pending = new Map<string, Uint8Array>();

  constructor(
    readonly db: Db,
    readonly runId: string,
    /** Bytes per weights chunk (tests make it small). */
    readonly chunkBytes = CHUNK,
    /** Write weights with the next phase record instead of at once (the loop's store; see above). */
    readonly weightsWithPhase = false,
  ) {}

  getPhase<T>(iteration: number, phase: PhaseName): Promise<T | undefined> {
    return read<T>(this.db, keys.phase(this.runId, iteration, phase));
  }

  async putPhase<T>(iteration: number, phase: PhaseName, value: T): Promise<void> {
    const weights = [...this.pending];
    this.pending.clear(); // written now, or lost with the phase
    await write(this.db, `iteration ${iteration}'s ${phase} phase`, (s) => {
      for (const [name, bytes] of weights) putWeightsIn(s, this.runId, name, bytes, this.chunkBytes);
      s.put(value, keys.phase(this.runId, iteration, phase));
      s.put({ iteration, phase, at: Date.now() }, keys.mark(this.runId));
    });
  }

  getWeights(name: string): Promise<Uint8Array | undefined> {
    const pending = this.pending.get(name);
    return pending ? Promise.resolve(pending) : readWeights(this.db, this.runId, name);
  }

  async putWeights(name: string, bytes: Uint8Array): Promise<void> {
    if (this.weightsWithPhase) this.pending.set(name, bytes);
    else await write(this.db, `the ${name} weights`, (s) => putWeightsIn(s, this.runId, name, bytes, this.chunkBytes));
  }

  getJSON<T>(key: string): Promise<T | undefined> {
    return read<T>(this.db, keys.doc(this.runId, key));
  }

  putJSON<T>(key: string, value: T): Promise<void> {
    return write(this.db, `the run's ${key}`, (s) => s.put(value, keys.doc(this.runId, key)));
  }
}

/** Queues, inside a write transaction, the replacement of a run's weights `name` by `bytes`. */
export function putWeightsIn(s: IDBObjectStore, runId: string, name: string, bytes: Uint8Array, chunk = CHUNK): void {
  s.delete(prefixRange(keys.chunks(runId, name)));
  const chunks = Math.max(1, Math.ceil(bytes.byteLength / chunk));
  for (let i = 0; i < chunks; i++) s.put(bytes.slice(i * chunk, (i + 1) * chunk), keys.chunk(runId, name, i));
  s.put({ size: bytes.byteLength, chunks } satisfies WeightsManifest, keys.weights(runId, name));
}

/** A run's weights `name`, read in one transaction; undefined when there are none. */
export function readWeights(db: Db, runId: string, name: string): Promise<Uint8Array | undefined> {
  return db.use('readonly', async (s) => {
    const [manifest, parts] = await Promise.all([
      promisifyRequest<WeightsManifest | undefined>(s.get(keys.weights(runId, name))),
      promisifyRequest<Uint8Array[]>(s.getAll(prefixRange(keys.chunks(runId, name)))),
    ]);
    if (manifest === undefined) return undefined;
    const size = parts.reduce((a, p) => a + p.byteLength, 0);
    if (parts.length !== manifest.chunks || size !== manifest.size) {
      throw new Error(`The stored ${name} weights of run ${runId} are incomplete (${size} of ${manifest.size} bytes).`);
    }
    const out = new Uint8Array(size);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.byteLength;
    }
    return out;
  });
}
