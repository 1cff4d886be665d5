// Small pretrained models from the Hugging Face Hub that the engine runs as they are (Llama-family,
// safetensors, a fast tokenizer). Any other compatible repo id works too; these are the tested names.
//
// Sizes as f32 on the GPU (the engine keeps f32 weights for now; training needs about 4x: weights,
// gradients and both AdamW moments). The engine binds each parameter tensor whole, so the largest one,
// the token embedding, must fit the device's maxStorageBufferBindingSize. WebGPU's default is 128 MiB;
// adapters usually allow more and requestGpu asks for the adapter's own limit (SwiftShader: 1 GiB).

export interface HubPreset {
  repo: string;
  /** Parameters, for the picker. */
  params: string;
  /** The f32 embedding [vocab, hidden]: the tensor that decides whether a device can bind the model. */
  embedding: [number, number];
  note: string;
}

export const HUB_PRESETS = {
  'smollm2-135m': {
    repo: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    params: '135M',
    embedding: [49152, 576],
    note: '0.54 GB of f32 weights; tied embedding 113 MB fits the default 128 MiB binding limit.',
  },
  'smollm2-360m': {
    repo: 'HuggingFaceTB/SmolLM2-360M-Instruct',
    params: '362M',
    embedding: [49152, 960],
    note: '1.45 GB of f32 weights; its 189 MB embedding needs a binding limit above the 128 MiB default.',
  },
  'qwen2.5-0.5b': {
    repo: 'Qwen/Qwen2.5-0.5B-Instruct',
    params: '494M',
    embedding: [151936, 896],
    note:
      '1.98 GB of f32 weights; its 545 MB embedding exceeds common 128-256 MiB binding limits. Running it there needs ' +
      'the embedding split by vocabulary rows into chunks that each fit (the gather reads the chunk holding each id; the ' +
      'tied LM head runs one matmul per chunk into its slice of the logits), which the engine does not do yet.',
  },
} satisfies Record<string, HubPreset>;

export type HubPresetName = keyof typeof HUB_PRESETS;

export const DEFAULT_HUB_MODEL: HubPresetName = 'smollm2-135m';

/** A preset name becomes its repo id; anything else (a repo id, a folder) is returned as it is. */
export function resolveModelName(name: string): string {
  return Object.hasOwn(HUB_PRESETS, name) ? HUB_PRESETS[name as HubPresetName].repo : name;
}
