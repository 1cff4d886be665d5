// One LoRA STaR run end to end on the real engine: the tiny random Llama fixture, our CSQA task and the
// GPU engine with adapters. A random model answers nothing right, so the task's checker is swapped for
// a fixed rule (a completion counts as correct when its question id is odd), as the STaR benchmark does:
// then filter keeps some rationales, rationalize retries the rest with the hint, and every fine-tune
// trains adapters. What must hold: the base stays frozen bit for bit, each iteration starts from fresh
// adapters, what the loop stores are the adapters alone, and they export to PEFT and back.
import { describe, expect, it } from 'vitest';
import { loadHubModel } from '../../src/hub/load';
import { exportPeft, importPeft } from '../../src/hub/peft';
import { parseSafetensors, tensorToF32 } from '../../src/hub/safetensors';
import { asStored, uploadParams } from '../../src/model/params';
import { STAR_PRESETS, withMode } from '../../src/star/config';
import { createGpuEngine } from '../../src/star/gpu_engine';
import { runStar } from '../../src/star/loop';
import { MemoryStore } from '../../src/star/stores/memory';
import { type CsqaProblem, csqaTask, mentionsHint, removeHint } from '../../src/star/tasks/csqa';
import type { StarEngine } from '../../src/star/types';
import { testGpu } from '../helpers/gpu';

const problem = (i: number): CsqaProblem => ({
  id: `q${i}`,
  stem: `Where would you put thing number ${i}?`,
  choices: ['box', 'shelf', 'drawer', 'bag', 'room'].map((text, j) => ({ label: 'ABCDE'[j], text })),
  answerKey: 'ABCDE'[i % 5],
  concept: '',
});

describe('a LoRA STaR run on the tiny Llama fixture', () => {
  it('trains fresh adapters each iteration on a frozen base; the stored adapters export to PEFT and back', async () => {
    const gpu = await testGpu();
    const model = await loadHubModel('tests/fixtures/hub/tiny-llama-f32', { cache: false, maxSeq: 256 });
    const lora = { rank: 4, alpha: 8, targets: ['q' as const, 'v' as const, 'down' as const], dropout: 0 };
    const engine = createGpuEngine(gpu, model.cfg, model.tokenizer, { trainBatch: 2, genBatch: 4, lora });
    uploadParams(gpu, engine.params, model.tensors);

    const pool = Array.from({ length: 8 }, (_, i) => problem(i));
    const base = csqaTask({ train: pool, eval: pool.slice(0, 3), fewShot: 0, maxNewTokens: 6 });
    // Completions sampled under a hint, keyed by their hint-free prompt: the rule accepts those for every
    // problem, and anything for the odd ones.
    const hinted = new Set<string>();
    const key = (plainPrompt: string, text: string) => `${plainPrompt}\u0000${text}`;
    const task = { ...base, isCorrect: (p: CsqaProblem, text: string) => Number(p.id.slice(1)) % 2 === 1 || hinted.has(key(base.prompt(p, false), text)) };

    const startB: number[] = []; // the largest |B| of the adapters each fine-tune starts from
    const spy: StarEngine = {
      ...engine,
      async generate(prompts, opts) {
        const out = await engine.generate(prompts, opts);
        prompts.forEach((p, i) => mentionsHint(p) && hinted.add(key(removeHint(p), out[i].text)));
        return out;
      },
      async finetune(examples, opts) {
        const b = [...(await engine.readAdapters())].filter(([n]) => n.includes('lora_B'));
        startB.push(Math.max(...b.map(([, t]) => Math.max(...t.map(Math.abs)))));
        return engine.finetune(examples, opts);
      },
    };
    const cfg = withMode({ ...STAR_PRESETS.micro, iterations: 2, trainSize: 8, poolSize: 8, evalSize: 3, steps: { kind: 'add', start: 3, increment: 0 } }, 'star');
    const store = new MemoryStore();
    const summary = await runStar(cfg, { task, engine: spy, store });

    for (const r of summary.iterations.slice(1)) {
      expect(r).toMatchObject({ generated: 8, correct: 4, rationalized: 4, trainExamples: 8 }); // odd ids filtered, even ones rationalized
      expect(r.trainSteps).toBe(3);
      expect(r.losses.every(Number.isFinite)).toBe(true);
    }
    // Kept examples are stored under the bare question (no few-shot prefix, no hint).
    const kept = (await store.getPhase<{ kept: { prompt: string }[] }>(1, 'rationalize'))!.kept;
    for (const k of kept) expect(k.prompt).toMatch(/^Q: Where would you put thing number \d\?\nAnswer Choices:\n(\(\w\) \w+\n){5}A:$/);

    // The base never changed: it holds the loaded weights as its f16 store rounded them (the default under LoRA).
    expect(engine.baseDtype).toBe('f16');
    const now = await engine.readParams();
    for (const [name, t] of asStored(engine.params.layout, model.tensors)) expect(now.get(name), name).toEqual(t);
    // The loop stores adapters only, and the last ones trained (B moved off zero).
    const latest = parseSafetensors((await store.getWeights('latest'))!);
    const names = Object.keys(latest.header).filter((n) => n !== '__metadata__');
    expect(names.length).toBe(2 * 3 * model.cfg.nLayers);
    expect(names.every((n) => /^base_model\.model\.model\.layers\.\d+\.(self_attn\.[qv]_proj|mlp\.down_proj)\.lora_[AB]\.weight$/.test(n))).toBe(true);
    const trainedB = names.filter((n) => n.includes('lora_B')).map((n) => Math.max(...tensorToF32(latest, n).map(Math.abs)));
    expect(Math.max(...trainedB)).toBeGreaterThan(0);
    // Every fine-tune started from the base model: adapters with B = 0 (the loop reloads 'base' first).
    expect(startB).toEqual([0, 0]);

    const adapters = await engine.readAdapters();
    const files = exportPeft(model.cfg, lora, adapters, { baseModel: 'tests/tiny-llama-f32', base: model.tensors });
    expect([...files.keys()].sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'model.safetensors']);
    const back = importPeft(model.cfg, { config: new TextDecoder().decode(files.get('adapter_config.json')), weights: files.get('adapter_model.safetensors')! });
    expect(back.lora).toEqual(lora);
    for (const [name, t] of adapters) expect(back.adapters.get(name), name).toEqual(t);
  });
});
