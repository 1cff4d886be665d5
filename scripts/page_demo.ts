// The demo as a new visitor sees it: builds the app, serves it on 127.0.0.1, opens it in Debian's headless
// Chromium (WebGPU on SwiftShader), presses Start with the default preset and watches the run to its end.
// Writes OUT/page.json (the accuracy after each iteration as the page's table shows it, with the seconds
// since the click) and OUT/page.png (the page when the run is done).
//
//   VK_ICD_FILENAMES=... npx vite-node scripts/page_demo.ts -- docs/results/demo [minutes]

import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildApp, launch, serve } from '../tests/e2e/harness';

const out = process.argv.slice(2).filter((a) => a !== '--')[0];
const minutes = Number(process.argv.slice(2).filter((a) => a !== '--')[1] ?? 60);
if (!out || !(minutes > 0)) {
  console.error('usage: vite-node scripts/page_demo.ts -- OUT_DIR [minutes, default 60]');
  process.exit(2);
}

const dist = await buildApp();
const server = await serve(dist);
const context = await launch({ webgpu: true });
try {
  const page = await context.newPage();
  await page.goto(server.url);
  await page.waitForFunction(() => /^GPU: (?!checking|unavailable)/.test(document.querySelector('.pill')?.textContent ?? ''), null, { timeout: 60_000 });
  const preset = await page.getByTestId('preset').inputValue();
  const base = await page.getByTestId('base-model').inputValue();
  await page.waitForFunction(() => !(document.querySelector('[data-testid=start]') as HTMLButtonElement).disabled, null, { timeout: 60_000 });
  const t0 = Date.now();
  await page.getByTestId('start').click();
  const status = () => page.getByTestId('run-status').textContent();
  await page.waitForFunction(() => document.querySelector('[data-testid=run-status]')?.textContent === 'running', null, { timeout: 120_000 });
  const seen: { iteration: number; accuracy: string; seconds: number }[] = [];
  while (Date.now() - t0 < minutes * 60_000) {
    const rows = await page.locator('table.counts tbody tr').allTextContents().catch(() => []);
    for (let i = seen.length; i < rows.length; i++) {
      const cells = await page.locator('table.counts tbody tr').nth(i).locator('td').allTextContents();
      seen.push({ iteration: Number(cells[0]), accuracy: cells[8], seconds: Math.round((Date.now() - t0) / 1000) });
      console.log(`iteration ${cells[0]}: ${cells[8]} at ${seen.at(-1)!.seconds} s`);
    }
    const s = await status();
    if (s !== 'running') {
      console.log(`status: ${s}`);
      break;
    }
    await page.waitForTimeout(2000);
  }
  await mkdir(out, { recursive: true });
  await page.screenshot({ path: join(out, 'page.png'), fullPage: true });
  const doc = { preset, base, status: await status(), wallSeconds: Math.round((Date.now() - t0) / 1000), iterations: seen, userAgent: await page.evaluate(() => navigator.userAgent) };
  await writeFile(join(out, 'page.json'), JSON.stringify(doc, null, 1) + '\n');
  console.log(JSON.stringify(doc));
} finally {
  await context.close();
  await server.close();
  await rm(dist, { recursive: true, force: true });
}
process.exit(0);
