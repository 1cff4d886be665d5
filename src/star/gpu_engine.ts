// The StarEngine on our WebGPU kernels: one set of parameters shared by a trainer (re-shaped to each
// fine-tune's longest example) and a batched generator. The same code runs in the browser's worker
// and in Node; only the persistence and progress sinks around the loop differ.
//
// With LoRA (opts.lora) the loaded base model stays frozen and only adapters train. "Restart from the
// base model each iteration" then means fresh adapters: every finetune starts from new seeded ones.
// The weights the loop saves and loads are then the adapters (PEFT names); the base is loaded once, by
// passing loadWeights a full model file, which also resets the adapters (B = 0: exactly the base model).
// The frozen base then stores its matrices in f16 by default (baseDtype; src/model/params.ts): half the
// memory of the weights, each rounded once to the nearest half on upload, products accumulated in f32.
// readParams returns those stored values widened to f32.

import { describeNonFinite, finiteTensorF32, parseSafetensors, type SafetensorsFile, writeSafetensors } from '../hub/safetensors';
import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { chooseBatchSize, createGenerator, type Generator } from '../generate/generate';
import { type Acts, allocateActs, baseDtypeFor } from '../model/activations';
import type { ModelConfig } from '../model/config';
import { createLoraAdapters, initLora, type LoraConfig, type ModelWeights, validateLora, withAdapters } from '../model/lora';
import {
  createParamBuffers, downloadParams, initParams, layoutParams, type ParamBuffers, type ParamDtype, type ParamLayout, type ParamTensors, uploadParams,
} from '../model/params';
import type { EngineTokenizer } from '../model/tokenizer';
import { BUCKET_T, batchIterator, type Example, type KeyToken } from '../train/batches';
import { DEFAULT_OPTIM, type OptimConfig } from '../train/config';
import { createTrainer, DivergenceError, type Trainer } from '../train/trainer';
import type { FinetuneOptions, GenOptions, StarEngine } from './types';

export type { EngineTokenizer };

export interface GpuEngineOptions {
  /** Training batch size (sequences per step). */
  trainBatch: number;
  /** Generation batch size (sequences decoded together); lowered to fit `memoryBudget`. */
  genBatch: number;
  /** Bytes the generator (KV cache + decode buffers) may use; default 1 GiB. */
  memoryBudget?: number;
  optim?: OptimConfig;
  /** Read the loss back every this many steps (a readback stalls the GPU pipeline). */
  lossEvery?: number;
  /**
   * Train on batches of similar lengths, each only as long as it needs (see train/batches.ts `bucket`: the number
   * of batches per sorted window). Costs a trainer's activations per length: for small models (arithmetic).
   */
  bucket?: number;
  /**
   * The task's key tokens (arithmetic: each new sum digit and carry): their mean loss is read back with the
   * loss and reported beside it, since a mean over every target token hides the few that need computing.
   */
  keyToken?: KeyToken;
  /** Fine-tune LoRA adapters of this config on the frozen base; omitted: full fine-tuning. */
  lora?: LoraConfig;
  /**
   * How the base model stores its matrices: with LoRA 'f16' (the default: half the memory, any WebGPU adapter)
   * or 'f32'; without LoRA only 'f32', since full fine-tuning trains every weight.
   */
  baseDtype?: ParamDtype;
}

export interface GpuEngine extends StarEngine {
  cfg: ModelConfig;
  /** The base parameters. */
  params: ParamBuffers;
  /** The LoRA config when the engine fine-tunes adapters. */
  lora?: LoraConfig;
  /** How the base stores its matrices (f16 only as a frozen base under LoRA). */
  baseDtype: ParamDtype;
  /** The current (base) weights by Hugging Face name, as f32 (an f16 base's stored values, widened). */
  readParams(): Promise<ParamTensors>;
  /** LoRA: the current adapters by PEFT name (see src/hub/peft.ts to export them). */
  readAdapters(): Promise<ParamTensors>;
}

/** Tensors of `layout` from a safetensors file, checking names, shapes and that every value is finite. */
function readLayout(file: SafetensorsFile, layout: ParamLayout, hint = ''): ParamTensors {
  const tensors: ParamTensors = new Map();
  for (const e of layout.entries) {
    const info = file.header[e.name];
    if (!info) throw new Error(`weights: missing tensor ${e.name}${hint}`);
    if (info.shape.join('x') !== e.shape.join('x')) {
      throw new Error(`weights: ${e.name} has shape ${info.shape.join('x')}, but the config needs ${e.shape.join('x')}${hint}.`);
    }
    tensors.set(e.name, finiteTensorF32(file, e.name));
  }
  return tensors;
}

function writeLayout(layout: ParamLayout, tensors: ParamTensors): Uint8Array {
  return writeSafetensors(layout.entries.map((e) => ({ name: e.name, data: tensors.get(e.name)!, shape: e.shape })), { format: 'pt' });
}

const isAdapterName = (name: string) => /\.lora_[AB]\.weight$/.test(name);

/** The mean of `values` where `mask` is 1; null when the mask is empty. */
function maskedMean(values: Float32Array, mask: Float32Array): number | null {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== 0) {
      sum += values[i];
      n++;
    }
  }
  return n > 0 ? sum / n : null;
}

export function createGpuEngine(gpu: Gpu, cfg: ModelConfig, tok: EngineTokenizer, opts: GpuEngineOptions): GpuEngine {
  if (tok.vocabSize > cfg.vocab) throw new Error(`The tokenizer has ${tok.vocabSize} tokens but the model only ${cfg.vocab}.`);
  const optim = opts.optim ?? DEFAULT_OPTIM;
  const lora = opts.lora && validateLora(cfg, opts.lora);
  const baseDtype = baseDtypeFor(lora, opts.baseDtype);
  const layout = layoutParams(cfg, gpu.limits.maxStorageBufferBindingSize, baseDtype);
  const params = createParamBuffers(gpu, layout, 'params');
  const adapters = lora && createLoraAdapters(gpu, cfg, lora);
  const weights: ModelWeights = adapters ? withAdapters(params, adapters) : params;
  const loraDesc = lora ? `this engine's adapters: rank ${lora.rank} on ${lora.targets.join(', ')}` : '';
  const freshAdapters = (seed: number) => {
    if (adapters) uploadParams(gpu, adapters.params, initLora(cfg, adapters.config, seed));
  };
  // Trainers by sequence length. They share the weights and one optimizer state, so bucketed batches of several
  // lengths train as one fine-tune; without bucketing there is one at a time, replaced when the length changes.
  // Bucketed trainers never run at once, so they also share one set of activations, allocated for the model's
  // longest sequence: memory for one trainer, however many lengths there are.
  const trainers = new Map<number, Trainer>();
  let arena: Acts<View> | null = null;
  let generator: Generator | null = null;

  const trainerFor = (T: number): Trainer => {
    const have = trainers.get(T);
    if (have) return have;
    if (!opts.bucket) {
      for (const t of trainers.values()) t.destroy();
      trainers.clear();
    }
    const first = trainers.values().next().value;
    if (opts.bucket) arena ??= allocateActs(gpu, cfg, opts.trainBatch, cfg.maxSeq, lora || undefined);
    const tr = createTrainer(gpu, cfg, { B: opts.trainBatch, T }, optim, { shared: weights, optimizer: first?.optimizer, actsArena: arena ?? undefined });
    trainers.set(T, tr);
    return tr;
  };
  const checkAbort = (signal?: AbortSignal) => {
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
  };

  const engine: GpuEngine = {
    cfg,
    params,
    trainBatch: opts.trainBatch,
    lora,
    baseDtype,
    async initRandom(seed) {
      if (lora) throw new Error('LoRA fine-tunes a pretrained base model, which stays frozen: load one with loadWeights instead of random weights, or fine-tune fully (no lora option).');
      uploadParams(gpu, params, initParams(cfg, seed));
    },

    async generate(prompts: string[], g: GenOptions) {
      if (!generator) {
        const fits = chooseBatchSize(cfg, cfg.maxSeq, opts.memoryBudget ?? 1 << 30, cfg.maxSeq, opts.genBatch, gpu.limits.maxStorageBufferBindingSize);
        generator = createGenerator(gpu, cfg, weights, { B: Math.min(opts.genBatch, fits), S: cfg.maxSeq });
      }
      const gen = generator;
      const encoded = prompts.map((p) => [tok.bos, ...tok.encode(p)]);
      // Similar lengths decode together: less padding, fewer prefill shapes.
      const order = encoded.map((_, i) => i).sort((a, b) => encoded[a].length - encoded[b].length);
      const results: { text: string; tokens: number }[] = new Array(prompts.length);
      for (let c = 0; c < order.length; c += gen.B) {
        checkAbort(g.signal);
        const idx = order.slice(c, c + gen.B);
        const longest = Math.max(...idx.map((i) => encoded[i].length));
        const room = cfg.maxSeq - Math.ceil(longest / 8) * 8 + 1;
        if (room < 1) {
          throw new Error(
            `A prompt has ${longest} tokens, which leaves no room to generate within the model's context of ${cfg.maxSeq} tokens. ` +
              'Use fewer few-shot exemplars, shorter prompts or a longer maxSeq.',
          );
        }
        const out = await gen.generate(
          idx.map((i) => encoded[i]),
          {
            maxNewTokens: Math.min(g.maxNewTokens, room),
            sampling: { temperature: g.temperature, topK: 0, topP: 1, seed: (g.seed + c) >>> 0 },
            eosId: tok.eos,
            padId: tok.pad,
            vocabSize: tok.vocabSize, // the embedding may have unused rows past the tokenizer's ids
            decode: (ids) => tok.decode(ids),
            stopStrings: g.stop,
            stopAt: g.end,
            onText: g.onSample ? (j, text, done) => g.onSample!(idx[j], text, done) : undefined,
          },
        );
        out.forEach((o, j) => (results[idx[j]] = { text: o.text, tokens: o.tokens.length }));
        g.onProgress?.(Math.min(c + gen.B, order.length), order.length);
      }
      return results;
    },

    async finetune(examples: Example[], f: FinetuneOptions) {
      if (examples.length === 0) throw new Error('finetune: there are no examples to train on.');
      let longest = 0; // a loop, not Math.max(...): a spread of a million examples overflows the stack
      for (const e of examples) longest = Math.max(longest, tok.encode(e.prompt).length + tok.encode(e.target).length + 2);
      if (longest > cfg.maxSeq) throw new Error(`A training example has ${longest} tokens, more than the model's maxSeq (${cfg.maxSeq}).`);
      const T = Math.min(cfg.maxSeq, Math.ceil(longest / BUCKET_T) * BUCKET_T);
      freshAdapters(f.seed); // LoRA: every fine-tune starts from the base model, i.e. from fresh adapters
      trainerFor(T).resetOptimizer(); // the optimizer state every trainer shares
      const lossEvery = opts.lossEvery ?? Math.max(1, Math.floor(f.steps / 50));
      const losses: number[] = [];
      const keyLosses: number[] = [];
      let tokens = 0;
      let step = 0;
      const batchOpts = { B: opts.trainBatch, T, seed: f.seed, shuffle: true, steps: f.steps, keyToken: opts.keyToken, bucket: opts.bucket };
      for (const batch of batchIterator(examples, tok, batchOpts)) {
        checkAbort(f.signal);
        const tr = trainerFor(batch.tokens.length / opts.trainBatch); // a bucketed batch is as long as it needs
        tr.setBatch(batch);
        tr.trainStep(f.steps);
        step++;
        for (const t of batch.tokens) if (t !== tok.pad) tokens++;
        if (step % lossEvery === 0 || step === f.steps) {
          // The one readback of the step; a NaN stays in the weights once there, so checking here catches it.
          const [loss, gradNorm, rows] = await Promise.all([tr.readLoss(), tr.readGradNorm(), batch.key ? tr.readRowLosses() : null]);
          if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
            throw new DivergenceError(step, `at step ${step} of ${f.steps} the loss is ${loss} and the gradient norm ${gradNorm} (both are read every ${lossEvery === 1 ? 'step' : `${lossEvery} steps`})`, optim);
          }
          losses.push(loss);
          const keyLoss = rows && maskedMean(rows, batch.key!);
          if (keyLoss !== null) keyLosses.push(keyLoss);
          f.onStep?.(step, loss, keyLoss ?? undefined);
        }
        // The stop check may generate with these very weights: the generator shares them with the trainer.
        if (f.until && (step % f.until.every === 0 || step === f.steps) && (await f.until.done(step))) break;
      }
      return { losses, tokens, steps: step, ...(opts.keyToken && { keyLosses }) };
    },

    async saveWeights() {
      const set = adapters?.params ?? params; // LoRA: the adapters only; the base never changes
      const tensors = await downloadParams(gpu, set);
      // loadWeights refuses non-finite weights, so any here came from training (its last update, say,
      // which no loss read saw): refuse to hand them out, so no store ever holds them.
      for (const e of set.layout.entries) {
        const bad = describeNonFinite(e.name, tensors.get(e.name)!, e.shape);
        if (bad !== null) throw new DivergenceError(0, `the trained weights are not finite: ${bad}`, optim);
      }
      return writeLayout(set.layout, tensors);
    },

    /**
     * A full model file loads the base (and, with LoRA, resets the adapters); with LoRA an adapter file
     * (PEFT names, as saveWeights writes) loads the adapters. All tensors of a set must be present.
     */
    async loadWeights(bytes) {
      const file = parseSafetensors(bytes, 'weights');
      const names = Object.keys(file.header);
      const hasBase = names.some((n) => layout.byName.has(n));
      const adapterNames = names.filter(isAdapterName);
      if (!adapters && adapterNames.length > 0 && !hasBase) {
        throw new Error('weights: this file holds LoRA adapters, but the engine fine-tunes fully; create it with the lora option to load them.');
      }
      const stray = adapters && adapterNames.find((n) => !adapters.params.layout.byName.has(n));
      if (stray) throw new Error(`weights: adapter tensor ${stray} is not one of ${loraDesc}.`);
      // Check everything before uploading anything: a bad file leaves the engine as it was.
      const base = hasBase || adapterNames.length === 0 ? readLayout(file, layout) : undefined;
      const trained = adapters && adapterNames.length > 0 ? readLayout(file, adapters.params.layout, ` (${loraDesc})`) : undefined;
      if (base) uploadParams(gpu, params, base);
      if (trained) uploadParams(gpu, adapters!.params, trained);
      else freshAdapters(0);
    },

    readParams() {
      return downloadParams(gpu, params);
    },

    async readAdapters() {
      if (!adapters) throw new Error('readAdapters: this engine fine-tunes fully; it has no LoRA adapters.');
      return downloadParams(gpu, adapters.params);
    },
  };
  return engine;
}
