// Small pretrained models from the Hugging Face Hub that the engine runs as they are (Llama-family,
// safetensors, a fast tokenizer). Any other compatible repo id works too; these are the tested names.
//
// Sizes as f32 on the GPU (full fine-tuning keeps f32 weights and needs about 4x: weights, gradients and
// both AdamW moments; under LoRA the frozen base keeps its matrices in f16 by default, about half). A token embedding (or untied LM head) larger than the device's
// maxStorageBufferBindingSize is stored as vocabulary row chunks that each fit (src/model/params.ts), and
// logits as row blocks (src/model/vocab.ts); every other tensor is bound whole. WebGPU's default limit is
// 128 MiB; adapters usually allow more and requestGpu asks for the adapter's own limit (SwiftShader: 1 GiB).

export interface HubPreset {
  repo: string;
  /** Parameters, for the picker. */
  params: string;
  /** The f32 embedding [vocab, hidden]: the largest tensor, split into row chunks when over the binding limit. */
  embedding: [number, number];
  note: string;
}

export const HUB_PRESETS = {
  'smollm2-135m': {
    repo: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    params: '135M',
    embedding: [49152, 576],
    note: '0.54 GB as f32 (0.27 GB as the f16 base under LoRA); tied embedding 113 MB fits the default 128 MiB binding limit.',
  },
  'smollm2-360m': {
    repo: 'HuggingFaceTB/SmolLM2-360M-Instruct',
    params: '362M',
    embedding: [49152, 960],
    note: '1.45 GB as f32 (0.72 GB as the f16 base under LoRA); its 189 MB embedding is split into two vocabulary chunks under the 128 MiB default binding limit.',
  },
  'qwen2.5-0.5b': {
    repo: 'Qwen/Qwen2.5-0.5B-Instruct',
    params: '494M',
    embedding: [151936, 896],
    note:
      '1.98 GB as f32 (0.99 GB as the f16 base under LoRA); its 545 MB embedding is split into five vocabulary chunks under the 128 MiB default ' +
      'binding limit (the gather and the tied LM head run per chunk), and training logits into row blocks.',
  },
} satisfies Record<string, HubPreset>;

export type HubPresetName = keyof typeof HUB_PRESETS;

export const DEFAULT_HUB_MODEL: HubPresetName = 'smollm2-135m';

/** A preset name becomes its repo id; anything else (a repo id, a folder) is returned as it is. */
export function resolveModelName(name: string): string {
  return Object.hasOwn(HUB_PRESETS, name) ? HUB_PRESETS[name as HubPresetName].repo : name;
}
