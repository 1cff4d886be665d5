// The app in a real browser: built by Vite, served from a sub-path on 127.0.0.1, driven in Debian's
// headless Chromium with WebGPU on SwiftShader. One micro run goes from Start through a reload (it is
// then interrupted) and Resume to done; it is exported and imported back; an import whose rationales
// hold HTML stays text; without WebGPU the page says what it needs; after one visit it works offline.
// The live view's screenshot is saved to test-artifacts/live-view.png.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zipRun } from '../../src/storage/archive';
import { fakeArchive } from '../storage/fixtures';
import { buildApp, launch, serve, until } from './harness';

const MINUTE = 60_000;
let dist: string;
let server: Awaited<ReturnType<typeof serve>>;
let context: BrowserContext;
let page: Page;
const problems: string[] = []; // page errors and CSP violations: there must be none

const status = () => page.getByTestId('run-status');
const iteration = () => page.getByTestId('iteration');


function watch(p: Page): Page {
  p.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  p.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`csp: ${m.text()}`);
  });
  return p;
}

beforeAll(async () => {
  dist = await buildApp();
  server = await serve(dist);
  context = await launch({ webgpu: true });
  page = watch(await context.newPage());
}, 2 * MINUTE);

afterAll(async () => {
  await context?.close();
  await server?.close();
  if (dist) await rm(dist, { recursive: true, force: true });
});

describe('the STaR app in headless Chromium (WebGPU on SwiftShader)', () => {
  it('runs micro to done in under two minutes, phases and charts updating as it goes; its rationales are browsable', async () => {
    await page.goto(server.url);
    await expect.poll(() => page.locator('.pill').first().textContent(), { timeout: 30_000 }).toMatch(/^GPU: (?!checking|unavailable)/);
    expect(await page.getByTestId('gpu-error').count()).toBe(0);
    // The default is the demo preset, from its shipped base model; this test runs the micro one.
    expect(await page.getByTestId('preset').inputValue()).toBe('demo');
    expect(await page.getByTestId('base-model').inputValue()).toBe('shipped');
    await page.getByTestId('preset').selectOption('micro');
    expect(await page.getByTestId('base-model').isVisible()).toBe(false); // micro ships no base model: it trains one
    expect(await page.getByTestId('mode').inputValue()).toBe('star');
    await expect.poll(() => page.locator('.estimate strong').first().textContent(), { timeout: 10_000 }).toMatch(/KiB|MiB/);

    const t0 = Date.now();
    await page.getByTestId('start').click();
    await until(page, 'the run to start', async () => (await status().textContent()) === 'running', 30_000);
    await until(page, 'a phase to be current', async () => (await page.locator('.phase.current').count()) === 1, 30_000);
    expect(await page.locator('.explain-phase.current').count()).toBe(1);
    await until(page, 'iteration 1 to finish', async () => (await iteration().textContent()) === '1', 2 * MINUTE);
    // The accuracy chart has drawn iterations 0 and 1 (uPlot: a canvas and a legend with the digit series).
    await expect.poll(() => page.getByTestId('accuracy-chart').locator('canvas').count()).toBe(1);
    expect(await page.getByTestId('accuracy-chart').locator('.u-legend').textContent()).toMatch(/overall.*1 digit.*2 digits/s);
    expect(await page.locator('table.counts tbody tr').count()).toBe(2);
    expect(await page.getByTestId('rationale-stream').locator('li').count()).toBeGreaterThan(0);
    await mkdir('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/live-view.png', fullPage: true });

    await until(page, 'the run to finish', async () => (await status().textContent()) === 'done', 3 * MINUTE);
    const seconds = (Date.now() - t0) / 1000;
    console.log(`micro run: ${seconds.toFixed(1)} s from Start to done`);
    expect(seconds).toBeLessThan(120);
    expect(await iteration().textContent()).toBe('2');
    expect(await page.locator('table.counts tbody tr').count()).toBe(3);
    expect(await page.getByTestId('run-item').locator('.status').textContent()).toBe('done');

    // The rationale browser lists every rationale of iteration 1: the 12 generated (and any rationalized).
    const items = page.getByTestId('rationale-browser').locator('.browser-item');
    await page.getByTestId('browser-iteration').selectOption('1');
    await page.getByTestId('browser-source').selectOption('generated');
    await expect.poll(() => items.count(), { timeout: 10_000 }).toBe(12);
    expect(await page.getByTestId('rationale-browser').textContent()).toMatch(/expected \d+/);
    await page.getByTestId('browser-digits').selectOption('1');
    await expect.poll(() => items.count()).toBeLessThan(12);
    expect(await items.first().textContent()).toMatch(/1 digit/);
  }, 5 * MINUTE);

  it('exports the run as the CLI folder zipped, and imports it back', async () => {
    const downloaded = page.waitForEvent('download');
    await page.getByTestId('run-item').first().getByRole('button', { name: 'Export' }).click();
    const download = await downloaded;
    const dir = await mkdtemp(join(tmpdir(), 'star-export-'));
    const file = join(dir, download.suggestedFilename());
    await download.saveAs(file);
    const { readFile } = await import('node:fs/promises');
    const names = Object.keys(unzipSync(new Uint8Array(await readFile(file))));
    for (const f of ['run.json', 'star-config.json', 'summary.json', 'config.json', 'model.safetensors', 'base.safetensors', 'latest.safetensors', 'iteration-0/seed.json', 'iteration-2/evaluate.json', 'iteration-1/rationales.jsonl']) {
      expect(names.some((n) => n.endsWith(`/${f}`))).toBe(true);
    }

    await page.getByTestId('import-file').setInputFiles(file);
    await expect.poll(() => page.getByTestId('import-status').textContent(), { timeout: 30_000 }).toMatch(/^Imported/);
    await expect.poll(() => page.getByTestId('run-item').count()).toBe(2);
    expect(await page.getByTestId('run-item').locator('.status').allTextContents()).toEqual(['done', 'done']);
    expect(await page.getByTestId('run-item').filter({ hasText: 'imported ·' }).count()).toBe(1);

    // Comparing the two puts both accuracy curves on one chart.
    for (const box of await page.getByTestId('run-item').getByRole('checkbox').all()) await box.check();
    const compared = page.locator('section', { has: page.getByRole('heading', { name: 'Runs compared' }) });
    await expect.poll(() => compared.isVisible()).toBe(true);
    expect(await compared.locator('canvas').count()).toBe(1);
    expect(await compared.locator('table.counts tbody tr').count()).toBe(2);

    // A malformed file is refused with a message, and the list is unchanged.
    const bad = join(dir, 'bad.zip');
    await writeFile(bad, 'not a zip at all');
    await page.getByTestId('import-file').setInputFiles(bad);
    await expect.poll(() => page.getByTestId('import-status').textContent()).toMatch(/Cannot import this file: it is not a zip archive/);
    expect(await page.getByTestId('run-item').count()).toBe(2);
    await rm(dir, { recursive: true, force: true });
  }, 2 * MINUTE);

  it('keeps HTML in imported rationales inert: shown as text, no element created', async () => {
    const payload = '<img src=x onerror="window.__pwned = 1">';
    const { meta, archive } = await fakeArchive('xss <b>check</b>', undefined, { decorate: () => payload });
    const dir = await mkdtemp(join(tmpdir(), 'star-xss-'));
    const file = join(dir, 'xss.zip');
    await writeFile(file, zipRun(meta, archive));
    await page.getByTestId('import-file').setInputFiles(file);
    await expect.poll(() => page.getByTestId('import-status').textContent(), { timeout: 30_000 }).toMatch(/^Imported/);
    await expect.poll(() => page.locator('.run-title').textContent()).toBe('xss <b>check</b>');
    const browser = page.getByTestId('rationale-browser');
    await expect.poll(() => browser.locator('.browser-item').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await expect.poll(() => browser.textContent()).toContain(payload);
    expect(await browser.getByText(payload).first().isVisible()).toBe(true);
    expect(await page.evaluate(() => document.querySelectorAll('img, b').length)).toBe(0);
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    await rm(dir, { recursive: true, force: true });
  }, 2 * MINUTE);

  it('works offline after the first visit (service worker)', async () => {
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    await context.setOffline(true);
    try {
      await page.reload();
      await expect.poll(() => page.getByTestId('runs-list').getByTestId('run-item').count(), { timeout: 30_000 }).toBe(3);
    } finally {
      await context.setOffline(false);
    }
  }, 2 * MINUTE);

  it('a reload interrupts a running run; Resume continues it from its last completed phase to done', async () => {
    await page.getByTestId('preset').selectOption('micro'); // the reload before this test showed the default again
    await page.getByTestId('start').click();
    await until(page, 'the run to start', async () => (await status().textContent()) === 'running', 30_000);
    await until(page, 'iteration 1 to finish', async () => (await iteration().textContent()) === '1', 2 * MINUTE);
    const row1 = await page.locator('table.counts tbody tr').nth(1).textContent();

    await page.reload();
    await until(page, 'the reloaded page to show the run as interrupted', async () => (await status().textContent()) === 'interrupted', 30_000);
    expect(await iteration().textContent()).toBe('1');
    expect(await page.getByTestId('run-item').locator('.status').first().textContent()).toBe('interrupted');
    await expect.poll(() => page.getByTestId('resume').isEnabled(), { timeout: 30_000 }).toBe(true);

    await page.getByTestId('resume').click();
    await until(page, 'the run to go on', async () => (await status().textContent()) === 'running', 30_000);
    await until(page, 'the run to finish', async () => (await status().textContent()) === 'done', 3 * MINUTE);
    expect(await iteration().textContent()).toBe('2');
    // Iteration 1 was not run again: its record (times included) is the one stored before the reload.
    expect(await page.locator('table.counts tbody tr').nth(1).textContent()).toBe(row1);
  }, 6 * MINUTE);

  it('starts the default preset from its shipped base model; stops a run within a second by ending its worker; the run is then interrupted and resumable', async () => {
    await page.reload(); // the form as a new visitor sees it: the demo preset, its shipped base model
    await expect.poll(() => page.getByTestId('preset').inputValue(), { timeout: 30_000 }).toBe('demo');
    await expect.poll(() => page.getByTestId('start').isEnabled(), { timeout: 30_000 }).toBe(true);
    await page.getByTestId('start').click();
    await until(page, 'the run to start', async () => (await status().textContent()) === 'running', 30_000);
    // The worker fetched the bundled base model, checked its SHA-256 and starts at iteration 1: no seed training.
    await until(page, 'the shipped base model to load', async () => /Base model demo: trained ahead of time, checked/.test((await page.textContent('body')) ?? ''), 60_000);
    await until(page, 'the base model to be evaluated', async () => (await page.locator('.phase.current .phase-name').textContent()) === 'Evaluate', 60_000);
    await page.waitForTimeout(1500);
    // Timed inside the page, from the click to the status change (CPU-emulated WebGPU slows the test driver, not the app).
    await page.evaluate(() => {
      const w = window as unknown as { clickAt?: number; stoppedAt?: number };
      document.querySelector('[data-testid=stop]')!.addEventListener('click', () => (w.clickAt = performance.now()), { capture: true, once: true });
      const st = document.querySelector('[data-testid=run-status]')!;
      new MutationObserver(() => {
        if (st.textContent === 'interrupted') w.stoppedAt ??= performance.now();
      }).observe(st, { childList: true, characterData: true, subtree: true });
    });
    await page.getByTestId('stop').click();
    await until(page, 'the run to stop', async () => (await status().textContent()) === 'interrupted', 10_000);
    const ms = await page.evaluate(() => {
      const w = window as unknown as { clickAt: number; stoppedAt: number };
      return w.stoppedAt - w.clickAt;
    });
    expect(ms).toBeLessThan(1000);
    await expect.poll(() => page.getByTestId('resume').isEnabled(), { timeout: 30_000 }).toBe(true);
    await page.waitForTimeout(1000);
    expect(await status().textContent()).toBe('interrupted'); // the old worker is gone: no more events
    await expect.poll(() => page.getByTestId('run-item').locator('.status').first().textContent()).toBe('interrupted');

    // Delete asks for a second click, then removes the run from the list (and its data from storage).
    const n = await page.getByTestId('run-item').count();
    const del = page.getByTestId('run-item').first().getByRole('button', { name: 'Delete' });
    await del.click();
    await page.getByTestId('run-item').first().getByRole('button', { name: 'Really delete?' }).click();
    await expect.poll(() => page.getByTestId('run-item').count()).toBe(n - 1);
  }, 2 * MINUTE);

  it('says what it needs when there is no WebGPU', async () => {
    const noGpu = await launch({ webgpu: false });
    try {
      const p = watch(await noGpu.newPage());
      await p.goto(server.url);
      const card = p.getByTestId('gpu-error');
      await card.waitFor({ timeout: 30_000 });
      expect(await card.textContent()).toMatch(/needs WebGPU.*navigator\.gpu is missing.*Chrome or Edge/s);
      expect(await p.getByTestId('start').count()).toBe(0);
      await expect.poll(() => p.getByTestId('runs-list').textContent()).toMatch(/No runs yet/);
    } finally {
      await noGpu.close();
    }
  }, MINUTE);

  it('raised no page error and no Content-Security-Policy violation', () => {
    expect(problems).toEqual([]);
  });
});
