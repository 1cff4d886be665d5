// The page under hostile input and faults, in headless Chromium (WebGPU on SwiftShader), served by
// `vite preview` so it gets the response headers a deployment sends. The Content-Security-Policy comes as
// a header on the page and on the engine worker's script (a worker takes its policy from there, not from
// the page's meta tag), from the dev and preview servers alike, and every deployment file holds the one
// policy of vite.config.ts. A run imported with script in its name and rationales runs nothing, and
// neither the page nor the worker will evaluate that text. A full disk during a run pauses it with what to
// do, and once space is freed Resume goes on.

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page, Worker } from 'playwright-core';
import { createServer, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zipRun } from '../../src/storage/archive';
import { CSP, DEV_CSP, HEADER_CSP, HEADERS_FILE } from '../../vite.config';
import { fakeArchive } from '../storage/fixtures';
import { buildApp, launch, until } from './harness';

const MINUTE = 60_000;
let dist: string;
let server: PreviewServer;
let url: string;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

/** The engine's Web Worker, where runs run and imports are read. */
async function engineWorker(): Promise<Worker> {
  await expect.poll(() => page.workers().some((w) => /engine\.worker/.test(w.url())), { timeout: 30_000 }).toBe(true);
  return page.workers().find((w) => /engine\.worker/.test(w.url()))!;
}

const workerScript = async () => (await readdir(join(dist, 'assets'))).find((f) => /^engine\.worker-.*\.js$/.test(f))!;
const policyOf = async (u: string) => (await fetch(u)).headers.get('content-security-policy');

beforeAll(async () => {
  dist = await buildApp();
  server = await preview({ logLevel: 'warn', build: { outDir: dist }, preview: { host: '127.0.0.1', port: 0 } });
  url = `http://127.0.0.1:${(server.httpServer.address() as AddressInfo).port}/`;
  context = await launch({ webgpu: true });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
}, 2 * MINUTE);

afterAll(async () => {
  await context?.close();
  await server?.close();
  if (dist) await rm(dist, { recursive: true, force: true });
});

describe('the Content-Security-Policy header', () => {
  it('is the one policy of vite.config.ts in every deployment file: _headers, vercel.json, the nginx snippet, the meta tag', async () => {
    expect(HEADER_CSP).toBe(`${CSP}; frame-ancestors 'none'`);
    expect(await readFile(join(dist, '_headers'), 'utf8')).toBe(HEADERS_FILE);
    expect(HEADERS_FILE).toContain(`/*\n  Content-Security-Policy: ${HEADER_CSP}\n`);
    expect(await readFile(join(dist, 'sw.js'), 'utf8')).not.toContain('_headers'); // a host does not serve it: never precached
    expect(await readFile(join(dist, 'index.html'), 'utf8')).toContain(`<meta http-equiv="Content-Security-Policy" content="${CSP}" />`);
    const vercel = JSON.parse(await readFile('vercel.json', 'utf8'));
    expect(vercel).toMatchObject({ outputDirectory: 'dist', headers: [{ source: '/(.*)', headers: [{ key: 'Content-Security-Policy', value: HEADER_CSP }] }] });
    const deploy = await readFile('docs/deploy.md', 'utf8');
    expect(deploy).toContain(`add_header Content-Security-Policy "${HEADER_CSP}" always;`);
    expect(deploy).toContain(`Content-Security-Policy: ${HEADER_CSP}\n`);
  });

  it('comes from the preview server on the page, the engine worker and the service worker', async () => {
    for (const path of ['', 'index.html', `assets/${await workerScript()}`, 'sw.js']) expect(await policyOf(url + path), path).toBe(HEADER_CSP);
  });

  it('comes from the dev server on the page and the engine worker (inline styles allowed there, for hot reload)', async () => {
    expect(DEV_CSP).toBe(HEADER_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"));
    const dev = await createServer({ logLevel: 'warn', server: { host: '127.0.0.1', port: 0, watch: null }, optimizeDeps: { noDiscovery: true } });
    await dev.listen();
    try {
      const devUrl = `http://127.0.0.1:${(dev.httpServer!.address() as AddressInfo).port}/`;
      for (const path of ['', 'src/worker/engine.worker.ts?worker_file&type=module']) expect(await policyOf(devUrl + path), path).toBe(DEV_CSP);
    } finally {
      await dev.close();
    }
  });
});

// Script in every form imported text could carry it: an inline script, an event handler, a javascript: URL.
const SCRIPT = 'self.__pwned = (self.__pwned || 0) + 1';
const PAYLOAD = `<script>${SCRIPT}</script><img src=x onerror="${SCRIPT}"><a href="javascript:${SCRIPT}">open</a>`;

/**
 * Tries to run SCRIPT the three ways JavaScript turns text into code, and collects the policies of the
 * violations reported. Source text, not a function, so the test runner's transforms leave its import()
 * alone; it waits a task first, because code the debugger protocol evaluates may call eval during that
 * call whatever the policy says.
 */
const ATTEMPT = `(async (code) => {
  await new Promise((r) => setTimeout(r, 0));
  const seen = [];
  self.addEventListener('securitypolicyviolation', (e) => seen.push(e.originalPolicy));
  const out = {};
  try { (0, eval)(code); out.eval = 'ran'; } catch (e) { out.eval = String(e); }
  try { new Function(code)(); out.Function = 'ran'; } catch (e) { out.Function = String(e); }
  try { await import('data:text/javascript,' + encodeURIComponent(code)); out.import = 'ran'; } catch (e) { out.import = String(e); }
  out.pwned = String(self.__pwned);
  await new Promise((r) => setTimeout(r, 100));
  out.policies = [...new Set(seen)].sort();
  return out;
})(${JSON.stringify(SCRIPT)})`;

describe('the page in headless Chromium, served with the header', () => {
  it('serves the page with the policy header', async () => {
    const response = await page.goto(url);
    expect(response?.headers()['content-security-policy']).toBe(HEADER_CSP);
  }, MINUTE);

  it('runs nothing from a run imported with script in its name and rationales; neither the page nor the worker will evaluate it', async () => {
    const name = `javascript:${SCRIPT} <img src=x onerror="${SCRIPT}">`;
    const { meta, archive } = await fakeArchive(name, undefined, { decorate: () => PAYLOAD });
    const dir = await mkdtemp(join(tmpdir(), 'star-hostile-'));
    try {
      const file = join(dir, 'hostile.zip');
      await writeFile(file, zipRun(meta, archive));
      await page.getByTestId('import-file').setInputFiles(file);
      await expect.poll(() => page.getByTestId('import-status').textContent(), { timeout: 30_000 }).toMatch(/^Imported/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await expect.poll(() => page.locator('.run-title').textContent()).toBe(name);
    const browser = page.getByTestId('rationale-browser');
    await expect.poll(() => browser.locator('.browser-item').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await expect.poll(() => browser.textContent()).toContain(PAYLOAD); // shown as text
    await page.getByTestId('run-item').first().locator('.run-open').click();
    await page.waitForTimeout(500); // an onerror would have fired by now
    expect(await page.evaluate(() => document.querySelectorAll('script:not([src]), img, a[href^="javascript:" i], [onerror]').length)).toBe(0);

    // Were the text ever handed to eval, Function or a data: import, the policy refuses it, in both places.
    // The policies that refused it say where each came from: the page has the meta tag's and the header's
    // (with frame-ancestors, which only a header carries); the worker has the header's alone, from the
    // response that delivered its script.
    const refused = (policies: string[]) => ({
      eval: expect.stringMatching(/^EvalError: .*violates the following Content Security Policy directive.*script-src 'self'/),
      Function: expect.stringMatching(/^EvalError: .*violates the following Content Security Policy directive/),
      import: expect.stringMatching(/^TypeError: Failed to fetch dynamically imported module: data:/),
      pwned: 'undefined',
      policies,
    });
    expect(await page.evaluate(ATTEMPT)).toEqual(refused([CSP, HEADER_CSP]));
    expect(await (await engineWorker()).evaluate(ATTEMPT)).toEqual(refused([HEADER_CSP]));
  }, 2 * MINUTE);

  it('pauses a run on a full disk with what to do, and once space is freed Resume goes on', async () => {
    await expect.poll(() => page.locator('.pill').first().textContent(), { timeout: 30_000 }).toMatch(/^GPU: (?!checking|unavailable)/);
    const worker = await engineWorker();
    // The worker's IndexedDB, full on demand: put refuses with QuotaExceededError while __diskFull is set.
    await worker.evaluate(() => {
      const g = self as unknown as { __diskFull: boolean };
      const put = IDBObjectStore.prototype.put;
      g.__diskFull = false;
      IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
        if (g.__diskFull) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
        return put.apply(this, args);
      };
    });
    const status = page.getByTestId('run-status');
    await page.getByTestId('start').click();
    await until(page, 'the run to start', async () => (await status.textContent()) === 'running', 30_000);
    await worker.evaluate(() => void ((self as unknown as { __diskFull: boolean }).__diskFull = true));
    await until(page, 'the run to pause', async () => (await status.textContent()) === 'paused', MINUTE);
    expect(await page.locator('.run-error').textContent()).toMatch(
      /^Browser storage is full: .+ could not be saved, so the run is paused after its last completed phase .*Free space or delete old runs .*then Resume\.$/,
    );
    expect(await page.locator('table.counts tbody tr').count()).toBe(0); // the phase that failed is not stored

    await worker.evaluate(() => void ((self as unknown as { __diskFull: boolean }).__diskFull = false));
    await expect.poll(() => page.getByTestId('resume').isEnabled(), { timeout: 30_000 }).toBe(true);
    await page.getByTestId('resume').click();
    await until(page, 'the run to go on', async () => (await status.textContent()) === 'running', 30_000);
    await until(page, 'iteration 0 (the phase that failed) to be stored', async () => (await page.locator('table.counts tbody tr').count()) === 1, 2 * MINUTE);
    await page.getByTestId('pause').click();
    await until(page, 'the run to pause', async () => (await status.textContent()) === 'paused', MINUTE);
    expect(await page.locator('.run-error').textContent()).toMatch(/^Paused\./);
  }, 4 * MINUTE);

  it('raised no page error', () => {
    expect(pageErrors).toEqual([]);
  });
});
