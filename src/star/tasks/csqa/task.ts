// CommonsenseQA as the registry (../registry.ts) describes it: five-way questions answered with a rationale by
// a pretrained model.

import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, peftConfig } from '../../../hub/peft';
import { isLocalModel, validateCsqaRunConfig } from '../../run_configs';
import type { TaskAdapter } from '../../types';
import { type CsqaProblem, csqaTask } from '../csqa';
import type { CsqaQuestions } from '../csqa_data';
import type { CsqaRunConfig } from '../csqa_run';
import type { TaskInfo } from '../registry';
import { CSQA_PAPER, CSQA_PHASES } from './phases';

/** Where a CommonsenseQA run stores its questions (the pool and the held-out set it drew). */
export const QUESTIONS_DOC = 'csqa-questions';

/** The CSQA task of a run config over its questions (the same options the session runs it with). */
export function csqaTaskFor(cfg: CsqaRunConfig, q: CsqaQuestions) {
  return csqaTask({ train: q.train, eval: q.eval, fewShot: cfg.fewShot, fewShotInTraining: cfg.fewShotInTraining, maxNewTokens: cfg.maxNewTokens });
}

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
  async runTask(c, store) {
    const q = await store.getJSON<CsqaQuestions>(QUESTIONS_DOC);
    if (!q) return null; // an archive written without its questions
    const task = csqaTaskFor(c, q) as unknown as TaskAdapter<unknown>;
    return {
      task,
      expected: (p) => {
        const x = p as CsqaProblem;
        const right = x.choices.find((y) => y.label === x.answerKey);
        return `${x.answerKey.toLowerCase()}${right ? ` (${right.text})` : ''}`; // the label as answerOf writes it, then the text
      },
    };
  },
  sampleSize: (c, stored) => (stored ? Math.min(c.star.trainSize, c.star.poolSize, stored.train.length) : null),
  presetModel: () => null, // a pretrained model's layout is known once its config.json is loaded
  finalModel(c, weights, hfConfig) {
    if (c.lora) return [[ADAPTER_CONFIG, peftConfig(c.lora, c.model)], [ADAPTER_WEIGHTS, weights]]; // the loop stores adapters
    return hfConfig === undefined ? [] : [['config.json', hfConfig], ['model.safetensors', weights]];
  },
  phases: () => CSQA_PHASES,
  paper: CSQA_PAPER,
};
