// Runs bench.html headless: starts Vite's dev server, opens the page in Debian's Chromium (playwright-core)
// with WebGPU on SwiftShader, waits for the suite and prints its table (and --json FILE writes it).
//
//   npx vite-node bench/browser_run.ts -- [--quick] [--only GROUPS] [--peers LIST] [--json FILE]
//
// On a machine with a GPU, open bench.html in a real browser instead: headless SwiftShader only shows
// that the page works.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type FlagSpec, parseArgs, usage } from '../src/cli/args';
import { benchInBrowser } from './browser_page';
import { formatTable } from './report';

const FLAGS: Record<string, FlagSpec> = {
  quick: { type: 'bool', help: 'the quick suite' },
  only: { type: 'string', help: 'comma-separated groups' },
  peers: { type: 'string', help: 'comma-separated peers (default tfjs,jax-js)' },
  json: { type: 'string', help: 'write the page\'s JSON document here' },
  chromium: { type: 'string', help: 'browser executable (default /usr/bin/chromium)' },
  help: { type: 'bool', help: 'print this help' },
};

async function main(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, []);
  if (flags.help) {
    process.stdout.write(usage('vite-node bench/browser_run.ts -- [flags]', FLAGS) + '\n');
    return 0;
  }
  const doc = await benchInBrowser({
    quick: flags.quick === true, only: flags.only as string | undefined, peers: flags.peers as string | undefined,
    chromium: flags.chromium as string | undefined, onLog: (line) => process.stderr.write(line + '\n'),
  });
  process.stdout.write(formatTable(doc.cases) + '\n');
  if (typeof flags.json === 'string') {
    await mkdir(dirname(flags.json), { recursive: true });
    await writeFile(flags.json, JSON.stringify(doc, null, 2) + '\n');
  }
  return 0;
}

const args = process.argv.slice(2);
main(args[0] === '--' ? args.slice(1) : args).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`error: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
