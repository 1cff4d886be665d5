// Prints a benchmark JSON document (npm run bench -- --json FILE) as the Markdown table docs/performance.md uses:
//   npx vite-node bench/markdown.ts -- docs/bench/swiftshader-quick.json
import { readFileSync } from 'node:fs';
import { type BenchDocument, checkDocument, formatMarkdown } from './report';

const files = process.argv.slice(2).filter((a) => a !== '--');
for (const f of files) {
  const doc = JSON.parse(readFileSync(f, 'utf8')) as BenchDocument;
  checkDocument(doc);
  process.stdout.write(formatMarkdown(doc) + '\n\n');
}
