// `npm run star -- logits --model DIR --text "..."`: a pretrained model's next-token logits at the last
// position of a text, as one JSON line, to compare with PyTorch/transformers on the same folder:
//
//   {"tokens": [ids of the text, no special tokens], "top": [{"id": 11, "logit": 17.25}, ... 10 largest]}
//
// The forward pass runs on exactly the printed ids (no BOS added), through the KV-cache inference plan the
// generator uses, so it needs no training buffers. Anything wrong with the model folder exits with code 2.

import { readF32, upload } from '../gpu/buffers';
import { checkGpu, type Gpu, requestGpu } from '../gpu/device';
import { describeModel, loadHubModel } from '../hub/load';
import type { ModelConfig } from '../model/config';
import { createInferencePlan, createKvCache, uploadPositions } from '../model/inference';
import { createParamBuffers, layoutParams, type ParamTensors, uploadParams } from '../model/params';
import { UsageError } from './args';
import { submitCommands } from '../gpu/counters';

/** Logits [V] at the last of `tokens`, computed on the GPU from host weights. */
export async function lastPositionLogits(gpu: Gpu, cfg: ModelConfig, tensors: ParamTensors, tokens: number[]): Promise<Float32Array> {
  const T = tokens.length;
  if (T === 0) throw new Error('lastPositionLogits: no tokens.');
  if (T > cfg.maxSeq) throw new Error(`lastPositionLogits: ${T} tokens exceed the model's maxSeq (${cfg.maxSeq}).`);
  const params = createParamBuffers(gpu, layoutParams(cfg, gpu.limits.maxStorageBufferBindingSize), 'logits.params');
  uploadParams(gpu, params, tensors);
  const cache = createKvCache(gpu, cfg, 1, T);
  const plan = createInferencePlan(gpu, cfg, params, cache, T);
  upload(gpu, plan.tokens, Uint32Array.from(tokens));
  upload(gpu, plan.start, new Uint32Array(1));
  uploadPositions(gpu, plan, [0], 0);
  const enc = gpu.device.createCommandEncoder();
  plan.encode(enc, 0);
  submitCommands(gpu, enc);
  const logits = await readF32(gpu, plan.logits);
  checkGpu(gpu);
  for (const s of params.segments) s.buffer.destroy();
  for (const v of [...cache.k, ...cache.v]) v.buffer.destroy();
  return logits;
}

/** The k largest logits, largest first; ties keep the lower id first. */
export function topK(logits: ArrayLike<number>, k: number): { id: number; logit: number }[] {
  const ids = Array.from({ length: logits.length }, (_, i) => i);
  ids.sort((a, b) => logits[b] - logits[a] || a - b);
  return ids.slice(0, k).map((id) => ({ id, logit: logits[id] }));
}

export async function logitsCommand(flags: Record<string, string | number | boolean>): Promise<void> {
  const dir = flags.model;
  const text = flags.text;
  if (typeof dir !== 'string' || dir === '') throw new UsageError('Missing --model (a model folder: config.json, model.safetensors, tokenizer.json).');
  if (typeof text !== 'string') throw new UsageError('Missing --text.');
  const gpu = await requestGpu();
  let model;
  try {
    model = await loadHubModel(dir, { maxBindingBytes: gpu.limits.maxStorageBufferBindingSize });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  process.stderr.write(`${model.source}: ${describeModel(model.cfg, model.memory)}\n`);
  const tokens = model.tokenizer.encode(text);
  if (tokens.length === 0) throw new UsageError('--text encodes to no tokens.');
  if (tokens.length > model.cfg.maxSeq) throw new UsageError(`--text is ${tokens.length} tokens, more than the model's maxSeq (${model.cfg.maxSeq}).`);
  const logits = await lastPositionLogits(gpu, model.cfg, model.tensors, tokens);
  process.stdout.write(JSON.stringify({ tokens, top: topK(logits, 10) }) + '\n');
}
