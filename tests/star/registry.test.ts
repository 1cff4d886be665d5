// The task registry: every task a run config can name is registered under that name, validates its own
// configs, and describes itself; an unknown name is refused with the known ones.

import { describe, expect, it } from 'vitest';
import { runConfig } from '../../src/star/run_config';
import { validateAnyRunConfig } from '../../src/star/run_configs';
import { csqaRunConfig } from '../../src/star/tasks/csqa_run';
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

  it('refuses a task it does not know, naming the ones it does', () => {
    expect(() => taskNamed('chess')).toThrow('Unknown task "chess". Known tasks: arithmetic, csqa.');
    expect(() => validateAnyRunConfig({ ...arith, task: 'chess' } as never)).toThrow(/Known tasks: arithmetic, csqa/);
    expect(() => taskNamed(undefined)).toThrow('Unknown task undefined.');
  });
});
