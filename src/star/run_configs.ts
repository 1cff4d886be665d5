// The two kinds of run, as one union discriminated by `task`: arithmetic (RunConfig, ./run_config.ts) and
// CommonsenseQA on a pretrained model (CsqaRunConfig, ./tasks/csqa_run.ts). Configs that come back from
// storage or from an imported archive are checked here, field by field, before anything runs on them.

import { LORA_TARGETS, type LoraTarget } from '../model/lora';
import { DEFAULT_OPTIM } from '../train/config';
import { validateStarConfig } from './config';
import type { RunConfig } from './run_config';
import { EXEMPLARS } from './tasks/csqa_exemplars';
import type { CsqaRunConfig } from './tasks/csqa_run';
import { taskNamed } from './tasks/registry';

export type AnyRunConfig = RunConfig | CsqaRunConfig;

export type TaskName = AnyRunConfig['task'];

/** How a CommonsenseQA config names a model the user picked from disk (the file names follow). */
export const LOCAL_MODEL = 'local files';

/** "local files: config.json, model.safetensors, ..." for a config's `model`. */
export function localModelName(names: string[]): string {
  return `${LOCAL_MODEL}: ${[...new Set(names)].sort().join(', ')}`;
}

export const isLocalModel = (cfg: CsqaRunConfig): boolean => cfg.model.startsWith(`${LOCAL_MODEL}:`);

const CSQA_FIELDS = ['task', 'model', 'data', 'evalData', 'fewShot', 'fewShotInTraining', 'lora', 'maxNewTokens', 'maxSeq', 'star', 'optim', 'trainBatch', 'genBatch'];

const isInt = (v: unknown, min: number, max = Infinity) => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/** Throws one error listing every bad field of a CommonsenseQA run config. */
export function validateCsqaRunConfig(cfg: CsqaRunConfig): void {
  const errors: string[] = [];
  const check = (ok: boolean, message: string) => void (ok || errors.push(message));
  for (const key of Object.keys(cfg)) check(CSQA_FIELDS.includes(key), `unknown field "${key}"`);
  check(typeof cfg.model === 'string' && cfg.model.trim() !== '', 'model must name a Hub repo, a preset or a folder');
  check(typeof cfg.data === 'string' && cfg.data.trim() !== '', 'data must be "hub" or a JSONL file');
  check(typeof cfg.evalData === 'string', 'evalData must be a JSONL file or ""');
  check(isInt(cfg.fewShot, 0, EXEMPLARS.length), `fewShot must be an integer 0..${EXEMPLARS.length}, got ${JSON.stringify(cfg.fewShot)}`);
  check(typeof cfg.fewShotInTraining === 'boolean', 'fewShotInTraining must be true or false');
  check(isInt(cfg.maxNewTokens, 1), `maxNewTokens must be an integer >= 1, got ${JSON.stringify(cfg.maxNewTokens)}`);
  check(isInt(cfg.maxSeq, 16), `maxSeq must be an integer >= 16, got ${JSON.stringify(cfg.maxSeq)}`);
  for (const k of ['trainBatch', 'genBatch'] as const) check(isInt(cfg[k], 1), `${k} must be a positive integer, got ${JSON.stringify(cfg[k])}`);
  const l = cfg.lora;
  if (l !== null) {
    if (typeof l !== 'object' || l === undefined) errors.push('lora must be {rank, alpha, targets, dropout} or null (full fine-tuning)');
    else {
      check(isInt(l.rank, 1), `lora.rank must be a positive integer, got ${JSON.stringify(l.rank)}`);
      check(typeof l.alpha === 'number' && Number.isFinite(l.alpha) && l.alpha > 0, `lora.alpha must be a positive number, got ${JSON.stringify(l.alpha)}`);
      check(l.dropout === 0, `lora.dropout must be 0, got ${JSON.stringify(l.dropout)}`);
      const ok = Array.isArray(l.targets) && l.targets.length > 0 && l.targets.every((t) => LORA_TARGETS.includes(t as LoraTarget)) && new Set(l.targets).size === l.targets.length;
      check(ok, `lora.targets must list distinct targets among ${LORA_TARGETS.join(', ')}, got ${JSON.stringify(l.targets)}`);
    }
  }
  const o = cfg.optim as unknown as Record<string, unknown> | undefined;
  if (typeof o !== 'object' || o === null) errors.push('optim must be an object');
  else for (const [k, v] of Object.entries(DEFAULT_OPTIM)) check(typeof o[k] === typeof v, `optim.${k} is missing or not a ${typeof v}`);
  if (errors.length > 0) throw new Error(`Invalid CommonsenseQA run config:\n  - ${errors.join('\n  - ')}`);
  validateStarConfig(cfg.star);
}

/** Any task's config (./tasks/registry.ts); throws a message naming the bad field (or the unknown task). */
export function validateAnyRunConfig(cfg: AnyRunConfig): void {
  if (typeof cfg !== 'object' || cfg === null) throw new Error('A run config must be an object.');
  taskNamed((cfg as { task?: unknown }).task).validate(cfg);
}
