// The network boundary for tests: a fetch that serves tests/fixtures/hub/<name>/<file> as the Hub would
// serve https://huggingface.co/fixtures/<name>/resolve/main/<file>: 404 for a missing file, Content-Length,
// and the body streamed in small chunks (so byte progress has several steps).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FetchLike } from '../../src/hub/download';

export const FIXTURES = join(__dirname, '..', 'fixtures', 'hub');
export const MODELS = ['tiny-llama-f32', 'tiny-llama-bf16', 'tiny-qwen2-sharded'] as const;

export interface Reference {
  texts: string[];
  tokens: number[][];
  models: Record<string, { vocab: number; logits: number[][]; top: { id: number; logit: number }[] }>;
}

export function reference(): Reference {
  return JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8'));
}

/** Streams `bytes` in chunks of `chunk` bytes. */
export function streamed(bytes: Uint8Array, chunk = 16_384, headers: Record<string, string> = { 'content-length': String(bytes.length) }): Response {
  let at = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
  return new Response(body, { status: 200, headers });
}

/** Serves files by URL path from `files` (path after the host -> bytes); records every URL asked for. */
export function stubFetch(files: (path: string) => Uint8Array | undefined): FetchLike & { urls: string[] } {
  const urls: string[] = [];
  const f = async (url: string) => {
    urls.push(url);
    const path = new URL(url).pathname.slice(1);
    const bytes = files(decodeURIComponent(path));
    return bytes ? streamed(bytes) : new Response('Entry not found', { status: 404 });
  };
  return Object.assign(f, { urls });
}

/** The fixture models as Hub repos "fixtures/<name>". */
export function fixtureFetch(): FetchLike & { urls: string[] } {
  return stubFetch((path) => {
    const m = /^fixtures\/([\w.-]+)\/resolve\/main\/(.+)$/.exec(path);
    if (!m) return undefined;
    const file = join(FIXTURES, m[1], m[2]);
    return existsSync(file) ? new Uint8Array(readFileSync(file)) : undefined;
  });
}
