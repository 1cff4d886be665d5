// The scratchpad's key tokens (each new sum digit and carry): marked in training batches, and their mean
// loss reported by the engine beside the mean over every target token.
import { describe, expect, it } from 'vitest';
import { presetConfig } from '../../src/model/config';
import { runConfig } from '../../src/star/run_config';
import { createRunEngine } from '../../src/star/run_engine';
import { makeProblem, problemPrompt, scratchpad } from '../../src/star/tasks/arithmetic';
import { arithmeticKeyToken } from '../../src/star/tasks/arithmetic_task';
import { arithmeticTokenizer as tok } from '../../src/star/tasks/char_tokenizer';
import { makeBatches } from '../../src/train/batches';
import { testGpu } from '../helpers/gpu';

describe('arithmetic key tokens', () => {
  it('are the sum digit and the carry of every scratch line, nothing else', () => {
    const p = makeProblem(29, 57);
    const ids = [tok.bos, ...tok.encode(problemPrompt(p, true)), ...tok.encode(scratchpad(p))];
    const keys = ids.flatMap((id, t) => (arithmeticKeyToken(ids, t) ? [`${t}:${tok.tokenText(id)}`] : []));
    // Prompt (with its hint "Target: 8 6") first: the hint's digit after ": " is a prompt token, never trained.
    const promptLen = 1 + tok.encode(problemPrompt(p, true)).length;
    const inTarget = keys.filter((k) => Number(k.split(':')[0]) >= promptLen).map((k) => k.split(':')[1]);
    // "2 9 + 5 7 , C: 0" / "2 + 5 , 6 C: 1" / ", 8 6 C: 0": carry 0; digit 6, carry 1; digit 8, carry 0.
    expect(inTarget).toEqual(['0', '6', '1', '8', '0']);
  });

  it('are marked in batches within the trained positions only', () => {
    const examples = [29, 999, 5].map((a) => makeProblem(a, a)).map((p) => ({ prompt: problemPrompt(p, true), target: scratchpad(p) }));
    const [batch] = makeBatches(examples, tok, { B: 3, T: 128, seed: 0, shuffle: false, keyToken: arithmeticKeyToken });
    const key = batch.key!;
    for (let i = 0; i < key.length; i++) if (key[i]) expect(batch.mask[i]).toBe(1);
    const perRow = [0, 1, 2].map((r) => key.slice(r * 128, (r + 1) * 128).reduce((a, b) => a + b, 0));
    expect(perRow).toEqual([5, 7, 3]); // 2 digits: 2 sums + 3 carries; 3 digits: 3 + 4; 1 digit: 1 + 2
    expect(makeBatches(examples, tok, { B: 3, T: 128, seed: 0, shuffle: false })[0].key).toBeUndefined();
  });

  it('get their own mean loss, read with the loss, from the run engine', async () => {
    const gpu = await testGpu();
    const cfg = runConfig('micro');
    expect(presetConfig(cfg.model).dModel).toBeLessThan(32);
    const engine = createRunEngine(gpu, cfg);
    await engine.initRandom(3);
    const examples = [12, 34, 56, 78].map((a) => makeProblem(a, 11)).map((p) => ({ prompt: problemPrompt(p), target: scratchpad(p) }));
    const seen: (number | undefined)[] = [];
    const out = await engine.finetune(examples, { steps: 4, seed: 1, onStep: (_, __, k) => seen.push(k) });
    expect(out.keyLosses).toHaveLength(out.losses.length);
    expect(seen).toEqual(out.keyLosses);
    for (const [i, k] of out.keyLosses!.entries()) {
      expect(Number.isFinite(k)).toBe(true);
      expect(k).not.toBeCloseTo(out.losses[i], 4); // a different mean from the one over every token
    }
  });
});
