// Seeded inputs for the LoRA model tests (f32 and f16 base): a batch, a base far from init scale, and
// adapters whose A and B are both nonzero.
import type { ModelConfig } from '../../src/model/config';
import { initLora, type LoraConfig } from '../../src/model/lora';
import { initParams, type ParamTensors } from '../../src/model/params';
import { lossWeights } from '../../src/ops/cross_entropy';
import type { Batch } from '../../src/train/trainer';
import { randn, rng } from '../../src/util/random';

/**
 * B sequences of T random tokens with a random 70% loss mask past each sequence's start. `lastToken`
 * makes token 0 the last vocabulary id, so the last embedding row (the last vocabulary chunk) is read.
 */
export function randomBatch(cfg: ModelConfig, B: number, T: number, seed: number, start?: number[], lastToken = false): Batch {
  const r = rng(seed);
  const tokens = Uint32Array.from({ length: B * T }, () => Math.floor(r() * cfg.vocab));
  if (lastToken) tokens[0] = cfg.vocab - 1;
  const targets = Uint32Array.from({ length: B * T }, () => Math.floor(r() * cfg.vocab));
  const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T >= (start?.[Math.floor(i / T)] ?? 0) && r() < 0.7 ? 1 : 0));
  return { tokens, targets, mask, start: start ? Uint32Array.from(start) : undefined };
}

/** The batch as the CPU reference model takes it. */
export const refBatch = (b: Batch, B: number, T: number) => ({ B, T, tokens: b.tokens, targets: b.targets, weights: lossWeights(b.mask), start: b.start ?? new Uint32Array(B) });

/** Base weights scaled up (norm weights kept), so activations and logits are far from init-scale tiny. */
export function sharpBase(cfg: ModelConfig, seed: number, k = 10): ParamTensors {
  const p = initParams(cfg, seed);
  for (const [name, t] of p) if (!name.endsWith('layernorm.weight') && name !== 'model.norm.weight') t.forEach((v, i) => (t[i] = v * k));
  return p;
}

/** Adapters with nonzero A and B, so every adapter gradient is nonzero. */
export function randomAdapters(cfg: ModelConfig, lora: LoraConfig, seed: number): ParamTensors {
  const a = initLora(cfg, lora, seed);
  const r = rng(seed + 1);
  for (const [name, t] of a) if (name.includes('lora_B')) t.set(randn(t.length, r, 0.5));
  return a;
}
