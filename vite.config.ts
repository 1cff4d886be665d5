import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin, transformWithEsbuild } from 'vite';

/**
 * The Content-Security-Policy: the one place it is written. Scripts, the engine worker and styles come
 * from the app's own origin only: no inline script, no eval, and no 'unsafe-inline' styles either (uPlot
 * and the page set styles through CSSOM properties, which CSP does not restrict). WebGPU and WGSL need no
 * directive; nothing uses wasm. connect-src allows the Hugging Face Hub, where CommonsenseQA downloads its
 * model and questions (https://huggingface.co/<repo>/resolve/...), and the hosts it redirects file
 * downloads to (its CDN and storage under huggingface.co and hf.co); nothing else.
 *
 * It ships as a response header, which is what covers the engine worker (where downloads happen and
 * imported runs are read): a worker takes its policy from its own script's response, never from the
 * page's meta tag. The dev and preview servers send it (below); the build writes it to `_headers`
 * (Netlify, Cloudflare Pages); vercel.json and the nginx snippet in docs/deploy.md carry copies, which
 * tests/e2e/faults.test.ts checks against this one. The built page also holds it as a meta tag, for hosts
 * that cannot set headers (there it covers the page, not the worker).
 */
export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "worker-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
].join('; ');

/** The header adds what a meta tag cannot carry: no other site may frame the page (clickjacking). */
export const HEADER_CSP = `${CSP}; frame-ancestors 'none'`;

/** The dev server's: Vite's hot reload and error overlay insert <style> elements; scripts stay as strict. */
export const DEV_CSP = HEADER_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");

/** `_headers` for Netlify and Cloudflare Pages: the policy on every path. */
export const HEADERS_FILE = `# Response headers for Netlify and Cloudflare Pages, written by vite.config.ts (see docs/deploy.md).\n/*\n  Content-Security-Policy: ${HEADER_CSP}\n`;

/** Files the build writes that are not the app: they are never precached. */
const NOT_PRECACHED = new Set(['index.html', '_headers']);

function contentSecurityPolicy(): Plugin {
  return {
    name: 'star-csp',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler: (html) => html.replace(/(<meta charset="utf-8" \/>)/, `$1\n    <meta http-equiv="Content-Security-Policy" content="${CSP}" />`),
    },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: '_headers', source: HEADERS_FILE });
    },
  };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Emits sw.js (src/worker/sw.ts, compiled alone) with the list of every built file to cache for offline use. */
function serviceWorker(): Plugin {
  return {
    name: 'star-service-worker',
    apply: 'build',
    async generateBundle(_options, bundle) {
      const assets = Object.keys(bundle).filter((f) => !NOT_PRECACHED.has(f));
      const publicFiles = filesUnder('public').map((f) => relative('public', f).split('\\').join('/'));
      const files = ['./', ...[...assets, ...publicFiles].sort().map((f) => `./${f}`)];
      const version = createHash('sha256').update(files.join('\n')).digest('hex').slice(0, 12);
      const { code } = await transformWithEsbuild(readFileSync('src/worker/sw.ts', 'utf8'), 'sw.ts', {
        loader: 'ts',
        define: { __PRECACHE__: JSON.stringify(files), __VERSION__: JSON.stringify(version) },
      });
      this.emitFile({ type: 'asset', fileName: 'sw.js', source: code });
    },
  };
}

// Relative base: the built folder works from any static host, under any path. transformers.js (the Hub
// tokenizers) imports onnxruntime-web for model inference, which this app never runs: that import resolves
// to an empty module, so no 27 MB wasm file is built, precached or fetched.
export default defineConfig({
  base: './',
  resolve: { alias: [{ find: /^onnxruntime-web\/webgpu$/, replacement: fileURLToPath(new URL('./src/worker/no_onnx.ts', import.meta.url)) }] },
  worker: { format: 'es' },
  server: { headers: { 'Content-Security-Policy': DEV_CSP } },
  preview: { headers: { 'Content-Security-Policy': HEADER_CSP } },
  build: { target: 'es2022' },
  plugins: [contentSecurityPolicy(), serviceWorker()],
});
