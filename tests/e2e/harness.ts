// What the browser tests stand on: the app built by Vite into a temporary folder, served by a tiny static
// server on 127.0.0.1 under a sub-path (the build must work from any path) with the Content-Security-Policy
// header a deployment sends (docs/deploy.md), so the engine worker runs under it as it would there; and
// Debian's headless Chromium driven by playwright-core, with WebGPU on SwiftShader (its CPU Vulkan driver).

import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { build } from 'vite';
import { HEADER_CSP } from '../../vite.config';

export const CHROMIUM = '/usr/bin/chromium';

/** Builds the app (vite.config.ts, as `npm run build` does) into a fresh temporary folder. */
export async function buildApp(): Promise<string> {
  const outDir = await mkdtemp(join(tmpdir(), 'star-dist-'));
  await build({ logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  return outDir;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml',
  '.webmanifest': 'application/manifest+json', '.json': 'application/json',
};

/** Serves `dir` at http://127.0.0.1:<port><base> (no other addresses, no directory listing), with the Content-Security-Policy header a deployment sends. */
export async function serve(dir: string, base = '/some/path/'): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (!path.startsWith(base)) {
      res.writeHead(404).end('not found');
      return;
    }
    const rel = path.slice(base.length) || 'index.html';
    const file = normalize(join(dir, rel));
    if (!file.startsWith(dir + sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache', 'content-security-policy': HEADER_CSP }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}${base}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

import { WEBGPU_FLAGS } from '../../bench/browser_page';

export { WEBGPU_FLAGS };

const QUIET = ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

/** A fresh Chromium profile; `webgpu: false` launches without the WebGPU flags and hides navigator.gpu. */
export async function launch(opts: { webgpu: boolean }): Promise<BrowserContext> {
  const profile = await mkdtemp(join(tmpdir(), 'star-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: ['--headless'],
    args: [...QUIET, ...(opts.webgpu ? WEBGPU_FLAGS : ['--disable-webgpu'])],
    viewport: { width: 1440, height: 1000 },
    acceptDownloads: true,
  });
  // The profile goes with the browser: remove it once Chromium has exited.
  const close = context.close.bind(context);
  context.close = async (o) => {
    await close(o);
    await rm(profile, { recursive: true, force: true });
  };
  if (!opts.webgpu) await context.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true }));
  return context;
}

/** Polls `ok` every 200 ms until it holds; after `ms` fails naming `what` and the run's status on the page. */
export async function until(page: Page, what: string, ok: () => Promise<boolean>, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms / 1000} s waiting for ${what} (status ${await page.getByTestId('run-status').textContent()})`);
    await page.waitForTimeout(200);
  }
}
