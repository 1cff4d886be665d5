// The CommonsenseQA task: prompt shape, few-shot prefix, the rationalization hint and its removal, answer
// parsing, where a completion ends, and the TaskAdapter as the loop uses it.
import { describe, expect, it } from 'vitest';
import {
  answerSentence, csqaEnd, csqaTask, type CsqaProblem, fewShotPrefix, HINT, parseAnswer, questionBlock, removeHint,
} from '../../src/star/tasks/csqa';
import { EXEMPLARS } from '../../src/star/tasks/csqa_exemplars';

const P: CsqaProblem = {
  id: 'p1',
  stem: 'Where would you put a hot dog to keep it warm?',
  choices: [
    { label: 'A', text: 'dog' },
    { label: 'B', text: 'hot dog bun' },
    { label: 'C', text: 'oven' },
    { label: 'D', text: 'freezer' },
    { label: 'E', text: 'Mailbox' },
  ],
  answerKey: 'C',
  concept: 'hot dog',
};

describe('prompts', () => {
  it('has the paper\'s shape, labels lowercase, ending in "A:"', () => {
    expect(questionBlock(P)).toBe(
      'Q: Where would you put a hot dog to keep it warm?\nAnswer Choices:\n(a) dog\n(b) hot dog bun\n(c) oven\n(d) freezer\n(e) Mailbox\nA:',
    );
    expect(answerSentence(P)).toBe('Therefore, the answer is oven (c).');
  });

  it('the hint marks only the right choice, and removeHint gives back the plain prompt', () => {
    const hinted = questionBlock(P, true);
    expect(hinted).toContain('(c) oven (CORRECT)\n');
    expect(hinted.split(HINT.trim()).length).toBe(2);
    expect(removeHint(hinted)).toBe(questionBlock(P));
    expect(removeHint('Ovens keep food warm (correct) so')).toBe('Ovens keep food warm so');
  });

  it('our exemplars: 7 solved questions, labels spread over a-e, each parseable as correct', () => {
    expect(EXEMPLARS).toHaveLength(7);
    expect(new Set(EXEMPLARS.map((e) => e.problem.answerKey))).toEqual(new Set(['A', 'B', 'C', 'D', 'E']));
    const prefix = fewShotPrefix(EXEMPLARS);
    expect(prefix.split('\n\n').filter(Boolean)).toHaveLength(7);
    for (const e of EXEMPLARS) expect(parseAnswer(e.problem, ` ${e.rationale} ${answerSentence(e.problem)}`)).toBe(e.problem.answerKey.toLowerCase());
    // Hinted exemplars show the hint on their own right answers.
    expect(fewShotPrefix(EXEMPLARS, true).match(/\(CORRECT\)/g)).toHaveLength(7);
  });

  it('the adapter: prefix configurable, hint only when asked, training prompt bare by default', () => {
    const task = csqaTask({ train: [P], eval: [P], fewShot: 2 });
    expect(task.prompt(P, false)).toBe(fewShotPrefix(EXEMPLARS.slice(0, 2)) + questionBlock(P));
    expect(task.prompt(P, true)).toBe(fewShotPrefix(EXEMPLARS.slice(0, 2), true) + questionBlock(P, true));
    expect(task.trainPrompt(P)).toBe(questionBlock(P));
    expect(csqaTask({ train: [P], eval: [P], fewShot: 2, fewShotInTraining: true }).trainPrompt(P)).toBe(task.prompt(P, false));
    expect(csqaTask({ train: [P], eval: [P], fewShot: 0 }).prompt(P, false)).toBe(questionBlock(P));
    expect(task.directTarget(P)).toBe(' (c).');
    expect(task.isCorrect(P, task.directTarget(P))).toBe(true);
    expect(task.category(P)).toBe('(c)');
    expect(task.toJSON(P)).toEqual({ id: 'p1', question: P.stem, answerKey: 'C' });
  });

  it('samples train and eval problems deterministically per seed', () => {
    const pool = Array.from({ length: 20 }, (_, i) => ({ ...P, id: `q${i}` }));
    const task = csqaTask({ train: pool, eval: pool.slice(0, 3) });
    expect(task.trainProblems(5, 1).map((p) => p.id)).toEqual(task.trainProblems(5, 1).map((p) => p.id));
    expect(task.trainProblems(5, 1).map((p) => p.id)).not.toEqual(task.trainProblems(5, 2).map((p) => p.id));
    expect(task.evalProblems(10, 1)).toHaveLength(3); // capped at what there is
  });
});

describe('answer parsing', () => {
  const cases: [string, string | null][] = [
    [' Ovens keep food hot. Therefore, the answer is oven (c).', 'c'],
    [' Therefore, the answer is oven (c)', 'c'], // no trailing period
    [' therefore, The Answer Is OVEN (C).', 'c'], // case
    [' So the answer is oven.', 'c'], // text without a label
    [' So the answer is "oven".\nQ: next', 'c'],
    [' The answer is (c).', 'c'],
    [' The answer is c', 'c'],
    [' The answer is: mailbox.', 'e'],
    [' The answer is the hot dog bun.', 'b'], // longest contained choice wins when it contains the others
    [' The answer is a dog or an oven.', null], // two unrelated choices: no answer
    [' The answer is freezer (c).', null], // label contradicted by another choice's exact text
    [' The answer is ovens (c).', 'c'], // label with non-exact text: the label counts
    [' The answer is (f).', null], // not a label of this question
    [' Ovens keep things warm.', null], // no answer sentence, first line not an answer
    [' (c).', 'c'], // the direct baseline's target
    [' oven', 'c'],
    ['', null],
    [' First the answer is dog (a). On reflection the answer is oven (c).', 'c'], // the last answer counts
  ];
  for (const [completion, want] of cases) {
    it(`${JSON.stringify(completion)} -> ${want}`, () => expect(parseAnswer(P, completion)).toBe(want));
  }

  it('isCorrect: right answer only, and never a completion that repeats the hint', () => {
    const task = csqaTask({ train: [P], eval: [P] });
    expect(task.isCorrect(P, ' Ovens heat food. Therefore, the answer is oven (c).')).toBe(true);
    expect(task.isCorrect(P, ' Therefore, the answer is dog (a).')).toBe(false);
    expect(task.isCorrect(P, ' It says oven (CORRECT). Therefore, the answer is oven (c).')).toBe(false);
    // A few dataset questions list the right text twice: either label, or the text alone, is right.
    const dup = { ...P, choices: P.choices.map((c) => (c.label === 'E' ? { ...c, text: 'oven' } : c)), answerKey: 'E' };
    expect(task.isCorrect(dup, ' Therefore, the answer is oven (e).')).toBe(true);
    expect(task.isCorrect(dup, ' Therefore, the answer is oven (c).')).toBe(true);
    expect(task.isCorrect(dup, ' So the answer is oven.')).toBe(true);
    expect(task.isCorrect(dup, ' So the answer is dog.')).toBe(false);
    expect(task.answerOf(' Therefore, the answer is oven (c).')).toBe('c');
    expect(task.answerOf(' so the answer is Oven.')).toBe('oven');
    expect(task.answerOf(' no idea')).toBeNull();
  });
});

describe('where a completion ends', () => {
  it('just past the answer sentence, waiting for its period', () => {
    const done = ' Ovens keep food hot. Therefore, the answer is oven (c).';
    expect(csqaEnd(done)).toBe(done.length);
    expect(csqaEnd(done + '\n\nQ: more')).toBe(done.length);
    expect(csqaEnd(' Therefore, the answer is oven (c)')).toBe(-1); // the period may still come
    expect(csqaEnd(' Therefore, the answer is oven (c)\n')).toBe(' Therefore, the answer is oven (c)'.length);
    expect(csqaEnd(' Therefore, the answer is oven')).toBe(-1);
    expect(csqaEnd(' The answer is oven.\nQ:')).toBe(' The answer is oven.'.length);
    expect(csqaEnd(' Ovens keep food hot.')).toBe(-1);
  });
});
