// bench.html in headless Chromium: Vite's dev server serves the page, playwright-core drives Debian's
// Chromium with WebGPU on SwiftShader, and the page's JSON document comes back. bench/browser_run.ts is the
// command line over it; tests/e2e/bench.test.ts runs a small suite through it.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { createServer } from 'vite';
import type { BenchState } from './browser';
import type { BenchDocument } from './report';

/** Flags that give navigator.gpu a SwiftShader adapter in headless Chromium on a machine without a GPU. */
export const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader'];

export interface PageOptions {
  quick?: boolean;
  /** Comma-separated groups (all when absent). */
  only?: string;
  /** Comma-separated peers (the page's default when absent: tfjs, jax-js). */
  peers?: string;
  /** Browser executable (default /usr/bin/chromium). */
  chromium?: string;
  /** Each line the page logs, as it logs it. */
  onLog?: (line: string) => void;
}

/** Serves bench.html from Vite's dev server, runs the suite in headless Chromium and returns its JSON document. */
export async function benchInBrowser(o: PageOptions = {}): Promise<BenchDocument> {
  // The peers are imported dynamically; listing them up front spares the page the reload Vite does when
  // it discovers new dependencies mid-run (which would restart the suite).
  const server = await createServer({
    logLevel: 'warn',
    server: { port: 0, host: '127.0.0.1' },
    optimizeDeps: { include: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-core/dist/register_all_gradients', '@tensorflow/tfjs-backend-webgpu', '@jax-js/jax'] },
  });
  await server.listen();
  const base = server.resolvedUrls!.local[0];
  const profile = await mkdtemp(join(tmpdir(), 'bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: o.chromium ?? '/usr/bin/chromium',
    headless: true,
    ignoreDefaultArgs: ['--headless'],
    args: ['--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', ...WEBGPU_FLAGS],
  });
  try {
    const page = await context.newPage();
    page.on('console', (m) => o.onLog?.(`[page] ${m.text()}`));
    const q = new URLSearchParams({ suite: o.quick ? 'quick' : 'full', autorun: '1' });
    if (o.only) q.set('only', o.only);
    if (o.peers) q.set('peers', o.peers);
    await page.goto(`${base}bench.html?${q}`);
    let shown = 0;
    for (;;) {
      const s = await page.evaluate(() => (window as unknown as { __bench?: BenchState }).__bench);
      for (const line of s?.log.slice(shown) ?? []) o.onLog?.(line);
      shown = s?.log.length ?? 0;
      if (s?.state === 'error') throw new Error(`the page failed: ${s.error}`);
      if (s?.state === 'done' && s.doc) return s.doc;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await context.close();
    await server.close();
    await rm(profile, { recursive: true, force: true });
  }
}

