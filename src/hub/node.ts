// The Node side of model loading: a local folder as a source, and a folder as the download cache.
// Node modules are imported through variable specifiers (as src/gpu/device.ts does) so the browser
// bundle never pulls them in; this file is only imported dynamically, from Node.

import type { ByteCache, ModelSource } from './download';

type Fs = typeof import('node:fs/promises');
type Path = typeof import('node:path');
type Os = typeof import('node:os');

async function nodeModules(): Promise<{ fs: Fs; path: Path; os: Os }> {
  const [fs, path, os] = ['node:fs/promises', 'node:path', 'node:os'];
  return {
    fs: (await import(/* @vite-ignore */ fs)) as Fs,
    path: (await import(/* @vite-ignore */ path)) as Path,
    os: (await import(/* @vite-ignore */ os)) as Os,
  };
}

export async function isDirectory(p: string): Promise<boolean> {
  const { fs } = await nodeModules();
  return fs.stat(p).then((s) => s.isDirectory(), () => false);
}

/** $STAR_WEBGPU_CACHE, else $XDG_CACHE_HOME/star-webgpu, else ~/.cache/star-webgpu. */
export async function defaultCacheDir(): Promise<string> {
  const { path, os } = await nodeModules();
  if (process.env.STAR_WEBGPU_CACHE) return process.env.STAR_WEBGPU_CACHE;
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'star-webgpu');
}

/** A model folder on disk (config.json, model.safetensors or shards, tokenizer.json, ...). */
export async function folderSource(dir: string): Promise<ModelSource> {
  const { fs, path } = await nodeModules();
  if (!(await isDirectory(dir))) throw new Error(`${dir} is not a folder.`);
  return {
    label: dir,
    async read(file, onProgress) {
      const full = path.join(dir, file);
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await fs.readFile(full));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new Error(`Cannot read ${full}: ${(e as Error).message}`);
      }
      onProgress?.({ file, loaded: bytes.length, total: bytes.length, cached: false });
      return bytes;
    },
  };
}

/**
 * Cached files under `dir`, one file per key (keys are "repo/revision/file": their slashes become folders).
 * Writes go to a temporary name first, then a rename, so an interrupted download never leaves half a file.
 */
export async function folderCache(dir: string): Promise<ByteCache> {
  const { fs, path } = await nodeModules();
  const at = (key: string) => {
    const parts = key.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new Error(`cache: bad key "${key}"`);
    return path.join(dir, ...parts);
  };
  return {
    async get(key) {
      return fs.readFile(at(key)).then((b) => new Uint8Array(b), () => undefined);
    },
    async put(key, bytes) {
      const file = at(key);
      await fs.mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
      await fs.writeFile(tmp, bytes);
      await fs.rename(tmp, file);
    },
  };
}
