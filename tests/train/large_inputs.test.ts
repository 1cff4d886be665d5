// Inputs of any size reach the engine: a fine-tune over 200,000 examples (the kept set of a large run)
// starts and trains, where taking their longest length with Math.max(...lengths) overflowed the stack.
import { describe, expect, it } from 'vitest';
import { presetConfig } from '../../src/model/config';
import { createGpuEngine } from '../../src/star/gpu_engine';
import { arithmeticTokenizer as tok } from '../../src/star/tasks/char_tokenizer';
import { testGpu } from '../helpers/gpu';

describe('inputs of any size', () => {
  it('finetune takes 200,000 examples', async () => {
    const engine = createGpuEngine(await testGpu(), presetConfig('micro'), tok, { trainBatch: 2, genBatch: 2 });
    await engine.initRandom(1);
    // Short texts: the size that matters is the count (a spread of 200,000 arguments), and short ones encode fast.
    const examples = Array.from({ length: 200_000 }, (_, i) => ({ prompt: `${i % 10} + 1\n`, target: `${(i % 10) + 1}\n` }));
    const { losses } = await engine.finetune(examples, { steps: 1, seed: 1 });
    expect(losses).toHaveLength(1);
    expect(Number.isFinite(losses[0])).toBe(true);
  });
});
