// LoRA adapters as Hugging Face PEFT saves them, so adapters trained here load with
// `PeftModel.from_pretrained(base, folder)` and PEFT adapters load here:
//   adapter_model.safetensors  tensors named base_model.model.model.layers.{l}.self_attn.q_proj.lora_A.weight
//                              ([r, in]) and ...lora_B.weight ([out, r]), float32
//   adapter_config.json        {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", ...], ...}
// and, when asked, the merged model (W + alpha/r·B·A in every targeted weight) under the base model's
// own names, as model.safetensors, for tools that know nothing of adapters.

import type { ModelConfig } from '../model/config';
import { LORA_MODULES, LORA_TARGETS, layoutLora, type LoraConfig, type LoraTarget, mergeLora, validateLora } from '../model/lora';
import { layoutParams, type ParamLayout, type ParamTensors } from '../model/params';
import { preview } from '../util/preview';
import { finiteTensorF32, parseSafetensors, writeSafetensors } from './safetensors';

export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const ADAPTER_CONFIG = 'adapter_config.json';
export const MERGED_WEIGHTS = 'model.safetensors';

/** PEFT's module name of a target: q -> q_proj. */
const moduleOf = (t: LoraTarget) => LORA_MODULES[t].split('.')[1];

/** adapter_config.json for `lora` on the base model `baseModel` (a Hub id or a path). */
export function peftConfig(lora: LoraConfig, baseModel: string): Record<string, unknown> {
  return {
    base_model_name_or_path: baseModel,
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: lora.rank,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: LORA_TARGETS.filter((t) => lora.targets.includes(t)).map(moduleOf),
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    use_rslora: false,
    use_dora: false,
  };
}

/**
 * The LoraConfig of an adapter_config.json, refusing what this engine cannot run (rsLoRA or DoRA scaling,
 * per-layer ranks, biases, a subset of layers). Dropout acts only in training, so it is read as 0.
 */
export function parsePeftConfig(cfg: ModelConfig, json: string, fileName = ADAPTER_CONFIG): LoraConfig {
  const fail = (msg: string): never => {
    throw new Error(`${fileName}: ${msg}`);
  };
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(json) as Record<string, unknown>;
  } catch (e) {
    return fail(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) fail('not a JSON object');
  if (c.peft_type !== 'LORA') fail(`peft_type is ${preview(c.peft_type)}; only "LORA" adapters are supported`);
  if (c.use_rslora === true || c.use_dora === true) fail('rsLoRA and DoRA adapters are not supported');
  if ((c.bias ?? 'none') !== 'none') fail(`bias ${preview(c.bias)} is not supported; only "none"`);
  if (c.fan_in_fan_out === true) fail('fan_in_fan_out (Conv1D weights) is not supported');
  for (const k of ['rank_pattern', 'alpha_pattern']) {
    if (c[k] && Object.keys(c[k] as object).length > 0) fail(`${k} (per-layer ranks or alphas) is not supported`);
  }
  if (c.layers_to_transform != null) fail('layers_to_transform (adapters on some layers only) is not supported');
  if (!Array.isArray(c.target_modules)) fail('target_modules must be a list of module names such as ["q_proj", "v_proj"]');
  const targets = (c.target_modules as unknown[]).map((m) => {
    const t = LORA_TARGETS.find((x) => moduleOf(x) === m);
    return t ?? fail(`target module ${preview(m)} is not one of ${LORA_TARGETS.map(moduleOf).join(', ')}`);
  });
  try {
    return validateLora(cfg, { rank: c.r as number, alpha: c.lora_alpha as number, targets, dropout: 0 });
  } catch (e) {
    return fail((e as Error).message);
  }
}

function writeTensors(layout: ParamLayout, tensors: ParamTensors): Uint8Array {
  return writeSafetensors(
    layout.entries.map((e) => {
      const data = tensors.get(e.name);
      if (!data || data.length !== e.size) throw new Error(`PEFT export: tensor ${e.name} is missing or not ${e.shape.join('x')}`);
      return { name: e.name, data, shape: e.shape };
    }),
    { format: 'pt' },
  );
}

/**
 * The files of a PEFT adapter folder, by file name; with `base` (the frozen base model's tensors) also
 * the merged model as model.safetensors.
 */
export function exportPeft(
  cfg: ModelConfig,
  lora: LoraConfig,
  adapters: ParamTensors,
  opts: { baseModel: string; base?: ParamTensors },
): Map<string, Uint8Array> {
  validateLora(cfg, lora);
  const files = new Map<string, Uint8Array>([
    [ADAPTER_WEIGHTS, writeTensors(layoutLora(cfg, lora), adapters)],
    [ADAPTER_CONFIG, new TextEncoder().encode(JSON.stringify(peftConfig(lora, opts.baseModel), null, 2) + '\n')],
  ]);
  if (opts.base) files.set(MERGED_WEIGHTS, writeTensors(layoutParams(cfg), mergeLora(cfg, lora, opts.base, adapters)));
  return files;
}

/** A PEFT adapter folder's two files, checked against the model: its config and every adapter tensor. */
export function importPeft(cfg: ModelConfig, files: { config: string; weights: Uint8Array }): { lora: LoraConfig; adapters: ParamTensors } {
  const lora = parsePeftConfig(cfg, files.config);
  const file = parseSafetensors(files.weights, ADAPTER_WEIGHTS);
  const layout = layoutLora(cfg, lora);
  const adapters: ParamTensors = new Map();
  for (const e of layout.entries) {
    const info = Object.hasOwn(file.header, e.name) ? file.header[e.name] : undefined;
    if (!info) throw new Error(`${ADAPTER_WEIGHTS}: missing tensor ${e.name} (rank ${lora.rank} on ${lora.targets.join(', ')})`);
    if (info.shape.join('x') !== e.shape.join('x')) throw new Error(`${ADAPTER_WEIGHTS}: ${e.name} has shape ${info.shape.join('x')}, expected ${e.shape.join('x')}`);
    adapters.set(e.name, finiteTensorF32(file, e.name));
  }
  const extra = Object.keys(file.header).find((n) => !layout.byName.has(n));
  if (extra) throw new Error(`${ADAPTER_WEIGHTS}: tensor ${extra} does not belong to a LoRA adapter of ${ADAPTER_CONFIG}`);
  return { lora, adapters };
}
