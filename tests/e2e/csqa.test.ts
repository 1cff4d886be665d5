// CommonsenseQA in the app, in headless Chromium with WebGPU on SwiftShader, without a network: the
// Hugging Face Hub is stubbed at the network boundary (Playwright routes https://huggingface.co/...) with
// the tiny random Llama fixture and the invented parquet questions, so the real download path runs in the
// engine's worker (byte progress, the Cache API). A micro run goes from the start form to done; local
// model files with a local JSONL run too (a malformed line is shown with its number first); a model that
// cannot fit is refused before its weights or tokenizer are asked for; the second visit needs no network.
// The live view's screenshot is saved to test-artifacts/csqa-live-view.png.

import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUESTIONS, question } from '../helpers/csqa_questions';
import { buildApp, launch, serve, until } from './harness';

const MINUTE = 60_000;
const HUB = join(__dirname, '..', 'fixtures', 'hub');
const CSQA = join(__dirname, '..', 'fixtures', 'csqa');
const MODEL = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
// SmolLM2-1.7B's shape: its f32 weights alone are over any budget the app allows itself.
const TOO_BIG = { model_type: 'llama', vocab_size: 49152, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 24, num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 8192, tie_word_embeddings: true };

let dist: string;
let dir: string;
let server: Awaited<ReturnType<typeof serve>>;
let context: BrowserContext;
let page: Page;
const problems: string[] = [];
const asked: string[] = []; // every Hub URL the app requested

/** The stub Hub: fixture models under fixtures/<name>, the parquet questions, a too-big config; 404 otherwise. */
function hub(route: Route): Promise<void> {
  const url = new URL(route.request().url());
  asked.push(url.pathname);
  const cors = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'content-length' };
  const ok = (body: Buffer) => route.fulfill({ status: 200, body, headers: { ...cors, 'content-length': String(body.length), 'content-type': 'application/octet-stream' } });
  const m = /^\/fixtures\/([\w.-]+)\/resolve\/main\/([\w.-]+)$/.exec(url.pathname);
  if (m?.[1] === 'too-big' && m[2] === 'config.json') return ok(Buffer.from(JSON.stringify(TOO_BIG)));
  if (m && m[1] !== 'too-big') {
    try {
      return ok(readFileSync(join(HUB, m[1], m[2])));
    } catch {
      // not in the fixture: a 404, as the Hub answers
    }
  }
  const d = /^\/datasets\/tau\/commonsense_qa\/resolve\/main\/data\/(train|validation)-00000-of-00001\.parquet$/.exec(url.pathname);
  if (d) return ok(readFileSync(join(CSQA, `${d[1]}.parquet`)));
  return route.fulfill({ status: 404, body: 'Entry not found', headers: cors });
}

const status = () => page.getByTestId('run-status');
const refusal = () => page.getByTestId('refusal');


/** Waits for the estimate of the form as it is now, then returns whether Start is enabled. */
async function settled(): Promise<boolean> {
  await page.waitForTimeout(50); // the change's own event handlers have run
  await expect.poll(() => page.getByTestId('estimate').getAttribute('data-state'), { timeout: 30_000 }).toBe('ready');
  return page.getByTestId('start').isEnabled();
}

async function runToDone(): Promise<number> {
  const t0 = Date.now();
  await page.getByTestId('start').click();
  await until(page, 'the run to start', async () => (await status().textContent()) === 'running', 60_000);
  await until(page, 'the run to finish', async () => ['done', 'error'].includes((await status().textContent()) ?? ''), 4 * MINUTE);
  expect(await page.locator('.run-error').textContent()).toBe(''); // no error message
  expect(await status().textContent()).toBe('done');
  return (Date.now() - t0) / 1000;
}

beforeAll(async () => {
  dist = await buildApp();
  server = await serve(dist);
  dir = await mkdtemp(join(tmpdir(), 'star-csqa-e2e-'));
  context = await launch({ webgpu: true });
  await context.route('https://huggingface.co/**', hub);
  page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`csp: ${m.text()}`);
  });
}, 2 * MINUTE);

afterAll(async () => {
  await context?.close();
  await server?.close();
  if (dist) await rm(dist, { recursive: true, force: true });
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('CommonsenseQA in the app (headless Chromium, WebGPU on SwiftShader, a stubbed Hub)', () => {
  it('refuses a model that cannot fit from its config.json, before asking for its tokenizer or weights', async () => {
    await page.goto(server.url);
    await expect.poll(() => page.locator('.pill').first().textContent(), { timeout: 30_000 }).toMatch(/^GPU: (?!checking|unavailable)/);
    const paper = () => page.locator('.explain .paper div:not([hidden])').textContent();
    expect(await paper()).toMatch(/89\.5%.*1–5 digit addition/); // the explain panel follows the form's task
    await page.getByTestId('task-csqa').check();
    await expect.poll(paper).toMatch(/72\.5%.*dev set/);
    expect(await page.locator('.explain-phase strong').first().textContent()).toBe('Base model');
    await page.getByTestId('csqa-model').selectOption('repo');
    await page.getByTestId('csqa-repo').fill('fixtures/too-big');
    await page.getByTestId('csqa-preset').selectOption('micro');
    expect(await settled()).toBe(false);
    expect(await refusal().textContent()).toMatch(/will not fit\. The run needs at least [\d.]+ GiB of GPU memory, more than the [\d.]+ GiB this app allows/);
    expect(asked).toContain('/fixtures/too-big/resolve/main/config.json');
    expect(asked.filter((p) => p.startsWith('/fixtures/too-big/')).length).toBe(1);
  }, MINUTE);

  it('runs micro from the Hub to done: per-file download bars, phases, per-answer accuracy, rationales', async () => {
    await page.getByTestId('csqa-repo').fill('fixtures/tiny-llama-f32');
    expect(await settled()).toBe(true);
    expect(await page.getByTestId('estimate-model').textContent()).toMatch(/^fixtures\/tiny-llama-f32: .*2 layers, d 32/);
    expect(await page.getByTestId('estimate-questions').textContent()).toMatch(/^4 questions in the training pool \(2 per iteration\), 2 held out/);
    expect(asked.some((p) => p.endsWith('/model.safetensors'))).toBe(false); // the estimate reads no weights

    const seconds = await runToDone();
    console.log(`CSQA micro run (Hub): ${seconds.toFixed(1)} s from Start to done`);
    const weights = page.locator('[data-testid=download-row][data-file="model.safetensors"]');
    expect(await weights.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('100');
    expect(await weights.textContent()).toMatch(/136\.9 KiB/);
    expect(await page.getByTestId('download-row').count()).toBe(4);
    expect(await page.getByTestId('model-status').textContent()).toMatch(/^fixtures\/tiny-llama-f32: .*vocab 297/);
    expect(await page.getByTestId('iteration').textContent()).toBe('1');
    expect(await page.locator('table.counts tbody tr').count()).toBe(2);
    await expect.poll(() => page.getByTestId('accuracy-chart').locator('canvas').count()).toBe(1);
    expect(await page.getByTestId('accuracy-chart').locator('.u-legend').textContent()).toMatch(/overall.*answer \([a-e]\)/s);
    expect(await page.getByTestId('heatmap').locator('thead th').first().textContent()).toBe('answer \\ iteration');
    await page.getByTestId('browser-iteration').selectOption('1');
    await page.getByTestId('browser-source').selectOption('generated');
    await expect.poll(() => page.getByTestId('rationale-browser').locator('.browser-item').count(), { timeout: 10_000 }).toBe(2);
    expect(await page.getByTestId('rationale-browser').textContent()).toMatch(/expected [a-e] \(\w+\)/);
    expect(await page.getByTestId('run-item').first().textContent()).toMatch(/CommonsenseQA · fixtures\/tiny-llama-f32 · star/);
    await mkdir('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/csqa-live-view.png', fullPage: true });
  }, 5 * MINUTE);

  it('local model files and a local JSONL: a malformed line is named; fixed, a direct run trains to done', async () => {
    const bad = join(dir, 'bad.jsonl');
    await writeFile(bad, `${QUESTIONS}\n{"answerKey": "A", "id": "q7"}\n${question('q8', 'Where?', ['here'], 'A')}\n`);
    const good = join(dir, 'train.jsonl');
    await writeFile(good, `${QUESTIONS}\n`);
    await page.getByTestId('csqa-model').selectOption('local');
    await page.getByTestId('csqa-model-files').setInputFiles(MODEL.map((f) => join(HUB, 'tiny-llama-f32', f)));
    await page.getByTestId('csqa-data').selectOption('file');
    await page.getByTestId('csqa-data-file').setInputFiles(bad);
    expect(await settled()).toBe(false);
    expect(await refusal().textContent()).toMatch(/bad\.jsonl: 2 malformed lines:\s+line 7: "question" is not an object.*\s+line 8: 1 choices; at least 2 are needed/s);

    await page.getByTestId('csqa-data-file').setInputFiles(good);
    await page.getByTestId('csqa-mode').selectOption('direct');
    expect(await settled()).toBe(true);
    const before = asked.length;
    const seconds = await runToDone();
    console.log(`CSQA micro run (local files, direct): ${seconds.toFixed(1)} s from Start to done`);
    expect(asked.length).toBe(before); // nothing came from the network
    expect(await page.getByTestId('download-row').count()).toBe(4);
    const rows = page.locator('table.counts tbody tr');
    expect(await rows.count()).toBe(2);
    expect(await rows.nth(1).locator('td').nth(5).textContent()).toBe('2'); // trained on both questions of the sample
  }, 5 * MINUTE);

  it('after a reload, with no network: both runs are listed as done, and the Hub files come from this browser', async () => {
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    await context.setOffline(true);
    try {
      await page.reload();
      await expect.poll(() => page.getByTestId('run-item').count(), { timeout: 30_000 }).toBe(2);
      expect(await page.getByTestId('run-item').locator('.status').allTextContents()).toEqual(['done', 'done']);
      await page.getByTestId('run-item').nth(1).locator('.run-open').click();
      await expect.poll(() => page.locator('table.counts tbody tr').count()).toBe(2);
      await page.getByTestId('task-csqa').check();
      await page.getByTestId('csqa-model').selectOption('repo');
      await page.getByTestId('csqa-repo').fill('fixtures/tiny-llama-f32');
      await page.getByTestId('csqa-preset').selectOption('micro');
      expect(await settled()).toBe(true); // config.json, the tokenizer and the questions: from the Cache API
      const cached = await page.evaluate(async () => (await (await caches.open('star-webgpu-hub')).keys()).map((r) => decodeURIComponent(r.url)));
      expect(cached.some((u) => u.endsWith('fixtures/tiny-llama-f32/main/model.safetensors'))).toBe(true);
    } finally {
      await context.setOffline(false);
    }
  }, 2 * MINUTE);

  it('raised no page error and no Content-Security-Policy violation', () => {
    expect(problems).toEqual([]);
  });
});
