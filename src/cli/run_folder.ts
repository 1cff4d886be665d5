// The run folder the runner writes (--out): refused when it holds something else, locked while a run writes
// it (DIR/.lock), and checked, every committed file against manifest.json, before any work starts. Also
// --base, which reads another run folder's base model.

import { rmdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseSafetensors } from '../hub/safetensors';
import { type RunConfig, validateRunConfig } from '../star/run_config';
import { folderFs, ioFailure, readOrUndefined, TMP } from '../star/stores/folder_fs';
import { FolderStore, RunFolderError } from '../star/stores/files';
import { UsageError } from './args';

export const LOCK = '.lock';

/** Files a run leaves in its folder before run.json is there: the lock and unfinished writes. */
const leftover = (name: string) => name === LOCK || name.endsWith('.pending') || TMP.test(name);

/**
 * 'new' when nothing is at `dir`; 'existing' for an empty folder or one holding a run. Anything else (a
 * file, or a folder of other things, say a mistyped --out ~/Documents) is refused.
 */
export async function checkOutFolder(dir: string): Promise<'new' | 'existing'> {
  let names: string[];
  try {
    names = (await folderFs().list(dir)).map((e) => e.name);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'new';
    if (code === 'ENOTDIR') throw new UsageError(`--out ${dir} is a file; give a folder for the run.`);
    throw ioFailure('read', dir, e);
  }
  if (names.includes('run.json') || names.every(leftover)) return 'existing';
  throw new UsageError(`--out ${dir} is not empty and holds no run (no run.json); give a new or empty folder, so the run's files do not mix with what is there.`);
}

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // there, but another user's
  }
}

function parseLock(bytes: Uint8Array | undefined): LockInfo | null {
  try {
    const info = JSON.parse(new TextDecoder().decode(bytes)) as LockInfo;
    return Number.isInteger(info.pid) && typeof info.host === 'string' ? info : null;
  } catch {
    return null;
  }
}

const decode = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Takes `dir`/.lock, created exclusively ('wx') and holding this process's pid and host. A lock left by a
 * process of this machine that is no longer running (killed, say) is taken over; a live one is a
 * RunFolderError naming its pid. Returns the release. A process that dies holding it (Ctrl-C, a kill, a
 * crash) leaves a stale lock, which the next run on this machine takes over.
 */
export async function lockRunFolder(dir: string, log: (line: string) => void): Promise<() => Promise<void>> {
  const fs = folderFs();
  const path = join(dir, LOCK);
  const text = JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString() } satisfies LockInfo) + '\n';
  for (let tookOver = false; ; ) {
    try {
      await fs.writeFile(path, text, 'wx');
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioFailure('create the lock file', path, e);
    }
    let seen = await readOrUndefined(path);
    if (seen === undefined) continue; // released meanwhile
    let held = parseLock(seen);
    if (held === null) {
      await sleep(200); // being written this instant, or left empty by a process killed while writing it
      seen = await readOrUndefined(path);
      held = parseLock(seen);
    }
    const stale = held === null || (held.host === hostname() && held.pid !== process.pid && !alive(held.pid));
    if (stale && !tookOver) {
      log(held ? `${dir}: taking over the lock of process ${held.pid}, which is no longer running` : `${dir}: taking over an unreadable lock`);
      // Removed only if unchanged: if another runner took it over meanwhile, our next 'wx' fails and names it.
      if (decode(await readOrUndefined(path)) === decode(seen)) await fs.rm(path).catch((e) => Promise.reject(ioFailure('remove the stale lock', path, e)));
      tookOver = true;
      continue;
    }
    const who = held ? `process ${held.pid} on ${held.host} (since ${held.started})` : 'another process';
    throw new RunFolderError(`${dir} is in use by ${who}; wait for that run to end or stop it. If it is not running, delete ${path}.`);
  }

  return async () => {
    if (decode(await readOrUndefined(path).catch(() => undefined)) === text) await fs.rm(path).catch(() => {});
  };
}

/** The configuration that makes two runs one: the same except for how long they go on. */
const sameRun = (a: unknown, b: unknown) => {
  const strip = (c: unknown) => JSON.stringify({ ...(c as object), star: { ...(c as { star?: object }).star, iterations: 0, patience: 0 } });
  return strip(a) === strip(b);
};

function phaseList(done: string[]): string {
  const byIteration = new Map<string, string[]>();
  for (const p of done) {
    const [it, phase] = p.split('/');
    byIteration.set(it, [...(byIteration.get(it) ?? []), phase]);
  }
  return [...byIteration].map(([it, phases]) => `${it} ${phases.join(' ')}`).join('; ');
}

/**
 * Opens --out for a run: creates it, takes the lock, checks every committed file and that the folder's
 * run.json (if any) is this run's, and says which phases are complete. The release unlocks, and removes the
 * folder again when it was created here and nothing was written.
 */
export async function openRunFolder(out: string, cfg: object, created: boolean, log: (line: string) => void): Promise<{ store: FolderStore; release: () => Promise<void> }> {
  try {
    await folderFs().mkdir(out);
  } catch (e) {
    throw ioFailure('create', out, e);
  }
  const removeIfNew = () => (created ? rmdir(out).catch(() => {}) : undefined); // only if still empty
  const unlock = await lockRunFolder(out, log).catch(async (e) => {
    await removeIfNew();
    throw e;
  });
  const release = async () => {
    await unlock();
    await removeIfNew();
  };
  try {
    const store = new FolderStore(out);
    const old = await store.getJSON<object>('run'); // before recover(), which would adopt a folder of someone else's run
    if (old !== undefined && !sameRun(old, cfg)) throw new UsageError(`${out} holds a run with another configuration; use a new --out folder.`);
    await store.recover();
    const done = await store.completedPhases();
    if (done.length > 0) log(`resuming ${out}: completed ${phaseList(done)}`);
    return { store, release };
  } catch (e) {
    await release();
    throw e;
  }
}

/** What shapes a run's base model: two runs that agree on these train the same base model. */
/** A --base folder's run.json, upgraded to today's fields (configs written before some existed) or refused. */
function validateRunConfigOf(run: RunConfig, dir: string): void {
  try {
    validateRunConfig(run);
  } catch (e) {
    throw new UsageError(`--base ${dir}/run.json: ${(e as Error).message}`);
  }
}

/** What decides a run's base model: a shipped one, or the seed phase's whole recipe. */
function baseRecipe(c: RunConfig): Record<string, unknown> {
  if (c.base !== undefined && c.base !== 'scratch') return { task: c.task, model: c.model, base: c.base };
  const { seed, seedSize, seedSteps, seedMinDigits, seedMaxDigits, seedTarget, seedHintTarget, seedCheckEvery, seedCheckSize, seedHinted, seedHintMaxDigits } = c.star;
  return {
    task: c.task, model: c.model, optim: c.optim, trainBatch: c.trainBatch, seed, seedSize, seedSteps, seedMinDigits, seedMaxDigits,
    seedTarget, seedHintTarget, seedCheckEvery, seedCheckSize, seedHinted, seedHintMaxDigits,
  };
}

/** The base model of another run folder (--base), checked to be whole and to be the one `cfg` would train. */
export async function readBaseFrom(dir: string, cfg: RunConfig): Promise<{ bytes: Uint8Array; base: RunConfig['base'] }> {
  await folderFs().list(dir).catch((e: NodeJS.ErrnoException) => {
    const what = e.code === 'ENOENT' ? 'no such folder' : e.code === 'ENOTDIR' ? 'a file, not a folder' : `unreadable (${e.code})`;
    throw new UsageError(`--base ${dir}: ${what}; give a run folder written by npm run star whose seed phase has finished.`);
  });
  const store = new FolderStore(dir);
  const run = await store.getJSON<RunConfig>('run');
  if (run === undefined) throw new UsageError(`--base ${dir} is not a run folder (no run.json); give a folder written by npm run star.`);
  if (typeof run !== 'object' || run === null || typeof run.star !== 'object' || run.star === null) {
    throw new UsageError(`--base ${dir}/run.json is not a run configuration; give a folder written by npm run star.`);
  }
  validateRunConfigOf(run, dir);
  const [theirs, ours] = [baseRecipe(run), baseRecipe({ ...cfg, base: run.base })];
  const differ = Object.keys(ours).filter((k) => JSON.stringify(ours[k]) !== JSON.stringify(theirs[k]));
  if (differ.length > 0) throw new UsageError(`--base ${dir}: that run trained its base model differently (${differ.join(', ')}); use the same preset and seed.`);
  const base = await store.getWeights('base');
  if (base === undefined) throw new UsageError(`--base ${dir}: no base model there yet (base.safetensors); let that run finish its seed phase first.`);
  try {
    parseSafetensors(base, join(dir, 'base.safetensors')); // a folder without manifest.json is checked this far
  } catch (e) {
    throw new UsageError(`--base: ${(e as Error).message}; that base model is damaged, so train it again in that folder.`);
  }
  return { bytes: base, base: run.base };
}
