// The task registry: every task a run config can name is registered under that name, validates its own
// configs, and describes itself; an unknown name is refused with the known ones.

import { describe, expect, it } from 'vitest';
import { runConfig } from '../../src/star/run_config';
import { validateAnyRunConfig } from '../../src/star/run_configs';
import { csqaRunConfig } from '../../src/star/tasks/csqa_run';
import { MemoryStore } from '../../src/star/stores/memory';
import { TASK_NAMES, taskNamed, taskOf } from '../../src/star/tasks/registry';

describe('the task registry', () => {
  const arith = runConfig('demo');
  const csqa = csqaRunConfig('quick');
  const configs = [arith, csqa];

  it('registers each task under the name its configs carry', () => {
    expect(TASK_NAMES).toEqual(['arithmetic', 'csqa']);
    for (const cfg of configs) expect(taskOf(cfg).name).toBe(cfg.task);
  });

  it('lets each task validate and describe its own configs', () => {
    for (const cfg of configs) expect(() => taskOf(cfg).validate(cfg)).not.toThrow();
    expect(() => validateAnyRunConfig({ ...arith, trainBatch: 0 })).toThrow(/trainBatch must be a positive integer/);
    expect(() => validateAnyRunConfig({ ...csqa, fewShot: -1 })).toThrow(/fewShot must be an integer/);
    expect(taskOf(arith).scope(arith)).toBe('1–3 digits');
    expect(taskOf(arith).describe(arith)).toContain('arithmetic-tiny model · star · 1–3 digits · 4 iterations');
    expect(taskOf(csqa).scope(csqa)).toBe('CommonsenseQA');
    expect(taskOf(csqa).modelLabel(csqa)).toMatch(/^CSQA /);
    expect(taskOf(arith).checksRationales(arith)).toBe(true);
    expect(taskOf(csqa).checksRationales(csqa)).toBe(false);
    expect(new Set(TASK_NAMES.map((t) => taskNamed(t).heatmapTitle)).size).toBe(TASK_NAMES.length);
  });

  it('builds each run\'s task adapter from its config and what is stored with it', async () => {
    const store = new MemoryStore();
    const a = await taskOf(arith).runTask(arith, store);
    const p = a!.task.evalProblems(3, 1)[0];
    expect(a!.expected(p)).toBe(a!.task.answerOf(a!.task.directTarget(p)));
    expect(await taskOf(csqa).runTask(csqa, store)).toBeNull(); // its questions are not stored
    const q = { id: 'q1', stem: 'Where do fish live?', choices: ['sky', 'water', 'desk', 'road', 'moon'].map((text, i) => ({ label: 'ABCDE'[i], text })), answerKey: 'B', concept: '' };
    await store.putJSON('csqa-questions', { train: [q], eval: [q] });
    const c = await taskOf(csqa).runTask(csqa, store);
    expect(c!.expected(c!.task.evalProblems(1, 1)[0])).toBe('b (water)');
  });

  it('says what an archive needs: problems per iteration, the model\'s shapes, the final model\'s files', () => {
    expect(taskOf(arith).sampleSize(arith)).toBe(arith.star.trainSize);
    expect(taskOf(csqa).sampleSize(csqa)).toBeNull(); // without its questions, unknown
    expect(taskOf(csqa).sampleSize(csqa, { train: [1, 2, 3] })).toBe(3); // capped at the pool
    expect(taskOf(arith).presetModel(arith)).toMatchObject({ dModel: 64, nLayers: 2 });
    expect(taskOf(csqa).presetModel(csqa)).toBeNull();
    const w = new Uint8Array([1, 2, 3]);
    const files = taskOf(arith).finalModel(arith, w, undefined);
    expect(files.map(([f]) => f)).toEqual(['config.json', 'model.safetensors']);
    expect(files[0][1]).toMatchObject({ model_type: 'llama', star_tokenizer: 'arithmetic-char' });
    expect(files[1][1]).toBe(w);
    expect(taskOf(csqa).finalModel(csqa, w, undefined).map(([f]) => f)).toEqual(['adapter_config.json', 'adapter_model.safetensors']); // LoRA
    expect(taskOf(csqa).finalModel({ ...csqa, lora: null }, w, undefined)).toEqual([]); // no config.json stored: nothing to write
  });

  it('describes every phase and the paper\'s result per task, following an arithmetic run\'s recipe', () => {
    for (const t of TASK_NAMES) {
      const phases = taskNamed(t).phases();
      expect(Object.keys(phases).sort()).toEqual(['evaluate', 'filter', 'finetune', 'generate', 'rationalize', 'seed']);
      expect(taskNamed(t).paper.result).toMatch(/^\d+\.\d%$/);
    }
    expect(taskOf(csqa).phases(csqa).seed.title).toBe('Base model');
    expect(taskOf(arith).phases(arith).seed.text).toMatch(/ships with the app/);
    expect(taskOf(arith).phases({ ...arith, base: 'scratch' }).seed.text).toMatch(/trained from scratch/);
  });

  it('refuses a task it does not know, naming the ones it does', () => {
    expect(() => taskNamed('chess')).toThrow('Unknown task "chess". Known tasks: arithmetic, csqa.');
    expect(() => validateAnyRunConfig({ ...arith, task: 'chess' } as never)).toThrow(/Known tasks: arithmetic, csqa/);
    expect(() => taskNamed(undefined)).toThrow('Unknown task undefined.');
  });
});
