// The runner's progress lines without a terminal (src/cli/progress.ts): one per 10%, and one a minute at least.

import { describe, expect, it } from 'vitest';
import { LOG_EVERY_MS, progressBar } from '../../src/cli/progress';

describe('progress without a terminal', () => {
  it('writes a line per 10% and, in a long phase, one a minute between them', () => {
    const lines: string[] = [];
    let t = 0;
    const bar = progressBar('iter 0 seed', { isTTY: false, write: (s: string) => (lines.push(s), true) } as never, () => t);
    bar.update(240, 12000, 'loss 0.6'); // the first decile: a line
    t += 20_000;
    bar.update(480, 12000); // same decile, 20 s later: nothing
    expect(lines.length).toBe(1);
    t += LOG_EVERY_MS;
    bar.update(720, 12000, 'loss 0.4'); // same decile, but a minute since the last line
    expect(lines.length).toBe(2);
    expect(lines[1]).toMatch(/^iter 0 seed +\[#?\.+\] 720\/12000 80\.0s eta \d+s loss 0\.4\n$/);
    t += 1000;
    bar.update(1200, 12000); // a new decile
    expect(lines.length).toBe(3);
    bar.end();
    expect(lines[3]).toBe(`${'iter 0 seed'.padEnd(22)} done in 81.0s\n`);
  });
});
