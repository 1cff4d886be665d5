// Builds the benchmark programs (bench/run.ts, bench/profile.ts) into plain Node modules, every
// dependency inlined except the `webgpu` package (its dawn.node is a native addon): the kit that
// bench/portable/pack.sh assembles runs on a machine with a GPU and no npm.
import { defineConfig } from 'vite';

export default defineConfig({
  logLevel: 'warn',
  publicDir: false,
  build: {
    ssr: true,
    outDir: process.env.KIT_DIR ?? 'dist-kit',
    emptyOutDir: false,
    target: 'node20',
    minify: false,
    rollupOptions: {
      input: { bench: 'bench/run.ts', profile: 'bench/profile.ts' },
      output: {
        format: 'es',
        entryFileNames: '[name].mjs',
        chunkFileNames: 'chunks/[name]-[hash].mjs',
        // TF.js's Node platform calls require('util'); an ES module has no require of its own.
        banner: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
      },
    },
  },
  ssr: { noExternal: true, external: ['webgpu'] },
});
