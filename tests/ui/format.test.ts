import { describe, expect, it } from 'vitest';
import { keptLines } from '../../src/ui/format';

describe('keptLines', () => {
  it('says per digit count what an iteration kept, in numeric order, naming how it was checked', () => {
    const kept = { 10: { correct: 1, rationalized: 2 }, 3: { correct: 41, rationalized: 212 }, 1: { correct: 80, rationalized: 0 } };
    expect(keptLines(kept, true)).toEqual([
      '1 digit: 80 solved, 0 rationalized with a correct scratchpad',
      '3 digits: 41 solved, 212 rationalized with a correct scratchpad',
      '10 digits: 1 solved, 2 rationalized with a correct scratchpad',
    ]);
    expect(keptLines({ '(b)': { correct: 3, rationalized: 1 } }, false)).toEqual(['answer (b): 3 solved, 1 rationalized reaching the right answer']);
    expect(keptLines(undefined, true)).toEqual([]);
  });
});
