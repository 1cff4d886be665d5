// Our own few-shot exemplars for CommonsenseQA-style questions: everyday questions written for this
// project (not taken from the dataset or from published prompts), each with a short rationale ending in
// the sentence the answer parser reads. Labels are spread over (a)-(e) so the prefix does not teach a
// favourite letter.

import type { CsqaProblem } from './csqa_data';

export interface Exemplar {
  problem: CsqaProblem;
  /** The reasoning before "Therefore, the answer is ...". */
  rationale: string;
}

const q = (id: string, stem: string, texts: string[], answer: string): CsqaProblem => ({
  id,
  stem,
  choices: texts.map((text, i) => ({ label: 'ABCDE'[i], text })),
  answerKey: answer,
  concept: '',
});

export const EXEMPLARS: Exemplar[] = [
  {
    problem: q('ex-milk', 'Where would you keep milk so that it stays cold?', ['cupboard', 'refrigerator', 'mailbox', 'oven', 'garden'], 'B'),
    rationale: 'Milk spoils when it is warm, and a refrigerator is the appliance that keeps food cold.',
  },
  {
    problem: q('ex-tired', 'What does a person usually do when they feel very tired at night?', ['run a race', 'paint a fence', 'go to sleep', 'cook a feast', 'mow the lawn'], 'C'),
    rationale: 'Being tired is relieved by rest, and at night people rest by sleeping.',
  },
  {
    problem: q('ex-glass', 'What is likely to happen to a glass cup dropped onto a stone floor?', ['it floats', 'it grows', 'it melts', 'it shatters', 'it sings'], 'D'),
    rationale: 'Glass is brittle and stone is hard, so the impact breaks the cup into pieces.',
  },
  {
    problem: q('ex-read', 'Where does a child usually learn to read?', ['school', 'parking lot', 'factory', 'airport', 'gas station'], 'A'),
    rationale: 'Reading is taught by teachers, and children spend their days with teachers at school.',
  },
  {
    problem: q('ex-rain', 'What do people carry to keep dry when walking in the rain?', ['sunglasses', 'shovel', 'blanket', 'candle', 'umbrella'], 'E'),
    rationale: 'An umbrella is held over the head and keeps the falling water off the person.',
  },
  {
    problem: q('ex-plants', 'What must a gardener give tomato plants regularly so they can grow?', ['water', 'paint', 'music', 'sandpaper', 'ice cream'], 'A'),
    rationale: 'Plants take up water through their roots and wilt without it.',
  },
  {
    problem: q('ex-coat', 'Why would someone put on a heavy coat before going outside?', ['it is hot', 'it is cold', 'to swim', 'to sleep', 'to cook'], 'B'),
    rationale: 'A heavy coat holds in body heat, which people want when the weather is cold.',
  },
];
