// A RunStore in a folder, for the Node CLI (node:fs, so never import it from browser code):
//
//   DIR/<key>.json                      run documents (config, summary)
//   DIR/<name>.safetensors              weights (base, latest)
//   DIR/iteration-<n>/<phase>.json      each completed phase
//   DIR/iteration-<n>/rationales.jsonl  the kept rationales of filter + rationalize, one JSON per line
//
// Every file is written to a temporary name, flushed, then renamed over the real one, so a crash leaves
// either the old file or the new one, never half of one. A phase's .json is written last: it is the mark
// that the phase completed, and anything derived from it (rationales.jsonl) is already in place.

import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { FilterOutput, KeptExample, PhaseName, RationalizeOutput, RunStore } from '../types';

let tmpCounter = 0;

/** Writes `data` to `path` atomically (temp file, fsync, rename). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}-${++tmpCounter}.tmp`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

async function readOrUndefined(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Keys and weight names become file names, so they must be plain names (no separators, no "..", no ".x"). */
function checkName(kind: string, name: string): void {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name)) {
    throw new Error(`FolderStore: ${kind} ${JSON.stringify(name)} is not a plain file name (letters, digits, . _ -)`);
  }
}

function checkIteration(iteration: number): void {
  if (!Number.isInteger(iteration) || iteration < 0) throw new Error(`FolderStore: iteration must be an integer >= 0, got ${iteration}`);
}

export class FolderStore implements RunStore {
  constructor(readonly dir: string) {}

  // Methods are async throughout, so a bad name rejects the promise rather than throwing synchronously.
  private phasePath(iteration: number, phase: PhaseName | 'rationales'): string {
    checkIteration(iteration);
    return join(this.dir, `iteration-${iteration}`, phase === 'rationales' ? 'rationales.jsonl' : `${phase}.json`);
  }

  private async readJSON<T>(path: string): Promise<T | undefined> {
    const bytes = await readOrUndefined(path);
    if (bytes === undefined) return undefined;
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch (e) {
      throw new Error(`FolderStore: ${path} is not valid JSON (${(e as Error).message})`);
    }
  }

  async getPhase<T>(iteration: number, phase: PhaseName): Promise<T | undefined> {
    return this.readJSON<T>(this.phasePath(iteration, phase));
  }

  async putPhase<T>(iteration: number, phase: PhaseName, value: T): Promise<void> {
    const path = this.phasePath(iteration, phase);
    const json = JSON.stringify(value, null, 1);
    if (phase === 'filter' || phase === 'rationalize') await this.writeRationales(iteration, phase, value as FilterOutput | RationalizeOutput);
    await writeFileAtomic(path, json);
  }

  /** rationales.jsonl = filter's kept rationales, then rationalize's: the phase being written, the other from disk. */
  private async writeRationales(iteration: number, phase: 'filter' | 'rationalize', value: FilterOutput | RationalizeOutput): Promise<void> {
    const other = phase === 'filter' ? 'rationalize' : 'filter';
    const stored = await this.getPhase<FilterOutput | RationalizeOutput>(iteration, other);
    const parts = phase === 'filter' ? [value.kept, stored?.kept ?? []] : [stored?.kept ?? [], value.kept];
    const lines = parts.flat().map((k: KeptExample) =>
      JSON.stringify({ prompt: k.prompt, rationale: k.rationale, answer: k.answer, source: k.source, problem: k.problem }),
    );
    await writeFileAtomic(this.phasePath(iteration, 'rationales'), lines.map((l) => `${l}\n`).join(''));
  }

  async getWeights(name: string): Promise<Uint8Array | undefined> {
    checkName('weights name', name);
    const bytes = await readOrUndefined(join(this.dir, `${name}.safetensors`));
    return bytes === undefined ? undefined : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async putWeights(name: string, bytes: Uint8Array): Promise<void> {
    checkName('weights name', name);
    return writeFileAtomic(join(this.dir, `${name}.safetensors`), bytes);
  }

  async getJSON<T>(key: string): Promise<T | undefined> {
    checkName('key', key);
    return this.readJSON<T>(join(this.dir, `${key}.json`));
  }

  async putJSON<T>(key: string, value: T): Promise<void> {
    checkName('key', key);
    return writeFileAtomic(join(this.dir, `${key}.json`), JSON.stringify(value, null, 2));
  }
}
