import { defineConfig } from 'vite';

// Relative base: the built folder works from any static host, under any path.
export default defineConfig({
  base: './',
  worker: { format: 'es' },
  build: { target: 'es2022' },
});
