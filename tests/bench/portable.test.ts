// The bundled benchmark kit (bench/portable) runs on plain node: the bundle builds, and a small suite
// completes while V8 collects garbage every 2000 allocations. The bundler once dropped the array that
// kept Dawn's instance and adapter alive (nobody read it), and the first collection crashed the run;
// without the kit's Node binary and loader, this checks the programs themselves.

import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'vite';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
// Inside the repo, so the bundle's one external import (`webgpu`) resolves to node_modules/webgpu.
const KIT = join(__dirname, '..', '..', 'node_modules', '.cache', 'star-kit-test');

describe('the portable benchmark kit', () => {
  it('bundles bench and profile, and the bundle runs a suite on plain node under frequent garbage collection', async () => {
    await rm(KIT, { recursive: true, force: true });
    process.env.KIT_DIR = KIT;
    try {
      await build({ configFile: join(__dirname, '..', '..', 'bench', 'portable', 'vite.config.ts') });
    } finally {
      delete process.env.KIT_DIR;
    }
    const { stdout } = await run(process.execPath, ['--gc-interval=2000', join(KIT, 'bench.mjs'), '--quick', '--only', 'norm', '--peers', 'none'], { timeout: 120_000 });
    expect(stdout).toMatch(/rmsnorm fwd arithmetic BT=128 +[\d.]+ +GB\/s/);
    const help = await run(process.execPath, [join(KIT, 'profile.mjs'), '--help']);
    expect(help.stdout).toMatch(/--decode/);
  }, 240_000);
});
