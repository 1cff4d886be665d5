// Model configuration as data: a Llama-family decoder (RMSNorm, RoPE, GQA attention, SwiGLU MLP).
// Every field has a typed default and a comment; presets override a few fields by name.

export interface ModelConfig {
  /** Vocabulary size: token ids are 0..vocab-1. */
  vocab: number;
  /** Width of the residual stream (C). */
  dModel: number;
  /** Number of transformer blocks. */
  nLayers: number;
  /** Query heads (H). dModel / nHeads is the head size D. */
  nHeads: number;
  /** Key/value heads (Hkv); nHeads must be a multiple. Fewer than nHeads is grouped-query attention. */
  nKvHeads: number;
  /** Hidden width of the SwiGLU MLP (F). */
  dFF: number;
  /** Longest sequence the model accepts: prompt plus generated tokens. */
  maxSeq: number;
  /** RoPE base frequency (theta); Llama uses 10000, Qwen2.5 1e6. */
  ropeTheta: number;
  /** Epsilon inside RMSNorm's square root. */
  normEps: number;
  /** The LM head reuses the token embedding matrix. */
  tieEmbeddings: boolean;
  /** q, k and v projections have biases (Qwen2). */
  qkvBias: boolean;
}

export const DEFAULT_CONFIG: ModelConfig = {
  vocab: 32,
  dModel: 128,
  nLayers: 4,
  nHeads: 4,
  nKvHeads: 2,
  dFF: 384,
  maxSeq: 256,
  ropeTheta: 10000,
  normEps: 1e-5,
  tieEmbeddings: true,
  qkvBias: false,
};

/** Named presets. `micro` is for tests (a few thousand parameters); `arithmetic` is the tiny addition model. */
export const PRESETS = {
  /** About 5k parameters: fast enough for whole-model tests on a CPU Vulkan driver. */
  micro: { vocab: 32, dModel: 16, nLayers: 2, nHeads: 2, nKvHeads: 1, dFF: 40, maxSeq: 128 },
  /** About 0.8M parameters: learns 1-5 digit addition with a scratchpad. */
  arithmetic: { vocab: 32, dModel: 128, nLayers: 4, nHeads: 4, nKvHeads: 2, dFF: 384, maxSeq: 256 },
  /** About 75k parameters: 1-3 digit addition within hours on a CPU Vulkan driver (the reduced learning curve). */
  'arithmetic-tiny': { vocab: 32, dModel: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, dFF: 128, maxSeq: 160 },
  /** About 0.2M parameters: a quick demo that still learns short additions. */
  'arithmetic-small': { vocab: 32, dModel: 64, nLayers: 3, nHeads: 4, nKvHeads: 2, dFF: 192, maxSeq: 256 },
  /** About 5M parameters (GPT-2-small shapes, scaled down): a benchmark size. */
  gpt5m: { vocab: 4096, dModel: 256, nLayers: 6, nHeads: 8, nKvHeads: 8, dFF: 768, maxSeq: 256, tieEmbeddings: false },
} satisfies Record<string, Partial<ModelConfig>>;

export type PresetName = keyof typeof PRESETS;

export function presetConfig(name: string, overrides: Partial<ModelConfig> = {}): ModelConfig {
  if (!(name in PRESETS)) {
    throw new Error(`Unknown model preset "${name}". Known presets: ${Object.keys(PRESETS).join(', ')}.`);
  }
  return validateConfig({ ...DEFAULT_CONFIG, ...PRESETS[name as PresetName], ...overrides });
}

export function headDim(cfg: ModelConfig): number {
  return cfg.dModel / cfg.nHeads;
}

/** Rejects an invalid config before any GPU work, saying which field is wrong and why. Returns it unchanged. */
export function validateConfig(cfg: ModelConfig): ModelConfig {
  const ints: (keyof ModelConfig)[] = ['vocab', 'dModel', 'nLayers', 'nHeads', 'nKvHeads', 'dFF', 'maxSeq'];
  for (const k of ints) {
    const v = cfg[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`Model config: ${k} must be a positive integer, got ${v}.`);
  }
  if (cfg.dModel % cfg.nHeads !== 0) {
    throw new Error(`Model config: nHeads (${cfg.nHeads}) must divide dModel (${cfg.dModel}) so every head has the same size.`);
  }
  if (cfg.nHeads % cfg.nKvHeads !== 0) {
    throw new Error(`Model config: nKvHeads (${cfg.nKvHeads}) must divide nHeads (${cfg.nHeads}) for grouped-query attention.`);
  }
  if (headDim(cfg) % 2 !== 0) throw new Error(`Model config: the head size dModel/nHeads = ${headDim(cfg)} must be even for RoPE.`);
  if (!(cfg.ropeTheta > 0)) throw new Error(`Model config: ropeTheta must be positive, got ${cfg.ropeTheta}.`);
  if (!(cfg.normEps > 0)) throw new Error(`Model config: normEps must be positive, got ${cfg.normEps}.`);
  return cfg;
}

/** Rejects token ids outside the vocabulary and sequences longer than maxSeq. */
export function validateTokens(cfg: ModelConfig, tokens: ArrayLike<number>, seqLen: number): void {
  if (seqLen > cfg.maxSeq) throw new Error(`Sequence length ${seqLen} exceeds the model's maxSeq (${cfg.maxSeq}).`);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t < 0 || t >= cfg.vocab) {
      throw new Error(`Token id ${t} at position ${i} is outside the vocabulary (0..${cfg.vocab - 1}).`);
    }
  }
}
