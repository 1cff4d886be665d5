// The CommonsenseQA estimate as plain functions: the work a run does, its memory against the budget, the
// refusals (a prompt or example too long for the context, a model too large, a sample larger than the
// data), the time once this device is measured, and the token lengths measured with the real tokenizer.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromHfConfig } from '../../src/hub/hf_config';
import { estimateMemory } from '../../src/hub/load';
import { createHubTokenizer } from '../../src/hub/tokenizer';
import { stepsForIteration } from '../../src/star/config';
import { parseCsqaJsonl } from '../../src/star/tasks/csqa_data';
import { csqaRunConfig, type CsqaRunConfig } from '../../src/star/tasks/csqa_run';
import type { IterationRecord } from '../../src/star/types';
import { fitToData, measure } from '../../src/worker/csqa';
import { calibrateCsqa, CSQA_MEMORY_BUDGET, csqaWork, estimateCsqa, type CsqaSizes } from '../../src/worker/csqa_estimate';
import { QUESTIONS } from '../helpers/csqa_questions';
import { FIXTURES } from '../hub/fixture_fetch';

const read = (f: string) => JSON.parse(readFileSync(join(FIXTURES, 'tiny-llama-f32', f), 'utf8'));
const SMOL = { model_type: 'llama', vocab_size: 49152, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, max_position_embeddings: 8192, tie_word_embeddings: true };
const LIMITS = { maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 1 << 30 };

function sizes(hf: Record<string, unknown>, cfg: CsqaRunConfig, t: Partial<CsqaSizes> = {}): CsqaSizes {
  const model = fromHfConfig(hf, 'config.json', cfg.maxSeq);
  return { model, memory: estimateMemory(model), trainTokens: null, promptTokens: null, ...t };
}

describe('the work and memory of a CommonsenseQA run', () => {
  it('counts training steps and decode steps per phase of every iteration', () => {
    const cfg = csqaRunConfig('quick');
    const s = cfg.star;
    const steps = [1, 2, 3, 4].reduce((a, it) => a + stepsForIteration(s, it), 0);
    const per = (n: number) => Math.ceil(n / 16) * cfg.maxNewTokens;
    expect(csqaWork(cfg, 16)).toEqual({ trainSteps: steps, decodeSteps: 5 * per(200) + 4 * (per(256) + per(128)) });
    expect(csqaWork(csqaRunConfig('quick', { mode: 'direct' }), 16)).toEqual({ trainSteps: steps, decodeSteps: 5 * per(200) });
    expect(csqaWork(csqaRunConfig('quick', { mode: 'base' }), 16)).toEqual({ trainSteps: 0, decodeSteps: per(200) });
  });

  it('SmolLM2-135M with LoRA fits; fully fine-tuned with long examples it is refused, and says what to change', () => {
    const cfg = csqaRunConfig('quick');
    const ok = estimateCsqa(cfg, sizes(SMOL, cfg, { trainTokens: 180, promptTokens: 900 }), LIMITS, null);
    expect(ok.refusal).toBeNull();
    expect(ok.trainSeq).toBe(192);
    expect(ok.memory.frozenParams).toBeGreaterThanOrEqual(2 * 134_515_008); // the base's 134.5M weights, 2 or 4 bytes each
    expect(ok.memory.trainableParams).toBeLessThan(2 * 2 ** 20); // rank-8 adapters on q and v
    expect(ok.memory.total).toBeLessThan(CSQA_MEMORY_BUDGET);
    expect(ok.seconds).toBeNull();
    const full = { ...cfg, lora: null, trainBatch: 8 };
    const no = estimateCsqa(full, sizes(SMOL, full, { trainTokens: 700, promptTokens: 900 }), LIMITS, null);
    expect(no.refusal).toMatch(/^The run needs [\d.]+ GiB of GPU memory, more than the 4\.00 GiB .* Fine-tune with LoRA/);
    // Before the questions are read the activations are unknown: the total is a floor, and says so when refused.
    const floor = estimateCsqa(cfg, sizes(SMOL, cfg), LIMITS, null);
    expect(floor.memory.activations).toBe(0);
    expect(floor.memory.total).toBeLessThan(ok.memory.total);
    expect(estimateCsqa(full, sizes({ ...SMOL, num_hidden_layers: 300 }, full), LIMITS, null).refusal).toMatch(/^The run needs at least /);
    // A small adapter budget: four of its largest buffers.
    expect(estimateCsqa(cfg, sizes(SMOL, cfg, { trainTokens: 180, promptTokens: 900 }), { ...LIMITS, maxBufferSize: 256 << 20 }, null).refusal).toMatch(/more than the 1\.00 GiB/);
  });

  it('refuses a model this GPU cannot bind (checkBindingLimit) from its config alone, naming the model', () => {
    const cfg = csqaRunConfig('quick');
    const e = estimateCsqa(cfg, sizes(SMOL, cfg), { ...LIMITS, maxStorageBufferBindingSize: 64 << 10 }, null);
    expect(e.refusal).toMatch(/^HuggingFaceTB\/SmolLM2-135M-Instruct: /);
    expect(e.refusal).not.toMatch(/GPU memory/);
  });

  it('refuses prompts that leave no room for the rationale, and training examples longer than the context', () => {
    const cfg = csqaRunConfig('quick');
    const long = estimateCsqa(cfg, sizes(SMOL, cfg, { trainTokens: 180, promptTokens: 1000 }), LIMITS, null);
    expect(long.refusal).toMatch(/The longest prompt \(the question with 7 few-shot exemplars\) is 1000 tokens, which leaves room for 25 of the 96 rationale tokens within the 1024-token context\. Use fewer few-shot exemplars\./);
    const tooLong = estimateCsqa(cfg, sizes(SMOL, cfg, { trainTokens: 1100, promptTokens: 500 }), LIMITS, null);
    expect(tooLong.refusal).toMatch(/longest training example is 1100 tokens, more than the 1024-token context/);
  });

  it('with this device measured, gives the time: training steps and decode steps at their measured cost', () => {
    const cfg = csqaRunConfig('micro', { mode: 'star' });
    const s = sizes(read('config.json'), cfg, { trainTokens: 40, promptTokens: 60 });
    const rec = { iteration: 1, generated: 2, correct: 1, trainSteps: 2, seconds: { generate: 1, rationalize: 0.5, finetune: 4, evaluate: 1 } } as IterationRecord;
    const calib = calibrateCsqa(cfg, s.model, rec)!;
    expect(calib.trainStep).toBe(2);
    expect(calib.decodeStep).toBeCloseTo(2.5 / ((1 + 1 + 1) * 16), 12); // three batches of at most 16 tokens
    const e = estimateCsqa(cfg, s, LIMITS, calib);
    expect(e.seconds).toBeCloseTo(e.trainSteps * calib.trainStep + e.decodeSteps * calib.decodeStep, 9);
    expect(calibrateCsqa(cfg, s.model, { ...rec, trainSteps: 0 })).toBeNull();
  });
});

describe('fitting a run to its questions', () => {
  it('caps the pool at the training questions; refuses a sample or held-out set larger than the data', () => {
    const cfg = csqaRunConfig('quick');
    expect(fitToData(cfg, { train: 9741, eval: 1221 })).toEqual({ config: cfg, refusal: null });
    const small = fitToData({ ...cfg, star: { ...cfg.star, trainSize: 100 } }, { train: 300, eval: 1221 });
    expect(small.refusal).toBeNull();
    expect(small.config.star).toMatchObject({ poolSize: 300, trainSize: 100 });
    expect(fitToData(cfg, { train: 100, eval: 1221 }).refusal).toMatch(/sample size is 256 questions per iteration, but there are only 100 training questions\. Lower it to at most 100\./);
    expect(fitToData(cfg, { train: 9741, eval: 50 }).refusal).toMatch(/200 questions are to be held out for evaluation, but there are only 50/);
    expect(fitToData(csqaRunConfig('quick', { mode: 'base' }), { train: 10, eval: 1221 }).refusal).toBeNull(); // nothing is sampled
  });

  it('measures the longest prompt and training example with the model tokenizer', async () => {
    const tok = await createHubTokenizer(read('tokenizer.json'), read('tokenizer_config.json'), read('config.json'));
    const all = parseCsqaJsonl(QUESTIONS, 'q.jsonl');
    const q = { train: all.slice(0, 4), eval: all.slice(4) };
    const zero = { ...csqaRunConfig('micro', { mode: 'star' }), fewShot: 0 };
    const seven = { ...zero, fewShot: 7 };
    const m0 = measure(zero, q, tok);
    const m7 = measure(seven, q, tok);
    expect(m7.promptTokens! - m0.promptTokens!).toBeGreaterThan(7 * 40); // seven solved exemplars precede the question
    expect(m7.trainTokens).toBe(m0.trainTokens); // training prompts are the bare question
    const bare = Math.max(...q.train.map((p) => tok.encode(p.stem).length));
    expect(m0.trainTokens!).toBeGreaterThan(bare + zero.maxNewTokens);
    expect(measure({ ...seven, fewShotInTraining: true }, q, tok).trainTokens! - m0.trainTokens!).toBeGreaterThan(7 * 40);
  });
});
