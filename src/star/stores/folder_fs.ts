// The file operations of the folder store (./files.ts) and the CLI's run folder, as one replaceable object,
// so tests can fail or stop them at the N-th write; and I/O errors the user can act on.

import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';

export interface FolderFs {
  /** Writes a whole file and flushes it; flag 'wx' fails with EEXIST when the file is there. */
  writeFile(path: string, data: string | Uint8Array, flag?: 'w' | 'wx'): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Flushes a folder's entries, so a rename or a new file in it survives a power cut. */
  syncDir(dir: string): Promise<void>;
  /** Creates a folder and its parents; an existing one is fine. */
  mkdir(dir: string): Promise<void>;
  /** Removes a file; a missing one is fine. */
  rm(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  list(dir: string): Promise<{ name: string; isDir: boolean }[]>;
}

export const nodeFolderFs: FolderFs = {
  async writeFile(path, data, flag = 'w') {
    const fh = await open(path, flag);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  rename: (from, to) => rename(from, to),
  async syncDir(dir) {
    const fh = await open(dir, 'r').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'EISDIR' || (e.code === 'EPERM' && process.platform === 'win32')) return null; // Windows opens no folders
      throw e;
    });
    try {
      await fh?.sync();
    } finally {
      await fh?.close();
    }
  },
  mkdir: async (dir) => void (await mkdir(dir, { recursive: true })),
  rm: (path) => rm(path, { force: true }),
  readFile: (path) => readFile(path),
  list: async (dir) => (await readdir(dir, { withFileTypes: true })).map((e) => ({ name: e.name, isDir: e.isDirectory() })),
};

let fsNow = nodeFolderFs;

/** Routes every operation of the folder store and the run folder through `fs`; returns the undo. */
export function useFolderFs(fs: FolderFs): () => void {
  const before = fsNow;
  fsNow = fs;
  return () => void (fsNow = before);
}

export function folderFs(): FolderFs {
  return fsNow;
}

/** A run folder that cannot be used as it is (a damaged file, a full or read-only disk): it says what to do. */
export class RunFolderError extends Error {
  override name = 'RunFolderError';
}

const IO_FAILURES: Record<string, [string, string]> = {
  ENOSPC: ['no space left on the device', 'free some space, then run the same command again: it resumes after the last completed phase'],
  EDQUOT: ['the disk quota is used up', 'free some space, then run the same command again: it resumes after the last completed phase'],
  EROFS: ['the file system is read-only', 'copy the folder to a writable disk and give that copy as --out'],
  EACCES: ['permission denied', 'make the folder and its files yours and writable (or give another --out folder), then run the same command again'],
  EPERM: ['operation not permitted', 'make the folder and its files yours and writable (or give another --out folder), then run the same command again'],
};

/** An I/O error as a RunFolderError naming the path, what failed and what to do; anything else unchanged. */
export function ioFailure(doing: string, path: string, e: unknown, context?: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (e instanceof RunFolderError || !code || !(code in IO_FAILURES)) return e;
  const [what, todo] = IO_FAILURES[code];
  return new RunFolderError(`Cannot ${doing} ${path}${context ? ` (${context})` : ''}: ${what} (${code}); ${todo}.`);
}

let tmpCounter = 0;
/** Temp files: `<file>.<pid>-<n>.tmp`. */
export const TMP = /\.\d+-\d+\.tmp$/;
export const nextTmp = (path: string) => `${path}.${process.pid}-${++tmpCounter}.tmp`;

export async function readOrUndefined(path: string): Promise<Uint8Array | undefined> {
  try {
    return await fsNow.readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioFailure('read', path, e);
  }
}
