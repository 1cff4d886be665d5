// The CommonsenseQA part of the start form: the model (a preset, any Hub repo id, or local files), the
// questions (the Hub dataset or a local JSONL file), a preset and the knobs of the run. It hands back
// the config (./csqa_values.ts) and the picked files, which go to the worker as they are.

import { HUB_PRESETS, type HubPresetName, DEFAULT_HUB_MODEL } from '../hub/presets';
import { LORA_TARGETS, type LoraTarget } from '../model/lora';
import { CSQA_RUN_PRESETS, type CsqaRunConfig } from '../star/tasks/csqa_run';
import { MODES, type Mode } from '../star/types';
import type { CsqaFiles } from '../worker/api';
import { csqaConfigFromForm, type CsqaFormValues, type CsqaPresetName, MODEL_FILES, presetValues } from './csqa_values';
import { field, h } from './dom';

export interface CsqaForm {
  el: HTMLElement;
  /** The config the fields describe (throws a message naming the field to fix). */
  config(): CsqaRunConfig;
  files(): CsqaFiles;
}

const PRESET_LABELS: Record<CsqaPresetName, string> = {
  micro: 'Micro: 2 questions, 1 iteration (a machinery check)',
  quick: 'Quick: 256 questions × 4 iterations (a first curve)',
};

const MODE_LABELS: Record<Mode, string> = {
  star: 'STaR (with rationalization)',
  'star-no-rationalization': 'STaR without rationalization',
  direct: 'Direct (answers only, no rationales)',
  base: 'Base model only (few-shot evaluation)',
};

const num = (value: number, min: number, max: number, testid?: string) => h('input', { type: 'number', value: String(value), min: String(min), max: String(max), step: '1', testid });

/** `onChange(slow)`: a field changed; `slow` while a repo id is being typed (each estimate asks the Hub). */
export function csqaForm(onChange: (slow?: boolean) => void): CsqaForm {
  const model = h('select', { testid: 'csqa-model' },
    ...Object.entries(HUB_PRESETS).map(([k, p]) => h('option', { value: k, text: `${p.repo.split('/')[1]} (${p.params})` })),
    h('option', { value: 'repo', text: 'Another Hub repo…' }),
    h('option', { value: 'local', text: 'Load from local files…' }));
  model.value = DEFAULT_HUB_MODEL;
  const repo = h('input', { type: 'text', testid: 'csqa-repo', placeholder: 'owner/name', spellcheck: false, autocomplete: 'off' });
  const modelFiles = h('input', { type: 'file', multiple: true, testid: 'csqa-model-files', accept: '.json,.safetensors' });
  const modelFolder = h('input', { type: 'file', testid: 'csqa-model-folder' });
  modelFolder.webkitdirectory = true;
  const picked = h('p', { class: 'small muted', testid: 'csqa-model-picked' });
  const modelNote = h('p', { class: 'small muted' });
  let localFiles: File[] = [];

  const data = h('select', { testid: 'csqa-data' },
    h('option', { value: 'hub', text: 'tau/commonsense_qa (Hub, about 2 MB)' }),
    h('option', { value: 'file', text: 'A local JSONL file…' }));
  const dataFile = h('input', { type: 'file', testid: 'csqa-data-file', accept: '.jsonl,.json,application/jsonl,text/plain' });

  const preset = h('select', { testid: 'csqa-preset' }, ...(Object.keys(CSQA_RUN_PRESETS) as CsqaPresetName[]).map((p) => h('option', { value: p, text: PRESET_LABELS[p] })));
  preset.value = 'quick';
  const mode = h('select', { testid: 'csqa-mode' }, ...MODES.slice().reverse().map((m) => h('option', { value: m, text: MODE_LABELS[m] })));
  const iterations = num(4, 0, 100, 'csqa-iterations');
  const trainSize = num(256, 1, 100000, 'csqa-train-size');
  const evalSize = num(200, 1, 100000, 'csqa-eval-size');
  const fewShot = num(7, 0, 7, 'csqa-few-shot');
  const rank = num(8, 0, 256, 'csqa-lora-rank');
  const targets = new Map(LORA_TARGETS.map((t) => [t, h('input', { type: 'checkbox', value: t })]));
  const fewShotInTraining = h('input', { type: 'checkbox', testid: 'csqa-few-shot-in-training' });
  const trainBatch = num(4, 1, 64, 'csqa-train-batch');
  const seed = num(1, 0, 2 ** 31, 'csqa-seed');

  const modelChoice = (): CsqaFormValues['model'] =>
    model.value === 'repo' ? { kind: 'repo', repo: repo.value }
    : model.value === 'local' ? { kind: 'local', names: localFiles.map((f) => f.name) }
    : { kind: 'preset', name: model.value as HubPresetName };

  const values = (): CsqaFormValues => ({
    preset: preset.value as CsqaPresetName, model: modelChoice(),
    data: data.value === 'hub' ? { kind: 'hub' } : { kind: 'file', name: dataFile.files?.[0]?.name ?? null },
    mode: mode.value as Mode, iterations: Number(iterations.value), trainSize: Number(trainSize.value), evalSize: Number(evalSize.value),
    fewShot: Number(fewShot.value), loraRank: Number(rank.value),
    loraTargets: LORA_TARGETS.filter((t) => targets.get(t)!.checked), fewShotInTraining: fewShotInTraining.checked,
    trainBatch: Number(trainBatch.value), seed: Number(seed.value),
  });

  const load = () => {
    const v = presetValues(preset.value as CsqaPresetName);
    mode.value = v.mode;
    iterations.value = String(v.iterations);
    trainSize.value = String(v.trainSize);
    evalSize.value = String(v.evalSize);
    fewShot.value = String(v.fewShot);
    rank.value = String(v.loraRank);
    for (const [t, box] of targets) box.checked = v.loraTargets.includes(t as LoraTarget);
    fewShotInTraining.checked = v.fewShotInTraining;
    trainBatch.value = String(v.trainBatch);
    seed.value = String(v.seed);
  };

  const repoRow = field('Hub repo id', repo, 'A Llama-family model (llama, qwen2 or mistral) with safetensors weights and a tokenizer.json.');
  const localRow = h('div', { class: 'field' },
    h('span', { class: 'field-label', text: 'Model files' }),
    h('div', { class: 'row' }, h('label', { class: 'file-pick' }, 'Files… ', modelFiles), h('label', { class: 'file-pick' }, 'Folder… ', modelFolder)),
    h('span', { class: 'field-hint', text: `Pick ${MODEL_FILES.join(', ')}, or the folder that holds them.` }),
    picked);
  const targetRow = h('div', { class: 'field' }, h('span', { class: 'field-label', text: 'LoRA targets' }),
    h('div', { class: 'targets' }, ...[...targets].map(([t, box]) => h('label', { class: 'target' }, box, ` ${t}`))));

  const sync = () => {
    repoRow.hidden = model.value !== 'repo';
    localRow.hidden = model.value !== 'local';
    dataFile.hidden = data.value !== 'file';
    const p = HUB_PRESETS[model.value as HubPresetName] as (typeof HUB_PRESETS)[HubPresetName] | undefined;
    modelNote.textContent = p ? p.note : '';
    for (const box of targets.values()) box.disabled = Number(rank.value) === 0;
    picked.textContent = localFiles.length ? `Picked: ${localFiles.map((f) => f.name).join(', ')}` : 'Nothing picked yet.';
  };

  const pickFrom = (input: HTMLInputElement) => {
    // A folder holds more than the model (a README, other formats): keep what a model is made of.
    localFiles = Array.from(input.files ?? []).filter((f) => /\.(json|safetensors)$/.test(f.name));
    sync();
    onChange();
  };
  modelFiles.addEventListener('change', () => pickFrom(modelFiles));
  modelFolder.addEventListener('change', () => pickFrom(modelFolder));
  preset.addEventListener('change', () => {
    load();
    sync();
    onChange();
  });
  for (const c of [model, data, dataFile, mode, iterations, trainSize, evalSize, fewShot, rank, fewShotInTraining, trainBatch, seed, ...targets.values()]) {
    c.addEventListener(c instanceof HTMLSelectElement || c.type === 'file' || c.type === 'checkbox' ? 'change' : 'input', () => {
      sync();
      onChange();
    });
  }
  repo.addEventListener('input', () => onChange(true));

  const el = h('div', { class: 'csqa-form', testid: 'csqa-form' },
    field('Model', model), modelNote, repoRow, localRow,
    field('Questions', data, 'The Hub dataset is downloaded once and kept; a local file must be in the official JSONL format (one {"answerKey", "id", "question": {"stem", "choices"}} per line).'), dataFile,
    field('Preset', preset),
    field('Mode', mode),
    h('div', { class: 'row' }, field('Iterations', iterations), field('Sample size', trainSize, 'questions per iteration'), field('Held out', evalSize, 'for evaluation')),
    h('div', { class: 'row' }, field('Few-shot', fewShot, 'exemplars, 0–7'), field('LoRA rank', rank, '0 = full fine-tuning'), field('Train batch', trainBatch)),
    targetRow,
    h('label', { class: 'check small' }, fewShotInTraining, ' Train under the few-shot prompt too (default: the bare question)'),
    field('Seed', seed),
  );
  load();
  sync();
  return {
    el,
    config: () => csqaConfigFromForm(values()),
    files: () => ({
      model: model.value === 'local' ? localFiles : undefined,
      data: data.value === 'file' ? dataFile.files?.[0] : undefined,
    }),
  };
}
