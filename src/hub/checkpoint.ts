// A Hugging Face checkpoint (model.safetensors, or model.safetensors.index.json + shards) read into our
// parameters, checked tensor by tensor against the config: every tensor the config needs must be present
// with exactly the shape it needs, in F32, F16 or BF16, every value finite (a NaN or an infinity is
// refused, naming its position). Errors name the file and the tensor.

import { type ModelConfig } from '../model/config';
import { paramSpecs, type ParamSpec, type ParamTensors } from '../model/params';
import type { FileProgress, ModelSource } from './download';
import { type Dtype, finiteTensorF32, parseSafetensors, parseShardIndex, type SafetensorsFile } from './safetensors';

export interface Checkpoint {
  /** f32, by Hugging Face name: ready for uploadParams. */
  tensors: ParamTensors;
  /** How many of the used tensors were stored in each dtype. */
  dtypes: Partial<Record<Dtype, number>>;
  /** The weight files read, in order. */
  files: string[];
  /** Tensors in the files that the config does not use (a tied lm_head copy, rotary buffers...). */
  ignored: string[];
}

const shapeText = (s: number[]) => `[${s.join(', ')}]`;

function configSummary(cfg: ModelConfig): string {
  return `vocab_size ${cfg.vocab}, hidden_size ${cfg.dModel}, intermediate_size ${cfg.dFF}, ` +
    `${cfg.nHeads} heads / ${cfg.nKvHeads} kv heads`;
}

/** Copies the tensors of `file` that the config uses into `out`, checking each shape. */
function take(cfg: ModelConfig, file: SafetensorsFile, wanted: Map<string, ParamSpec>, out: Checkpoint): void {
  for (const [name, info] of Object.entries(file.header)) {
    const spec = wanted.get(name);
    if (!spec) {
      out.ignored.push(name);
      continue;
    }
    if (shapeText(info.shape) !== shapeText(spec.shape)) {
      throw new Error(
        `${file.fileName}: tensor "${name}" has shape ${shapeText(info.shape)}, but config.json (${configSummary(cfg)}) ` +
          `needs ${shapeText(spec.shape)}.`,
      );
    }
    out.tensors.set(name, finiteTensorF32(file, name));
    out.dtypes[info.dtype] = (out.dtypes[info.dtype] ?? 0) + 1;
  }
}

function missingError(source: ModelSource, where: string, name: string, cfg: ModelConfig): Error {
  const hint = name === 'lm_head.weight' && !cfg.tieEmbeddings
    ? ' config.json has tie_word_embeddings false, so the checkpoint must hold its own lm_head.weight.'
    : '';
  return new Error(`${source.label}: ${where} has no tensor "${name}".${hint}`);
}

export async function readCheckpoint(cfg: ModelConfig, source: ModelSource, onProgress?: (p: FileProgress) => void): Promise<Checkpoint> {
  const wanted = new Map(paramSpecs(cfg).map((s) => [s.name, s]));
  const out: Checkpoint = { tensors: new Map(), dtypes: {}, files: [], ignored: [] };
  const parse = (bytes: Uint8Array, name: string) => parseSafetensors(bytes, `${source.label}/${name}`);

  const single = await source.read('model.safetensors', onProgress);
  if (single) {
    take(cfg, parse(single, 'model.safetensors'), wanted, out);
    out.files.push('model.safetensors');
    for (const name of wanted.keys()) if (!out.tensors.has(name)) throw missingError(source, 'model.safetensors', name, cfg);
    return out;
  }

  const indexName = 'model.safetensors.index.json';
  const index = await source.read(indexName, onProgress);
  if (!index) {
    throw new Error(
      `${source.label}: no model.safetensors and no ${indexName}. Only safetensors checkpoints load ` +
        '(not pytorch_model.bin): pick a repo that has them.',
    );
  }
  const { weightMap, shards } = parseShardIndex(new TextDecoder().decode(index), `${source.label}/${indexName}`);
  for (const name of wanted.keys()) if (!Object.hasOwn(weightMap, name)) throw missingError(source, indexName, name, cfg);
  for (const shard of shards) {
    // Shards the config needs nothing from (an lm_head copy of a tied model, say) are not downloaded.
    const needed = [...wanted.keys()].filter((n) => weightMap[n] === shard);
    if (needed.length === 0) continue;
    const bytes = await source.read(shard, onProgress);
    if (!bytes) throw new Error(`${source.label}: ${indexName} names the shard ${shard}, which is missing.`);
    const file = parse(bytes, shard);
    for (const n of needed) if (!Object.hasOwn(file.header, n)) throw missingError(source, shard, n, cfg);
    // A tensor the index maps to another shard is taken from that shard only.
    const own = new Map([...wanted].filter(([n]) => weightMap[n] === shard));
    take(cfg, { ...file, header: Object.fromEntries(Object.entries(file.header).filter(([n]) => own.has(n) || !wanted.has(n))) }, own, out);
    out.files.push(shard);
  }
  return out;
}
