// Numbers that go wrong silently, on the real engine (micro model, SwiftShader): the engine refuses to load
// weights holding NaN or an infinity; a fine-tune driven to NaN by a huge learning rate stops at the first
// loss read that shows it, naming the step and what to try; saveWeights never hands out non-finite weights;
// and in the STaR loop a diverging fine-tune leaves the store exactly as the last completed phase left it.
import { describe, expect, it } from 'vitest';
import { parseSafetensors, tensorToF32, writeSafetensors } from '../../src/hub/safetensors';
import { presetConfig } from '../../src/model/config';
import { createGpuEngine, type GpuEngine } from '../../src/star/gpu_engine';
import { runStar } from '../../src/star/loop';
import { runConfig } from '../../src/star/run_config';
import { MemoryStore } from '../../src/star/stores/memory';
import { makeProblem, problemPrompt, scratchpad } from '../../src/star/tasks/arithmetic';
import { arithmeticTask } from '../../src/star/tasks/arithmetic_task';
import { arithmeticTokenizer as tok } from '../../src/star/tasks/char_tokenizer';
import { DEFAULT_OPTIM, type OptimConfig } from '../../src/train/config';
import { DivergenceError } from '../../src/train/trainer';
import { testGpu } from '../helpers/gpu';

const cfg = presetConfig('micro');
const examples = [[12, 34], [5, 7], [99, 11], [40, 60]].map(([a, b]) => {
  const p = makeProblem(a, b);
  return { prompt: problemPrompt(p), target: scratchpad(p) };
});

async function engine(optim: Partial<OptimConfig> = {}, lossEvery = 1): Promise<GpuEngine> {
  const e = createGpuEngine(await testGpu(), cfg, tok, { trainBatch: 2, genBatch: 4, optim: { ...DEFAULT_OPTIM, warmupSteps: 0, ...optim }, lossEvery });
  await e.initRandom(1);
  return e;
}

/** The file's tensors with one value replaced. */
function poisoned(bytes: Uint8Array, name: string, index: number, value: number): Uint8Array {
  const f = parseSafetensors(bytes);
  return writeSafetensors(Object.values(f.header).map((t) => {
    const data = tensorToF32(f, t.name);
    if (t.name === name) data[index] = value;
    return { name: t.name, data, shape: t.shape };
  }));
}

describe('non-finite weights on the engine', () => {
  it('loadWeights refuses a NaN or an infinity, naming the tensor, and keeps the weights it held', async () => {
    const e = await engine();
    const good = await e.saveWeights();
    const before = await e.readParams();
    await expect(e.loadWeights(poisoned(good, 'model.layers.1.mlp.down_proj.weight', 21, NaN))).rejects.toThrow(
      /^weights: tensor "model\.layers\.1\.mlp\.down_proj\.weight" holds 1 non-finite value \(the first, NaN, at \[0, 21\], flat index 21 of 640\)/,
    );
    await expect(e.loadWeights(poisoned(good, 'model.norm.weight', 3, -Infinity))).rejects.toThrow(/tensor "model\.norm\.weight" .*-Infinity, at \[3\]/);
    expect(await e.readParams()).toEqual(before);
    await expect(e.loadWeights(good)).resolves.toBeUndefined();
  });
});

describe('training that diverges stops with a clear error', () => {
  it('a huge learning rate: finetune stops at the first read where the loss or the gradient norm is not finite, naming the step and what to try', async () => {
    const e = await engine({ lr: 1e30 });
    const seen: number[] = [];
    const err = await e.finetune(examples, { steps: 8, seed: 1, onStep: (_, loss) => seen.push(loss) }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(DivergenceError);
    const d = err as DivergenceError;
    expect(d.step).toBeGreaterThan(1); // step 1's loss comes from the initial weights
    expect(d.step).toBeLessThan(8);
    expect(d.message).toMatch(new RegExp(`^Training diverged: at step ${d.step} of 8 the loss is \\S+ and the gradient norm \\S+ \\(both are read every step\\)`));
    expect(d.message).toMatch(/(loss is (NaN|-?Infinity)|gradient norm (NaN|Infinity))/);
    expect(d.message).toMatch(/Lower the learning rate \(it is 1e\+30; try 1e\+29 or less\)/);
    expect(seen.length).toBe(d.step - 1); // every reported loss is finite; the bad one is not reported
    expect(seen.every(Number.isFinite)).toBe(true);
    await expect(e.saveWeights()).rejects.toThrow(/^Training diverged: the trained weights are not finite: tensor ".+" holds \d+ non-finite values? \(the first/);
  });

  it('weights only the last update broke (no loss read after it) are refused by saveWeights', async () => {
    // 1e39 overflows float32 (and the schedule keeps it whole: minLrRatio 1): the one update sends weights
    // to infinity, after the step's loss and gradient norm were read.
    const e = await engine({ lr: 1e39, minLrRatio: 1 });
    const { losses } = await e.finetune(examples, { steps: 1, seed: 1 });
    expect(losses.every(Number.isFinite)).toBe(true);
    await expect(e.saveWeights()).rejects.toThrow(DivergenceError);
  });

  it('in the STaR loop, a diverging fine-tune stores nothing: the last completed phase and its weights stay', async () => {
    const run = runConfig('micro', { mode: 'direct', iterations: 1 });
    const task = arithmeticTask(run.star);
    const store = new MemoryStore();
    const gpu = await testGpu();
    const make = (optim: OptimConfig) => createGpuEngine(gpu, cfg, tok, { trainBatch: run.trainBatch, genBatch: run.genBatch, optim });
    await runStar(run.star, { task, engine: make(run.optim), store });
    const latest = await store.getWeights('latest');
    expect(latest).toBeDefined();

    // The same run, one iteration further, with a learning rate that diverges.
    const more = { ...run.star, iterations: 2 };
    const err = await runStar(more, { task, engine: make({ ...run.optim, lr: 1e30 }), store }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(DivergenceError);
    expect(await store.getPhase(2, 'finetune')).toBeUndefined();
    expect(await store.getPhase(1, 'finetune')).toBeDefined();
    expect(await store.getWeights('latest')).toEqual(latest);
  });
});
