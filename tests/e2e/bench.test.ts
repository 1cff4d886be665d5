// bench.html in a real browser: Vite's dev server serves it, headless Chromium runs a small part of the
// quick suite on SwiftShader with jax-js as the peer, and the page's JSON document is checked. Speed is
// not judged here (benchmarks print numbers; tests don't judge them): the page has to run and report.

import { describe, expect, it } from 'vitest';
import { benchInBrowser } from '../../bench/browser_page';
import { checkDocument } from '../../bench/report';

describe('bench.html', () => {
  it('runs the matmul and norm cases with a peer in the browser and returns a valid document', async () => {
    const doc = await benchInBrowser({ quick: true, only: 'matmul,norm', peers: 'jax-js' });
    checkDocument(doc);
    expect(doc.suite).toBe('quick');
    expect(doc.runtime).toMatch(/Chrome/);
    expect(doc.peerStatus['jax-js']).not.toMatch(/^not run/);
    const names = doc.cases.map((c) => c.name);
    expect(names).toContain('matmul square 256x256x256');
    expect(names).toContain('matmul gpt5m mlp.up [BT,C]x[F,C]^T 64x768x256 f16 B');
    expect(names).toContain('rmsnorm fwd arithmetic BT=128');
    for (const c of doc.cases) expect(c.value).toBeGreaterThan(0);
    // Every f32 matmul has jax-js's time beside ours; the f16-B one has no peer.
    for (const c of doc.cases.filter((c) => c.group === 'matmul')) {
      if (c.name.endsWith('f16 B')) expect(c.peer).toBeUndefined();
      else expect(c).toMatchObject({ peer: 'jax-js', ratio: expect.any(Number) });
    }
  }, 240_000);
});
