// Writes a run preset's seed set, exactly as the seed phase draws it, one {"prompt", "target"} per line, so
// that an outside trainer (scripts/twin/pretrain.py) can train a shipped base model on the very same examples.
//
//   npx vite-node scripts/export_seed.ts -- demo > demo-seed.jsonl

import { deriveSeed } from '../src/star/draws';
import { runConfig } from '../src/star/run_config';
import { arithmeticTask } from '../src/star/tasks/arithmetic_task';

const preset = process.argv.slice(2).filter((a) => a !== '--')[0];
if (!preset) {
  process.stderr.write('usage: npx vite-node scripts/export_seed.ts -- <preset>\n');
  process.exit(2);
}
const cfg = runConfig(preset);
const examples = arithmeticTask(cfg.star).seedExamples!(cfg.star.seedSize, deriveSeed(cfg.star.seed, 'seed-set'));
process.stdout.write(examples.map((e) => JSON.stringify(e)).join('\n') + '\n');
