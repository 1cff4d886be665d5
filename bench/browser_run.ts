// Runs bench.html headless: starts Vite's dev server, opens the page in Debian's Chromium (playwright-core)
// with WebGPU on SwiftShader, waits for the suite and prints its table (and --json FILE writes it).
//
//   npx vite-node bench/browser_run.ts -- [--quick] [--only GROUPS] [--peers LIST] [--json FILE]
//
// On a machine with a GPU, open bench.html in a real browser instead: headless SwiftShader only shows
// that the page works.

import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { createServer } from 'vite';
import { type FlagSpec, parseArgs, usage } from '../src/cli/args';
import type { BenchState } from './browser';
import { formatTable } from './report';

const FLAGS: Record<string, FlagSpec> = {
  quick: { type: 'bool', help: 'the quick suite' },
  only: { type: 'string', help: 'comma-separated groups' },
  peers: { type: 'string', help: 'comma-separated peers (default tfjs,jax-js)' },
  json: { type: 'string', help: 'write the page\'s JSON document here' },
  chromium: { type: 'string', help: 'browser executable (default /usr/bin/chromium)' },
  help: { type: 'bool', help: 'print this help' },
};

const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader'];

async function main(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, []);
  if (flags.help) {
    process.stdout.write(usage('vite-node bench/browser_run.ts -- [flags]', FLAGS) + '\n');
    return 0;
  }
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
    executablePath: (flags.chromium as string | undefined) ?? '/usr/bin/chromium',
    headless: true,
    ignoreDefaultArgs: ['--headless'],
    args: ['--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', ...WEBGPU_FLAGS],
  });
  try {
    const page = await context.newPage();
    page.on('console', (m) => process.stderr.write(`[page] ${m.text()}\n`));
    const q = new URLSearchParams({ suite: flags.quick ? 'quick' : 'full', autorun: '1' });
    if (flags.only) q.set('only', flags.only as string);
    if (flags.peers) q.set('peers', flags.peers as string);
    await page.goto(`${base}bench.html?${q}`);
    let shown = 0;
    for (;;) {
      const s = await page.evaluate(() => (window as unknown as { __bench?: BenchState }).__bench);
      for (const line of s?.log.slice(shown) ?? []) process.stderr.write(line + '\n');
      shown = s?.log.length ?? 0;
      if (s?.state === 'error') throw new Error(`the page failed: ${s.error}`);
      if (s?.state === 'done' && s.doc) {
        process.stdout.write(formatTable(s.doc.cases) + '\n');
        if (typeof flags.json === 'string') {
          await mkdir(dirname(flags.json), { recursive: true });
          await writeFile(flags.json, JSON.stringify(s.doc, null, 2) + '\n');
        }
        return 0;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    await context.close();
    await server.close();
  }
}

const args = process.argv.slice(2);
main(args[0] === '--' ? args.slice(1) : args).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`error: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
