// Files from the Hugging Face Hub, with byte progress and a cache, and the other places a model can come
// from. A source answers one question, "the bytes of file X, or undefined if there is no X", so the loader
// (./load.ts) is the same for a repo id, a folder on disk (Node, ./node.ts) and files the user picked.
//
// Hub URLs: https://huggingface.co/<repo>/resolve/<revision>/<file> for models and
// https://huggingface.co/datasets/<repo>/resolve/<revision>/<file> for datasets. The Hub redirects large
// files to its CDN; fetch follows. A 404 means "no such file" (a sharded model has no model.safetensors).

export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

/** Bytes by key. The browser keeps them in the Cache API, Node in a folder (./node.ts). */
export interface ByteCache {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, bytes: Uint8Array): Promise<void>;
}

/** Byte progress of one file; `total` is 0 when the server sent no Content-Length. */
export interface FileProgress {
  file: string;
  loaded: number;
  total: number;
  /** True when served from the cache (then loaded === total at once). */
  cached: boolean;
}

export interface ModelSource {
  /** For messages: a repo id, a folder, or "3 local files". */
  label: string;
  /** The bytes of `file`, or undefined when the source has no such file; any other failure throws. */
  read(file: string, onProgress?: (p: FileProgress) => void): Promise<Uint8Array | undefined>;
}

export const HUB_ENDPOINT = 'https://huggingface.co';

/** Suffix of the cache key that records "the Hub answered 404 for this file". */
const ABSENT = '.absent';

/** "owner/name": letters, digits, "-", "_", "." (the Hub's rule), no "..". */
export function isRepoId(s: string): boolean {
  return /^[\w.-]+\/[\w.-]+$/.test(s) && !s.split('/').some((p) => p === '.' || p === '..' || p.startsWith('.'));
}

/** Reads a response body in chunks, reporting bytes as they arrive (Content-Length gives the total). */
export async function readBody(res: Response, onBytes?: (loaded: number, total: number) => void): Promise<Uint8Array> {
  const total = Number(res.headers.get('content-length') ?? 0) || 0;
  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    onBytes?.(bytes.length, total || bytes.length);
    return bytes;
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onBytes?.(loaded, total);
  }
  if (total && loaded !== total) throw new Error(`received ${loaded} bytes, but Content-Length said ${total}: the download was cut short`);
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export interface HubFetchOptions {
  fetch?: FetchLike;
  cache?: ByteCache | null;
  /** Branch, tag or commit (default "main"). */
  revision?: string;
  endpoint?: string;
  signal?: AbortSignal;
}

/**
 * One file of a Hub repo: from the cache if there, else downloaded (and then cached). `repo` is
 * "owner/name" for a model or "datasets/owner/name" for a dataset. undefined on 404.
 */
export async function hubFile(
  repo: string, file: string, opts: HubFetchOptions = {}, onProgress?: (p: FileProgress) => void,
): Promise<Uint8Array | undefined> {
  const revision = opts.revision ?? 'main';
  const key = `${repo}/${revision}/${file}`;
  const hit = await opts.cache?.get(key);
  if (hit) {
    onProgress?.({ file, loaded: hit.length, total: hit.length, cached: true });
    return hit;
  }
  // A 404 is remembered too: a sharded repo has no model.safetensors, and offline we must still know that.
  if (opts.cache && (await opts.cache.get(`${key}${ABSENT}`))) return undefined;
  const url = `${opts.endpoint ?? HUB_ENDPOINT}/${repo}/resolve/${encodeURIComponent(revision)}/${file}`;
  const doFetch = opts.fetch ?? globalThis.fetch;
  let res: Response;
  try {
    res = await doFetch(url, { signal: opts.signal });
  } catch (e) {
    throw new Error(`Could not download ${url}: ${(e as Error).message}. Offline? Files load offline only once they are in the cache.`);
  }
  if (res.status === 404) {
    await opts.cache?.put(`${key}${ABSENT}`, new Uint8Array([1]));
    return undefined;
  }
  if (res.status === 401 || res.status === 403) {
    throw new Error(`${url}: HTTP ${res.status}. The repo is private or gated (accept its licence on the Hub), or the repo id is misspelt.`);
  }
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
  let bytes: Uint8Array;
  try {
    bytes = await readBody(res, (loaded, total) => onProgress?.({ file, loaded, total, cached: false }));
  } catch (e) {
    throw new Error(`${url}: ${(e as Error).message}`);
  }
  await opts.cache?.put(key, bytes);
  return bytes;
}

/** A model repo on the Hub. */
export function repoSource(repo: string, opts: HubFetchOptions = {}): ModelSource {
  if (!isRepoId(repo)) throw new Error(`"${repo}" is not a Hub repo id (owner/name).`);
  return { label: repo, read: (file, onProgress) => hubFile(repo, file, opts, onProgress) };
}

/** Files the user picked (the browser's "Load from local files"): matched by base name. */
export function filesSource(files: ArrayLike<File>): ModelSource {
  const byName = new Map<string, File>();
  for (const f of Array.from(files)) byName.set(f.name.split(/[/\\]/).pop()!, f);
  return {
    label: `${byName.size} local file${byName.size === 1 ? '' : 's'}`,
    async read(file, onProgress) {
      const f = byName.get(file);
      if (!f) return undefined;
      const bytes = new Uint8Array(await f.arrayBuffer());
      onProgress?.({ file, loaded: bytes.length, total: bytes.length, cached: false });
      return bytes;
    },
  };
}

/** The browser's Cache API (persists across reloads; works offline once filled). */
export function browserCache(name = 'star-webgpu-hub'): ByteCache {
  const open = () => caches.open(name);
  const url = (key: string) => `https://star-webgpu.cache/${key.split('/').map(encodeURIComponent).join('/')}`;
  return {
    async get(key) {
      const res = await (await open()).match(url(key));
      return res ? new Uint8Array(await res.arrayBuffer()) : undefined;
    },
    async put(key, bytes) {
      const body = new Blob([bytes as BlobPart]);
      await (await open()).put(url(key), new Response(body, { headers: { 'content-length': String(bytes.length) } }));
    },
  };
}

/** In memory (tests, or a session that should not persist anything). */
export function memoryCache(): ByteCache & { keys(): string[] } {
  const m = new Map<string, Uint8Array>();
  return {
    get: async (k) => m.get(k),
    put: async (k, b) => void m.set(k, b),
    keys: () => [...m.keys()],
  };
}
