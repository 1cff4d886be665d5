// The CommonsenseQA start form's values -> run config, and the checks on configs and labels around it
// (no page: the mapping and its messages are plain functions).
import { describe, expect, it } from 'vitest';
import { HUB_PRESETS } from '../../src/hub/presets';
import { validateAnyRunConfig, validateCsqaRunConfig } from '../../src/star/run_configs';
import { csqaRunConfig } from '../../src/star/tasks/csqa_run';
import { csqaConfigFromForm, type CsqaFormValues, presetValues } from '../../src/ui/csqa_values';
import { byCategory, categoryLabel } from '../../src/ui/format';
import { problemLine } from '../../src/ui/stream';

const form = (o: Partial<CsqaFormValues> = {}, preset: CsqaFormValues['preset'] = 'quick'): CsqaFormValues => ({
  ...presetValues(preset), model: { kind: 'preset', name: 'smollm2-135m' }, data: { kind: 'hub' }, ...o,
});

describe('the CommonsenseQA form as a run config', () => {
  it('left as the preset fills it, gives exactly the preset (SmolLM2-135M, the Hub dataset)', () => {
    expect(csqaConfigFromForm(form())).toEqual(csqaRunConfig('quick'));
    expect(csqaConfigFromForm(form({}, 'micro'))).toEqual(csqaRunConfig('micro'));
    expect(csqaRunConfig('quick').model).toBe(HUB_PRESETS['smollm2-135m'].repo);
  });

  it('carries every knob into the config: mode, iterations, sample, held out, few-shot, LoRA, batch, seed', () => {
    const cfg = csqaConfigFromForm(form({
      model: { kind: 'repo', repo: '  Qwen/Qwen2.5-0.5B-Instruct ' }, data: { kind: 'file', name: 'dev.jsonl' },
      mode: 'star-no-rationalization', iterations: 3, trainSize: 3000, evalSize: 50, fewShot: 2,
      loraRank: 4, loraTargets: ['down', 'q'], fewShotInTraining: true, trainBatch: 2, seed: 9,
    }));
    expect(cfg).toMatchObject({ model: 'Qwen/Qwen2.5-0.5B-Instruct', data: 'dev.jsonl', fewShot: 2, fewShotInTraining: true, trainBatch: 2 });
    expect(cfg.lora).toEqual({ rank: 4, alpha: 8, targets: ['q', 'down'], dropout: 0 }); // alpha/rank kept at the preset's 2
    expect(cfg.star).toMatchObject({ mode: 'star-no-rationalization', rationalize: false, iterations: 3, trainSize: 3000, evalSize: 50, seed: 9 });
    expect(cfg.star.poolSize).toBe(3000); // raised to hold one sample; the worker caps it at the data
    expect(csqaConfigFromForm(form({ loraRank: 0 })).lora).toBeNull();
  });

  it('names local files in the config, and requires a config.json among them', () => {
    const names = ['tokenizer.json', 'config.json', 'model.safetensors', 'tokenizer_config.json'];
    expect(csqaConfigFromForm(form({ model: { kind: 'local', names } })).model).toBe('local files: config.json, model.safetensors, tokenizer.json, tokenizer_config.json');
    expect(() => csqaConfigFromForm(form({ model: { kind: 'local', names: [] } }))).toThrow(/Pick the model's files \(config.json, model.safetensors/);
    expect(() => csqaConfigFromForm(form({ model: { kind: 'local', names: ['model.safetensors'] } }))).toThrow(/have no config.json/);
  });

  it('refuses what cannot run, naming the field', () => {
    expect(() => csqaConfigFromForm(form({ model: { kind: 'repo', repo: 'just-a-name' } }))).toThrow(/"just-a-name" is not a Hub repo id: type owner\/name/);
    expect(() => csqaConfigFromForm(form({ data: { kind: 'file', name: null } }))).toThrow(/Pick a JSONL file of questions/);
    expect(() => csqaConfigFromForm(form({ fewShot: 8 }))).toThrow(/Few-shot exemplars must be a whole number from 0 to 7, got 8/);
    expect(() => csqaConfigFromForm(form({ trainSize: Number.NaN }))).toThrow(/Sample size must be a whole number of at least 1, got nothing/);
    expect(() => csqaConfigFromForm(form({ loraRank: 4, loraTargets: [] }))).toThrow(/at least one LoRA target/);
    expect(() => csqaConfigFromForm(form({ iterations: 2.5 }))).toThrow(/Iterations must be a whole number from 0 to 100, got 2.5/);
  });
});

describe('validating a stored or imported CommonsenseQA config', () => {
  it('accepts the presets and lists every bad field at once', () => {
    validateCsqaRunConfig(csqaRunConfig('quick'));
    validateAnyRunConfig(csqaRunConfig('micro'));
    const bad = { ...csqaRunConfig('quick'), fewShot: 9, maxSeq: 4, lora: { rank: 0, alpha: 1, targets: ['ears'], dropout: 0.1 }, extra: 1 };
    expect(() => validateCsqaRunConfig(bad as never)).toThrow(
      /unknown field "extra"[\s\S]*fewShot must be an integer 0\.\.7, got 9[\s\S]*maxSeq must be an integer >= 16[\s\S]*lora\.rank[\s\S]*lora\.dropout must be 0[\s\S]*lora\.targets must list/,
    );
    expect(() => validateAnyRunConfig({ ...csqaRunConfig('quick'), task: 'chess' } as never)).toThrow(/Unknown task "chess"\. Known tasks: arithmetic, csqa/);
  });
});

describe('labels the live view shows for either task', () => {
  it('per-category keys: digit counts in numeric order, answer labels in letter order', () => {
    expect(['10', '2', '1'].sort(byCategory)).toEqual(['1', '2', '10']);
    expect(['(c)', '(a)', '(e)'].sort(byCategory)).toEqual(['(a)', '(c)', '(e)']);
    expect(categoryLabel('1')).toBe('1 digit');
    expect(categoryLabel('(b)')).toBe('answer (b)');
  });

  it('the question a prompt asks: the arithmetic operands, or the last question after any few-shot exemplars', () => {
    expect(problemLine('Input:\n2 9 + 5 7\nTarget:\n')).toBe('2 9 + 5 7');
    const prompt = 'Q: An exemplar?\nAnswer Choices:\n(a) x\n(b) y\nA: Because. Therefore, the answer is x (a).\n\nQ: Where is milk kept?\nAnswer Choices:\n(a) fridge (CORRECT)\n(b) oven\nA:';
    expect(problemLine(prompt)).toBe('Where is milk kept?');
  });
});
