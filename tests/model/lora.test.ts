// LoRA on the GPU against the float64 twin (logits, loss, every adapter gradient) and against PyTorch, a
// frozen base, ten AdamW steps, the inference path, overfitting, config errors, the engine, PEFT export.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readF32, upload } from '../../src/gpu/buffers';
import { run } from '../../src/gpu/kernel';
import { createGenerator } from '../../src/generate/generate';
import { loadHubModel } from '../../src/hub/load';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, exportPeft, importPeft, MERGED_WEIGHTS, parsePeftConfig } from '../../src/hub/peft';
import { parseSafetensors, tensorToF32, writeSafetensors } from '../../src/hub/safetensors';
import { allocateActs, memoryReport } from '../../src/model/activations';
import { type ModelConfig, presetConfig } from '../../src/model/config';
import { createLoraAdapters, DEFAULT_LORA, initLora, layoutLora, LORA_TARGETS, type LoraConfig, loraName, validateLora, withAdapters } from '../../src/model/lora';
import { createParamBuffers, downloadParams, initParams, layoutParams, type ParamTensors, uploadParams } from '../../src/model/params';
import { buildBackward, buildForward } from '../../src/model/transformer';
import { adamw as refAdamw } from '../../src/reference/adamw';
import { modelForwardBackward } from '../../src/reference/model';
import { createGpuEngine } from '../../src/star/gpu_engine';
import { arithmeticTokenizer } from '../../src/star/tasks/char_tokenizer';
import { DEFAULT_OPTIM, type OptimConfig } from '../../src/train/config';
import { lrAt } from '../../src/train/schedule';
import { createTrainer } from '../../src/train/trainer';
import { rng, shuffle } from '../../src/util/random';
import { testGpu } from '../helpers/gpu';
import { randomAdapters, randomBatch, refBatch, sharpBase } from '../helpers/lora_inputs';
import { assertClose, finiteDiff, FWD, GRAD } from '../helpers/numeric';

const ALL: LoraConfig = { rank: 4, alpha: 8, targets: [...LORA_TARGETS], dropout: 0 };


function bitEqual(a: Float32Array, b: Float32Array, label: string): void {
  expect(a.length, label).toBe(b.length);
  const bad = a.findIndex((v, i) => !Object.is(v, b[i]) && !(v === 0 && b[i] === 0));
  expect(bad, `${label}: first difference at [${bad}]: ${a[bad]} vs ${b[bad]}`).toBe(-1);
}

describe('LoRA vs the CPU reference', () => {
  const cases: { name: string; cfg: ModelConfig; lora: LoraConfig; B: number; T: number; start?: number[] }[] = [
    { name: 'micro, GQA, tied, every target', cfg: presetConfig('micro'), lora: ALL, B: 2, T: 7, start: [0, 2] },
    { name: 'micro, untied, qkv bias, MHA, q v down', cfg: presetConfig('micro', { tieEmbeddings: false, qkvBias: true, nKvHeads: 2, vocab: 37 }), lora: { rank: 3, alpha: 5, targets: ['down', 'q', 'v'], dropout: 0 }, B: 1, T: 5 },
  ];
  for (const c of cases) {
    it(`${c.name}: logits, loss and every adapter gradient match`, async () => {
      const gpu = await testGpu();
      const base = sharpBase(c.cfg, 1);
      const adapters = randomAdapters(c.cfg, c.lora, 2);
      // An f32 base, so the float64 twin sees the very weights (tests/model/lora_f16.test.ts: the f16 base).
      const trainer = createTrainer(gpu, c.cfg, { B: c.B, T: c.T }, DEFAULT_OPTIM, { lora: c.lora, baseDtype: 'f32' });
      trainer.loadParams(base);
      trainer.loadAdapters(adapters);
      const batch = randomBatch(c.cfg, c.B, c.T, 7, c.start);
      trainer.setBatch(batch);
      const ref = modelForwardBackward(c.cfg, base, refBatch(batch, c.B, c.T), { config: c.lora, adapters });

      trainer.forward();
      assertClose(await trainer.readLogits(), ref.logits, FWD, 'logits');
      assertClose([await trainer.readLoss()], [ref.loss], FWD, 'loss');

      trainer.trainStep(10);
      const got = await downloadParams(gpu, trainer.grads);
      expect([...got.keys()].sort()).toEqual([...ref.loraGrads.keys()].sort());
      expect(got.size).toBe(2 * c.cfg.nLayers * c.lora.targets.length);
      for (const [name, g] of ref.loraGrads) assertClose(got.get(name)!, g, GRAD, `grad ${name}`);
    });
  }

  it('a fresh adapter (B = 0) gives exactly the base model, and training leaves the base bit-for-bit', async () => {
    const gpu = await testGpu();
    const cfg = presetConfig('micro');
    const [B, T] = [2, 6];
    const base = sharpBase(cfg, 3);
    const batch = randomBatch(cfg, B, T, 4);
    const full = createTrainer(gpu, cfg, { B, T });
    full.loadParams(base);
    full.setBatch(batch);
    full.forward();
    const lora = createTrainer(gpu, cfg, { B, T }, { ...DEFAULT_OPTIM, lr: 1e-2, warmupSteps: 1 }, { lora: ALL, baseDtype: 'f32' });
    lora.loadParams(base);
    lora.loadAdapters(initLora(cfg, ALL, 5));
    lora.setBatch(batch);
    lora.forward();
    bitEqual(await lora.readLogits(), await full.readLogits(), 'logits with fresh adapters');
    const before = await lora.readAdapters();
    for (let i = 0; i < 3; i++) lora.trainStep(3);
    const after = await lora.readParams();
    for (const [name, t] of base) bitEqual(after.get(name)!, t, name);
    const moved = await lora.readAdapters();
    expect(moved.get(loraName(0, 'q', 'B'))!.some((v) => v !== 0)).toBe(true);
    expect(moved.get(loraName(1, 'down', 'A'))).not.toEqual(before.get(loraName(1, 'down', 'A')));
  });

  it('ten AdamW steps give the reference losses (1e-3 relative)', async () => {
    const gpu = await testGpu();
    const cfg = presetConfig('micro');
    const [B, T] = [2, 6];
    const lora: LoraConfig = { rank: 2, alpha: 4, targets: ['q', 'v', 'up'], dropout: 0 };
    const optim: OptimConfig = { ...DEFAULT_OPTIM, lr: 1e-2, warmupSteps: 3, maxGradNorm: 0.5 };
    const base = sharpBase(cfg, 6, 5);
    const trainer = createTrainer(gpu, cfg, { B, T }, optim, { lora, baseDtype: 'f32' });
    trainer.loadParams(base);
    let ad: ParamTensors = initLora(cfg, lora, 7);
    trainer.loadAdapters(ad);
    const batch = randomBatch(cfg, B, T, 8);
    trainer.setBatch(batch);
    const names = layoutLora(cfg, lora).entries.map((e) => e.name);
    const flat = (src: Map<string, ArrayLike<number>>) => Float64Array.from(names.flatMap((n) => Array.from(src.get(n)!)));
    const n = flat(ad).length;
    let m: Float64Array = new Float64Array(n);
    let v: Float64Array = new Float64Array(n);
    for (let step = 1; step <= 10; step++) {
      trainer.trainStep(10);
      const gpuLoss = await trainer.readLoss();
      const out = modelForwardBackward(cfg, base, refBatch(batch, B, T), { config: lora, adapters: ad });
      expect(Math.abs(gpuLoss - out.loss) / Math.abs(out.loss), `step ${step}: gpu ${gpuLoss} vs ref ${out.loss}`).toBeLessThan(1e-3);
      const lr = lrAt(step, { lr: optim.lr, warmupSteps: optim.warmupSteps, totalSteps: 10, kind: optim.schedule, minLrRatio: optim.minLrRatio });
      // Adapters are all matrices: all decayed. One global norm over the adapters only.
      const r = refAdamw({
        params: flat(ad), grads: flat(out.loraGrads), m, v, n, decayEnd: n,
        hyper: { lr, beta1: optim.beta1, beta2: optim.beta2, eps: optim.eps, weightDecay: optim.weightDecay, step, maxGradNorm: optim.maxGradNorm },
      });
      [m, v] = [r.m, r.v];
      let off = 0;
      ad = new Map(names.map((name) => {
        const size = ad.get(name)!.length;
        off += size;
        return [name, Float32Array.from(r.params.subarray(off - size, off))];
      }));
    }
  });
});

describe('LoRA vs PyTorch (tests/fixtures/hub/lora_grad.json, from scripts/reference_logits.py)', () => {
  it('tiny-llama-f32 with q_proj adapters: L = sum(logits * R) and dL/dA, dL/dB of every layer match', async () => {
    const gpu = await testGpu();
    const fx = JSON.parse(readFileSync('tests/fixtures/hub/lora_grad.json', 'utf8'));
    const { cfg, tensors } = await loadHubModel('tests/fixtures/hub/tiny-llama-f32', { cache: false });
    const lora: LoraConfig = { rank: fx.rank, alpha: fx.alpha, targets: ['q'], dropout: 0 };
    const T = fx.tokens.length;
    const weights = withAdapters(createParamBuffers(gpu, layoutParams(cfg), 'p'), createLoraAdapters(gpu, cfg, lora));
    uploadParams(gpu, weights, tensors);
    uploadParams(gpu, weights.lora!.params, new Map(fx.layers.flatMap((x: { layer: number; A: { data: number[] }; B: { data: number[] } }) => [
      [loraName(x.layer, 'q', 'A'), Float32Array.from(x.A.data)], [loraName(x.layer, 'q', 'B'), Float32Array.from(x.B.data)],
    ])));
    const acts = allocateActs(gpu, cfg, 1, T, lora);
    upload(gpu, acts.tokens, Uint32Array.from(fx.tokens));
    upload(gpu, acts.positions, Uint32Array.from({ length: T }, (_, t) => t));
    upload(gpu, acts.start, new Uint32Array(1));
    await run(gpu, buildForward(gpu, cfg, weights, acts, { B: 1, T }));
    const R = Float32Array.from(fx.R.data);
    expect(acts.logits).toHaveLength(1); // [T, V] fits one binding here
    const logits = await readF32(gpu, acts.logits[0]);
    assertClose([logits.reduce((sum, x, i) => sum + x * R[i], 0)], [fx.loss], FWD, 'sum(logits * R)');
    // dL/dlogits = R, placed where a training step leaves dlogits.
    upload(gpu, acts.logits[0], R);
    const grads = createParamBuffers(gpu, weights.lora!.params.layout, 'g');
    await run(gpu, buildBackward(gpu, cfg, weights, grads, acts, { B: 1, T }));
    const got = await downloadParams(gpu, grads);
    for (const x of fx.layers) {
      assertClose(got.get(loraName(x.layer, 'q', 'A'))!, x.dA, GRAD, `layer ${x.layer} dA`);
      assertClose(got.get(loraName(x.layer, 'q', 'B'))!, x.dB, GRAD, `layer ${x.layer} dB`);
    }
  });
});

describe('the LoRA reference itself', () => {
  it('adapter gradients match finite differences of the float64 loss', () => {
    const cfg = presetConfig('micro', { nLayers: 1, vocab: 11 });
    const lora: LoraConfig = { rank: 2, alpha: 3, targets: ['q', 'o', 'gate', 'down'], dropout: 0 };
    const base = sharpBase(cfg, 11, 5);
    const adapters = randomAdapters(cfg, lora, 12);
    const [B, T] = [1, 5];
    const batch = refBatch(randomBatch(cfg, B, T, 13), B, T);
    const { loraGrads } = modelForwardBackward(cfg, base, batch, { config: lora, adapters });
    for (const name of [loraName(0, 'q', 'A'), loraName(0, 'o', 'B'), loraName(0, 'gate', 'A'), loraName(0, 'down', 'B')]) {
      const loss = (x: Float64Array) => modelForwardBackward(cfg, base, batch, { config: lora, adapters: new Map<string, ArrayLike<number>>([...adapters, [name, x]]) }).loss;
      assertClose(loraGrads.get(name)!, finiteDiff(loss, adapters.get(name)!), GRAD, `d loss / d ${name}`);
    }
  });
});

describe('LoRA training and generation', () => {
  it('generation with adapters (KV cache, prefill and decode) gives the training forward\'s logits', async () => {
    const gpu = await testGpu();
    const cfg = presetConfig('micro', { vocab: 20 });
    const T = 16;
    const trainer = createTrainer(gpu, cfg, { B: 1, T }, DEFAULT_OPTIM, { lora: ALL });
    trainer.loadParams(sharpBase(cfg, 21, 12));
    trainer.loadAdapters(randomAdapters(cfg, ALL, 22));
    // The generator gets the trainer's weights as they are: base plus adapters.
    const gen = createGenerator(gpu, cfg, trainer.params, { B: 2, S: 32 });
    const prompt = [1, 5, 9, 3];
    const steps: Float32Array[] = [];
    const [g] = await gen.generate([prompt], { maxNewTokens: 8, eosId: 99, padId: 0, debugLogits: (_, l) => steps.push(l.slice(0, cfg.vocab)) });
    const tokens = new Uint32Array(T);
    tokens.set([...prompt, ...g.tokens]);
    trainer.setBatch({ tokens, targets: new Uint32Array(T), mask: new Float32Array(T) });
    trainer.forward();
    const full = await trainer.readLogits();
    for (let i = 0; i < 8; i++) assertClose(steps[i], full.subarray((prompt.length - 1 + i) * cfg.vocab, (prompt.length + i) * cfg.vocab), FWD, `decode step ${i}`);
  });

  it('a micro model overfits one batch to a loss below 0.05 through MLP adapters alone', async () => {
    const gpu = await testGpu();
    const cfg = presetConfig('micro');
    const [B, T] = [2, 12];
    const lora: LoraConfig = { rank: 8, alpha: 16, targets: ['gate', 'up', 'down'], dropout: 0 };
    const trainer = createTrainer(gpu, cfg, { B, T }, { ...DEFAULT_OPTIM, lr: 0.1, warmupSteps: 5, weightDecay: 0, schedule: 'constant' }, { lora });
    // A random base with embeddings of unit scale (as trained ones are), so the frozen tied head can separate tokens.
    const base = initParams(cfg, 9);
    base.get('model.embed_tokens.weight')!.forEach((v, i, t) => (t[i] = v * 50));
    trainer.loadParams(base);
    trainer.loadAdapters(initLora(cfg, lora, 1));
    const seq = shuffle(Array.from({ length: cfg.vocab }, (_, i) => i), rng(11)).slice(0, B * (T + 1));
    const tokens = new Uint32Array(B * T);
    const targets = new Uint32Array(B * T);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        tokens[b * T + t] = seq[b * (T + 1) + t];
        targets[b * T + t] = seq[b * (T + 1) + t + 1];
      }
    }
    trainer.setBatch({ tokens, targets, mask: new Float32Array(B * T).fill(1) });
    let loss = Infinity;
    let steps = 0;
    for (; steps < 200 && loss >= 0.05; steps += 20) {
      for (let i = 0; i < 20; i++) trainer.trainStep(200);
      loss = await trainer.readLoss();
    }
    expect(loss, `loss after ${steps} steps`).toBeLessThan(0.05);
  });

  it('steps 2..N allocate nothing, and the memory report counts what the trainer allocates', async () => {
    const gpu = await testGpu();
    const cfg = presetConfig('micro');
    const report = memoryReport(cfg, { B: 3, T: 9, lora: ALL });
    const before = gpu.stats.bytesCreated;
    const trainer = createTrainer(gpu, cfg, { B: 3, T: 9 }, DEFAULT_OPTIM, { lora: ALL });
    const allocated = gpu.stats.bytesCreated - before;
    expect(report.total).toBeLessThanOrEqual(allocated);
    expect(allocated - report.total).toBeLessThan(0.1 * allocated);
    expect(report.baseDtype).toBe('f16'); // the default under LoRA (tests/model/lora_f16.test.ts counts it)
    expect(memoryReport(cfg, { B: 3, T: 9, lora: ALL, baseDtype: 'f32' }).frozenParams).toBe(memoryReport(cfg, { B: 3, T: 9 }).params);
    expect(report.params).toBe(report.frozenParams + report.trainableParams);
    expect(report.grads).toBe(report.trainableParams);
    expect(report.optimizer).toBe(2 * report.trainableParams);
    expect(report.trainableParams).toBeLessThan(report.frozenParams);
    expect(memoryReport(cfg, { B: 3, T: 9 }).frozenParams).toBe(0);

    trainer.loadParams(initParams(cfg, 4));
    trainer.loadAdapters(initLora(cfg, ALL, 4));
    trainer.setBatch(randomBatch(cfg, 3, 9, 5));
    trainer.trainStep(5);
    await trainer.readLoss();
    const count = gpu.stats.buffersCreated;
    for (let i = 0; i < 3; i++) {
      trainer.setBatch(randomBatch(cfg, 3, 9, 6 + i));
      trainer.trainStep(5);
    }
    await gpu.device.queue.onSubmittedWorkDone();
    expect(gpu.stats.buffersCreated).toBe(count);
  });

  it('rejects bad configs (rank, targets, alpha, dropout) before any GPU work', async () => {
    const gpu = await testGpu();
    const cfg = presetConfig('micro'); // C = 16, Hkv*D = 8, F = 40
    const bad: [Partial<LoraConfig>, RegExp][] = [
      [{ rank: 0 }, /rank must be a positive integer/],
      [{ rank: 2.5 }, /rank must be a positive integer/],
      [{ rank: 9, targets: ['k'] }, /rank 9 exceeds the k projection's smaller width \(8x16\)/],
      [{ targets: [] }, /at least one of q, k, v, o, gate, up, down/],
      [{ targets: ['q', 'x' as never] }, /unknown target "x"/],
      [{ targets: ['q', 'v', 'q'] }, /name a layer twice/],
      [{ alpha: 0 }, /alpha must be a positive number/],
      [{ dropout: 0.1 }, /dropout 0.1 is not supported/],
    ];
    const count = gpu.stats.buffersCreated;
    for (const [patch, msg] of bad) {
      const lora = { ...DEFAULT_LORA, ...patch };
      expect(() => validateLora(cfg, lora)).toThrow(msg);
      expect(() => createTrainer(gpu, cfg, { B: 1, T: 4 }, DEFAULT_OPTIM, { lora })).toThrow(msg);
      expect(() => createGpuEngine(gpu, cfg, arithmeticTokenizer, { trainBatch: 1, genBatch: 1, lora })).toThrow(msg);
    }
    expect(gpu.stats.buffersCreated).toBe(count);
    const weights = withAdapters(createParamBuffers(gpu, layoutParams(cfg), 'p'), createLoraAdapters(gpu, cfg, DEFAULT_LORA));
    expect(() => buildForward(gpu, cfg, weights, allocateActs(gpu, cfg, 1, 4), { B: 1, T: 4 })).toThrow(/activations were allocated without them/);
    const t = createTrainer(gpu, cfg, { B: 1, T: 4 });
    await expect(t.readAdapters()).rejects.toThrow(/no LoRA adapters/);
    expect(() => t.loadAdapters(new Map())).toThrow(/no LoRA adapters/);
  });
});

describe('the engine with LoRA', () => {
  const cfg = presetConfig('micro');
  const examples = [{ prompt: '12+3', target: '15' }, { prompt: '4+4', target: '8' }, { prompt: '7+9', target: '16' }];
  const baseFile = () => writeSafetensors(layoutParams(cfg).entries.map((e) => ({ name: e.name, data: sharpBase(cfg, 31, 5).get(e.name)!, shape: e.shape })));
  const gen = { temperature: 0, maxNewTokens: 6, stop: [], seed: 0 };

  it('loads the base once, restarts from fresh adapters every fine-tune, and saves and loads adapters only', async () => {
    const gpu = await testGpu();
    const lora: LoraConfig = { ...DEFAULT_LORA, targets: ['q', 'v', 'down'] };
    const engine = createGpuEngine(gpu, cfg, arithmeticTokenizer, { trainBatch: 2, genBatch: 2, lora, optim: { ...DEFAULT_OPTIM, lr: 3e-2, warmupSteps: 1 } });
    const full = createGpuEngine(gpu, cfg, arithmeticTokenizer, { trainBatch: 2, genBatch: 2 });
    await expect(engine.initRandom(1)).rejects.toThrow(/pretrained base model/);
    await engine.loadWeights(baseFile());
    await full.loadWeights(baseFile());
    const base = await engine.readParams();
    // Fresh adapters: the engine is exactly the base model.
    for (const [name, t] of await engine.readAdapters()) if (name.includes('lora_B')) expect(t.every((v) => v === 0), name).toBe(true);
    const prompts = ['1+1', '23+4'];
    expect((await engine.generate(prompts, gen)).map((o) => o.text)).toEqual((await full.generate(prompts, gen)).map((o) => o.text));

    const first = await engine.finetune(examples, { steps: 6, seed: 3 });
    expect(first.losses.at(-1)!).toBeLessThan(first.losses[0]);
    const trained = await engine.saveWeights();
    const again = await engine.finetune(examples, { steps: 6, seed: 3 });
    expect(again.losses).toEqual(first.losses); // the second run started from the same fresh adapters
    for (const [name, t] of await engine.readParams()) bitEqual(t, base.get(name)!, name);

    const file = parseSafetensors(trained);
    expect(Object.keys(file.header).sort()).toEqual(layoutLora(cfg, lora).entries.map((e) => e.name).sort());
    expect(file.header[loraName(1, 'down', 'A')].shape).toEqual([8, cfg.dFF]);
    expect(file.header[loraName(1, 'down', 'B')].shape).toEqual([cfg.dModel, 8]);
    await engine.loadWeights(baseFile()); // back to fresh adapters
    await engine.loadWeights(trained);
    for (const [name, t] of await engine.readAdapters()) bitEqual(t, tensorToF32(file, name), name);
    const texts = (await engine.generate(prompts, gen)).map((o) => o.text);
    await engine.loadWeights(trained);
    expect((await engine.generate(prompts, gen)).map((o) => o.text)).toEqual(texts);
  });

  it('rejects adapters it cannot hold', async () => {
    const gpu = await testGpu();
    const lora: LoraConfig = { ...DEFAULT_LORA, rank: 4 };
    const engine = createGpuEngine(gpu, cfg, arithmeticTokenizer, { trainBatch: 1, genBatch: 1, lora });
    const adapterFile = (l: LoraConfig) => writeSafetensors(layoutLora(cfg, l).entries.map((e) => ({ name: e.name, data: new Float32Array(e.size), shape: e.shape })));
    await expect(engine.loadWeights(adapterFile({ ...lora, rank: 2 }))).rejects.toThrow(/has shape 2x16, but the config needs 4x16 \(this engine's adapters: rank 4 on q, v\)/);
    await expect(engine.loadWeights(adapterFile({ ...lora, targets: ['q', 'k', 'v'] }))).rejects.toThrow(/k_proj.lora_A.weight is not one of this engine's adapters/);
    const full = createGpuEngine(gpu, cfg, arithmeticTokenizer, { trainBatch: 1, genBatch: 1 });
    await expect(full.loadWeights(adapterFile(lora))).rejects.toThrow(/holds LoRA adapters, but the engine fine-tunes fully/);
    await expect(full.readAdapters()).rejects.toThrow(/no LoRA adapters/);
  });
});

describe('PEFT export', () => {
  const cfg = presetConfig('micro');
  const lora: LoraConfig = { rank: 4, alpha: 8, targets: ['v', 'q', 'gate'], dropout: 0 };

  it('round-trips adapters and adapter_config.json, and the merged model gives the adapted logits', async () => {
    const base = sharpBase(cfg, 41);
    const adapters = randomAdapters(cfg, lora, 42);
    const files = exportPeft(cfg, lora, adapters, { baseModel: 'HuggingFaceTB/SmolLM2-135M', base });
    expect([...files.keys()].sort()).toEqual([ADAPTER_CONFIG, ADAPTER_WEIGHTS, MERGED_WEIGHTS].sort());
    const config = JSON.parse(new TextDecoder().decode(files.get(ADAPTER_CONFIG)));
    expect(config).toMatchObject({
      peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, lora_dropout: 0, bias: 'none',
      target_modules: ['q_proj', 'v_proj', 'gate_proj'], base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M',
    });
    const file = parseSafetensors(files.get(ADAPTER_WEIGHTS)!);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(Object.keys(file.header)).toHaveLength(2 * cfg.nLayers * 3);
    expect(file.header['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'].shape).toEqual([4, cfg.dModel]);
    expect(file.header['base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight'].shape).toEqual([cfg.nKvHeads * (cfg.dModel / cfg.nHeads), 4]);
    expect(file.header['base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight'].shape).toEqual([cfg.dFF, 4]);

    const back = importPeft(cfg, { config: new TextDecoder().decode(files.get(ADAPTER_CONFIG)), weights: files.get(ADAPTER_WEIGHTS)! });
    expect(back.lora).toEqual({ ...lora, targets: ['q', 'v', 'gate'] });
    for (const [name, t] of adapters) bitEqual(back.adapters.get(name)!, t, name);

    // The merged model (no adapters) against the base with adapters, on the GPU.
    const gpu = await testGpu();
    const merged = parseSafetensors(files.get(MERGED_WEIGHTS)!);
    const mergedParams: ParamTensors = new Map(layoutParams(cfg).entries.map((e) => [e.name, tensorToF32(merged, e.name)]));
    bitEqual(mergedParams.get('model.layers.0.self_attn.k_proj.weight')!, base.get('model.layers.0.self_attn.k_proj.weight')!, 'untargeted weight');
    const batch = randomBatch(cfg, 2, 6, 43);
    const withLora = createTrainer(gpu, cfg, { B: 2, T: 6 }, DEFAULT_OPTIM, { lora, baseDtype: 'f32' }); // the merge is f32
    withLora.loadParams(base);
    withLora.loadAdapters(adapters);
    const plain = createTrainer(gpu, cfg, { B: 2, T: 6 });
    plain.loadParams(mergedParams);
    for (const t of [withLora, plain]) {
      t.setBatch(batch);
      t.forward();
    }
    assertClose(await plain.readLogits(), await withLora.readLogits(), FWD, 'merged vs adapted logits');
  });

  it('refuses adapter configs this engine cannot run', () => {
    const ok = { peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'], lora_dropout: 0.05, bias: 'none' };
    expect(parsePeftConfig(cfg, JSON.stringify(ok))).toEqual({ rank: 4, alpha: 8, targets: ['q', 'v'], dropout: 0 });
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ peft_type: 'IA3' }, /only "LORA"/],
      [{ use_rslora: true }, /rsLoRA and DoRA/],
      [{ bias: 'all' }, /bias "all" is not supported/],
      [{ target_modules: 'all-linear' }, /must be a list/],
      [{ target_modules: ['q_proj', 'lm_head'] }, /"lm_head" is not one of q_proj/],
      [{ rank_pattern: { 'model.layers.0.self_attn.q_proj': 2 } }, /per-layer ranks/],
      [{ layers_to_transform: [0] }, /some layers only/],
      [{ r: 0 }, /rank must be a positive integer/],
    ];
    for (const [patch, msg] of bad) expect(() => parsePeftConfig(cfg, JSON.stringify({ ...ok, ...patch }))).toThrow(msg);
    expect(() => parsePeftConfig(cfg, '{')).toThrow(/adapter_config.json: not valid JSON/);
    const weights = writeSafetensors(layoutLora(cfg, { ...lora, rank: 4, targets: ['q'] }).entries.map((e) => ({ name: e.name, data: new Float32Array(e.size), shape: e.shape })));
    expect(() => importPeft(cfg, { config: JSON.stringify(ok), weights })).toThrow(/missing tensor base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight/);
  });
});
