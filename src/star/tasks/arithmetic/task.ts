// The arithmetic task as the registry (../registry.ts) describes it: n-digit addition with a scratchpad.

import { toHfConfig } from '../../../hub/hf_config';
import { presetConfig } from '../../../model/config';
import { type RunConfig, validateRunConfig } from '../../run_config';
import type { TaskAdapter } from '../../types';
import { arithmeticTask } from '../arithmetic_task';
import { arithmeticTokenizer as tok } from '../char_tokenizer';
import { ARITHMETIC_PAPER, arithmeticPhases } from './phases';
import type { TaskInfo } from '../registry';

export const ARITHMETIC: TaskInfo<RunConfig> = {
  name: 'arithmetic',
  title: 'Arithmetic',
  blurb: 'n-digit addition with a scratchpad, on a small model that starts from a base model trained ahead of time (or trains one from scratch)',
  categoryName: 'Digits',
  heatmapTitle: 'Accuracy (%) by digit count',
  validate: (c) => validateRunConfig(c),
  describe: (c) => `${c.model} model · ${c.star.mode} · ${c.star.minDigits}–${c.star.maxDigits} digits · ${c.star.iterations} iterations · seed ${c.star.seed}`,
  scope: (c) => `${c.star.minDigits}–${c.star.maxDigits} digits`,
  modelLabel: (c) => c.model,
  checksRationales: (c) => c.star.filter === 'rationale',
  async runTask(c) {
    const task = arithmeticTask(c.star) as TaskAdapter<unknown>; // problems come from the config's seeds alone
    return { task, expected: (p) => task.answerOf(task.directTarget(p)) };
  },
  sampleSize: (c) => c.star.trainSize,
  presetModel: (c) => presetConfig(c.model),
  finalModel: (c, weights) => [
    ['config.json', { ...toHfConfig(presetConfig(c.model), { bosId: tok.bos, eosId: tok.eos }), pad_token_id: tok.pad, star_tokenizer: 'arithmetic-char' }],
    ['model.safetensors', weights],
  ],
  phases: arithmeticPhases,
  paper: ARITHMETIC_PAPER,
};
