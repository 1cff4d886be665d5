// Fault injection for the run folder: a file system that fails or "dies" at a chosen operation, folder
// snapshots to compare before and after, and a scripted STaR engine fast enough to rerun a whole run
// for every fault.
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseSafetensors, tensorToF32, writeSafetensors } from '../../src/hub/safetensors';
import { type FolderFs, nodeFolderFs, useFolderFs } from '../../src/star/stores/folder_fs';
import { makeProblem, type Problem, scratchpad } from '../../src/star/tasks/arithmetic';
import { arithmeticTokenizer as tok } from '../../src/star/tasks/char_tokenizer';
import type { Example, GenOptions, StarEngine } from '../../src/star/types';

/** What a write can run into: a process killed there, a disk error, or a bug (an error with no errno code). */
export type FaultKind = 'kill' | 'ENOSPC' | 'EROFS' | 'EACCES' | 'bug';
export type Op = 'writeFile' | 'rename' | 'syncDir' | 'mkdir' | 'rm';

export class Killed extends Error {
  override name = 'Killed';
}

export interface Injection {
  /** Every write operation so far: "writeFile <path>". */
  ops: string[];
  /** True once a 'kill' fault fired: from then on every operation, reads included, fails like a dead process. */
  dead: boolean;
  fired: boolean;
  restore(): void;
}

/**
 * Routes the folder store through a file system that faults at the first write operation for which `when`
 * holds (1-based count `n`), once. A kill cuts a file write in half first, as a real kill mid-write can.
 */
export function injectFault(
  kind: FaultKind, when: (n: number, op: Op, path: string) => boolean = () => false, onOp?: (op: Op, path: string) => void,
): Injection {
  const inj: Injection = { ops: [], dead: false, fired: false, restore: () => {} };
  const fault = (op: Op, path: string): Error | null => {
    if (inj.dead) return new Killed(`${op} ${path} after the kill`);
    inj.ops.push(`${op} ${path}`);
    if (inj.fired || !when(inj.ops.length, op, path)) return null;
    inj.fired = true;
    if (kind === 'kill') {
      inj.dead = true;
      return new Killed(`killed at ${op} ${path}`);
    }
    if (kind === 'bug') return new Error(`injected bug at ${op} ${path}`);
    return Object.assign(new Error(`${kind}: injected, ${op} '${path}'`), { code: kind });
  };
  const guard = <A extends unknown[], R>(op: Op, f: (path: string, ...rest: A) => Promise<R>) =>
    async (path: string, ...rest: A): Promise<R> => {
      const e = fault(op, path);
      if (e) throw e;
      const r = await f(path, ...rest);
      onOp?.(op, path);
      return r;
    };
  const read = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
    if (inj.dead) throw new Killed('read after the kill');
    return f(...a);
  };
  const fs: FolderFs = {
    writeFile: async (path, data, flag) => {
      const wasDead = inj.dead;
      const e = fault('writeFile', path);
      if (e instanceof Killed && !wasDead) {
        await writeFile(path, typeof data === 'string' ? data.slice(0, data.length >> 1) : data.subarray(0, data.length >> 1), { flag });
      }
      if (e) throw e;
      await writeFile(path, data, { flag }); // unflushed: a test cannot tell, and a flush per write is most of a sweep's time
      onOp?.('writeFile', path);
    },
    rename: guard('rename', (from: string, to: string) => nodeFolderFs.rename(from, to)),
    syncDir: guard('syncDir', async () => {}),
    mkdir: guard('mkdir', (d: string) => nodeFolderFs.mkdir(d)),
    rm: guard('rm', (p: string) => nodeFolderFs.rm(p)),
    readFile: read((p: string) => nodeFolderFs.readFile(p)),
    list: read((d: string) => nodeFolderFs.list(d)),
  };
  inj.restore = useFolderFs(fs);
  return inj;
}

/** Every file under `dir` (relative path -> SHA-256), sorted by path. */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  const out: [string, string][] = [];
  for (const e of entries) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    out.push([relative(dir, path), createHash('sha256').update(await readFile(path)).digest('hex')]);
  }
  return Object.fromEntries(out.sort(([a], [b]) => a.localeCompare(b)));
}

/** What manifest.json says the folder holds (relative path -> SHA-256); {} without one. */
export async function committed(dir: string): Promise<Record<string, string>> {
  const text = await readFile(join(dir, 'manifest.json'), 'utf8').catch(() => null);
  if (text === null) return {};
  const files = (JSON.parse(text) as { files: Record<string, { sha256: string }> }).files;
  return Object.fromEntries(Object.entries(files).map(([rel, e]) => [rel, e.sha256]).sort(([a], [b]) => a.localeCompare(b)));
}

/** A leftover of an unfinished write: a temp or .pending file. */
export const isLeftover = (rel: string) => rel.endsWith('.pending') || /\.\d+-\d+\.tmp$/.test(rel) || rel === '.lock';

/** An error message for a person: no stack frames. */
export const hasStack = (text: string) => /^\s+at .+[:(]/m.test(text);

const PROMPT = /^\n?Input:\n([\d ]+) \+ ([\d ]+)\nTarget:(?: ([\d ]+))?\n$/;

/**
 * A scripted arithmetic model: it solves problems of up to `level` digits (one more with the hint), and a
 * fine-tune raises `level` to the largest problem trained on. Its weights are real safetensors bytes.
 */
export class FakeEngine implements StarEngine {
  level = 0;
  /** How many characters the weights were fine-tuned on, so each iteration's weights differ. */
  seen = 0;

  private parse(prompt: string): { p: Problem; hinted: boolean } {
    const m = PROMPT.exec(prompt)!;
    const num = (s: string) => Number(s.replace(/ /g, ''));
    return { p: makeProblem(num(m[1]), num(m[2])), hinted: m[3] !== undefined };
  }

  async initRandom() {
    [this.level, this.seen] = [0, 0];
  }

  async loadWeights(bytes: Uint8Array) {
    [this.level, this.seen] = tensorToF32(parseSafetensors(bytes), 'state');
  }

  async saveWeights() {
    return writeSafetensors([{ name: 'state', data: new Float32Array([this.level, this.seen]), shape: [2] }]);
  }

  async generate(prompts: string[], opts: GenOptions) {
    return prompts.map((prompt, i) => {
      const { p, hinted } = this.parse(prompt);
      const lines = scratchpad(p).split('\n');
      if (!(p.digits <= this.level || (hinted && p.digits === this.level + 1))) lines[lines.length - 2] = [...String(p.a + p.b + 1)].join(' ');
      const text = lines.join('\n');
      opts.onProgress?.(i + 1, prompts.length);
      return { text, tokens: tok.encode(text).length + 1 };
    });
  }

  async finetune(examples: Example[], opts: { steps: number }) {
    for (const ex of examples) this.level = Math.max(this.level, this.parse(ex.prompt).p.digits);
    this.seen += examples.reduce((n, ex) => n + ex.prompt.length + ex.target.length, 0); // differs from iteration to iteration
    return { losses: Array.from({ length: opts.steps }, (_, i) => 1 / (i + 1)), tokens: examples.length };
  }
}
