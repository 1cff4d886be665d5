// CommonsenseQA as the registry (../registry.ts) describes it: five-way questions answered with a rationale by
// a pretrained model.

import { isLocalModel, validateCsqaRunConfig } from '../../run_configs';
import type { CsqaRunConfig } from '../csqa_run';
import type { TaskInfo } from '../registry';

export const CSQA: TaskInfo<CsqaRunConfig> = {
  name: 'csqa',
  title: 'CommonsenseQA',
  blurb: 'five-way commonsense questions answered with a rationale, by a pretrained model from the Hugging Face Hub (SmolLM2-135M-Instruct: about 270 MB, downloaded once and kept) or from your disk',
  categoryName: 'Right answer',
  heatmapTitle: 'Accuracy (%) by right answer',
  validate: (c) => validateCsqaRunConfig(c), // called late: run_configs.ts and the registry import each other
  describe: (c) => {
    const s = c.star;
    const model = isLocalModel(c) ? 'local model files' : c.model;
    const tuning = c.lora ? `LoRA rank ${c.lora.rank} on ${c.lora.targets.join(', ')}` : 'full fine-tuning';
    return `CommonsenseQA · ${model} · ${s.mode} · ${s.trainSize} questions per iteration · ${s.iterations} iterations · ${c.fewShot}-shot · ${tuning} · seed ${s.seed}`;
  },
  scope: () => 'CommonsenseQA',
  modelLabel: (c) => `CSQA ${isLocalModel(c) ? 'local model' : c.model.split('/').pop()}`,
  checksRationales: () => false, // no step-by-step check: the answer filter alone
};
