// The CommonsenseQA start form as data: the values its fields hold, the preset's values to fill them with,
// and the run config they describe (csqaRunConfig, then the form's own knobs, validated). Pure, so the
// mapping from what a user typed to what runs is tested without a page.

import { HUB_PRESETS, type HubPresetName } from '../hub/presets';
import { isRepoId } from '../hub/download';
import { LORA_TARGETS, type LoraTarget } from '../model/lora';
import { localModelName, validateCsqaRunConfig } from '../star/run_configs';
import { CSQA_RUN_PRESETS, csqaRunConfig, type CsqaRunConfig } from '../star/tasks/csqa_run';
import { EXEMPLARS } from '../star/tasks/csqa_exemplars';
import type { Mode } from '../star/types';

export type CsqaPresetName = keyof typeof CSQA_RUN_PRESETS;

export type ModelChoice =
  | { kind: 'preset'; name: HubPresetName }
  | { kind: 'repo'; repo: string }
  /** Names of the files the user picked (the files themselves go to the worker as they are). */
  | { kind: 'local'; names: string[] };

export type DataChoice = { kind: 'hub' } | { kind: 'file'; name: string | null };

export interface CsqaFormValues {
  preset: CsqaPresetName;
  model: ModelChoice;
  data: DataChoice;
  mode: Mode;
  iterations: number;
  /** Questions sampled per iteration (the config's star.trainSize). */
  trainSize: number;
  /** Questions held out for evaluation (star.evalSize). */
  evalSize: number;
  fewShot: number;
  /** 0: full fine-tuning. */
  loraRank: number;
  loraTargets: LoraTarget[];
  fewShotInTraining: boolean;
  trainBatch: number;
  seed: number;
}

/** Files a model needs; a picked folder may hold more (they are ignored). */
export const MODEL_FILES = ['config.json', 'model.safetensors (or model.safetensors.index.json and its shards)', 'tokenizer.json', 'tokenizer_config.json'];

/** The knobs as a preset sets them (the model and data choices are kept by the form). */
export function presetValues(preset: CsqaPresetName): Omit<CsqaFormValues, 'model' | 'data'> {
  const p = CSQA_RUN_PRESETS[preset];
  return {
    preset, mode: p.star.mode, iterations: p.star.iterations, trainSize: p.star.trainSize, evalSize: p.star.evalSize,
    fewShot: p.fewShot, loraRank: p.lora?.rank ?? 0, loraTargets: p.lora?.targets ?? ['q', 'v'],
    fewShotInTraining: p.fewShotInTraining, trainBatch: p.trainBatch, seed: p.star.seed,
  };
}

function modelName(m: ModelChoice): string {
  if (m.kind === 'preset') return HUB_PRESETS[m.name].repo;
  if (m.kind === 'repo') {
    const repo = m.repo.trim();
    if (!isRepoId(repo)) throw new Error(`"${repo}" is not a Hub repo id: type owner/name, like ${HUB_PRESETS['smollm2-135m'].repo}.`);
    return repo;
  }
  if (m.names.length === 0) throw new Error(`Pick the model's files (${MODEL_FILES.join(', ')}), or its folder.`);
  if (!m.names.includes('config.json')) throw new Error(`The picked files have no config.json. A model needs ${MODEL_FILES.join(', ')}.`);
  return localModelName(m.names);
}

const int = (name: string, v: number, min: number, max = Infinity) => {
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} must be a whole number${max === Infinity ? ` of at least ${min}` : ` from ${min} to ${max}`}, got ${Number.isNaN(v) ? 'nothing' : v}.`);
  return v;
};

/** The run config the form describes; throws a message naming the field to fix. */
export function csqaConfigFromForm(v: CsqaFormValues): CsqaRunConfig {
  const model = modelName(v.model);
  if (v.data.kind === 'file' && !v.data.name) throw new Error('Pick a JSONL file of questions (the official CommonsenseQA format), or use the Hub dataset.');
  const data = v.data.kind === 'hub' ? 'hub' : v.data.name!;
  int('Iterations', v.iterations, 0, 100);
  int('Sample size', v.trainSize, 1);
  int('Held-out questions', v.evalSize, 1);
  int('Few-shot exemplars', v.fewShot, 0, EXEMPLARS.length);
  int('LoRA rank', v.loraRank, 0, 256);
  int('Train batch', v.trainBatch, 1, 64);
  int('Seed', v.seed, 0, 2 ** 31);
  if (v.loraRank > 0 && v.loraTargets.length === 0) throw new Error(`Pick at least one LoRA target (${LORA_TARGETS.join(', ')}), or set the rank to 0 for full fine-tuning.`);
  const base = csqaRunConfig(v.preset, {
    model, data, mode: v.mode, iterations: v.iterations, seed: v.seed, fewShotInTraining: v.fewShotInTraining,
    loraRank: v.loraRank, loraTargets: v.loraRank > 0 ? LORA_TARGETS.filter((t) => v.loraTargets.includes(t)) : undefined,
  });
  const cfg: CsqaRunConfig = {
    ...base, fewShot: v.fewShot, trainBatch: v.trainBatch,
    // The pool holds at least one iteration's sample; the worker caps it at the questions there are.
    star: { ...base.star, trainSize: v.trainSize, poolSize: Math.max(base.star.poolSize, v.trainSize), evalSize: v.evalSize },
  };
  validateCsqaRunConfig(cfg);
  return cfg;
}
