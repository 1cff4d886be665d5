// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
// N bytes of JSON describing each tensor, then the raw little-endian tensor data. Checkpoints come from
// the network or the user's disk, so the parser checks everything it relies on and says precisely what
// is wrong (file, tensor, which field) instead of reading garbage weights.

import { f16ToF32, f32ToF16 } from '../util/half';
import { preview } from '../util/preview';

/** f32 -> f16 bits (round-to-nearest-even), for writing F16 tensors. */
export { f32ToF16 };

export type Dtype = 'F32' | 'F16' | 'BF16';

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Byte offsets relative to `dataStart`, end exclusive. */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  header: Record<string, TensorInfo>;
  metadata: Record<string, string>;
  bytes: Uint8Array;
  /** Absolute offset of the data section: 8 + header length. */
  dataStart: number;
  /** The name given to parseSafetensors, for error messages later on. */
  fileName?: string;
}

const DTYPE_BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** Typed-array views are host-endian; every WebGPU platform is little-endian, but stay correct if not. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDtype(x: unknown): x is Dtype {
  return typeof x === 'string' && Object.hasOwn(DTYPE_BYTES, x);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

export function parseSafetensors(bytes: Uint8Array, fileName = 'safetensors file'): SafetensorsFile {
  const fail = (msg: string): never => {
    throw new Error(`${fileName}: ${msg}`);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  // A u64: compare as a BigInt so a garbage length cannot lose precision and slip through.
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) fail(`header length ${n} runs past the end of the file (${bytes.length} bytes)`);
  const dataStart = 8 + Number(n);

  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) return fail('header is not a JSON object');

  let metadata: Record<string, string> = {};
  const infos: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(entry, fail);
      continue;
    }
    infos.push(parseTensorInfo(name, entry, dataStart, bytes.length, fail));
  }

  // Tensors may appear in the header in any order; sorted by offset, each must start after the last ends.
  const sorted = infos.filter((t) => t.end > t.begin).sort((x, y) => x.begin - y.begin);
  for (let i = 1; i < sorted.length; i++) {
    const [prev, cur] = [sorted[i - 1], sorted[i]];
    if (cur.begin < prev.end) {
      fail(`tensors ${preview(prev.name, 120)} [${prev.begin}, ${prev.end}) and ${preview(cur.name, 120)} [${cur.begin}, ${cur.end}) overlap`);
    }
  }
  // fromEntries defines own properties, so even a tensor named "__proto__" is stored as data.
  const header = Object.fromEntries(infos.map((t) => [t.name, t]));
  return { header, metadata, bytes, dataStart, fileName };
}

function parseMetadata(entry: unknown, fail: (msg: string) => never): Record<string, string> {
  if (!isObject(entry)) fail('"__metadata__" is not an object');
  const meta = entry as Record<string, unknown>;
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v !== 'string') fail(`"__metadata__" value for ${preview(k, 120)} is not a string`);
  }
  return meta as Record<string, string>;
}

function parseTensorInfo(name: string, entry: unknown, dataStart: number, fileLength: number, fail: (msg: string) => never): TensorInfo {
  const bad = (msg: string): never => fail(`tensor ${preview(name, 120)}: ${msg}`);
  if (!isObject(entry)) bad('header entry is not an object');
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (!isDtype(dtype)) return bad(`unsupported dtype ${preview(dtype)} (expected one of F32, F16, BF16)`);
  if (!Array.isArray(shape) || !shape.every(isCount)) return bad(`shape ${preview(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    return bad(`data_offsets ${preview(offsets)} is not a pair of non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  const elements = shape.reduce((p: number, d: number) => p * d, 1);
  const expected = elements * DTYPE_BYTES[dtype];
  if (end < begin || end - begin !== expected) {
    bad(`data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${dtype} shape [${shape.join(', ')}] needs ${expected}`);
  }
  if (dataStart + end > fileLength) {
    bad(`data ends at byte ${dataStart + end}, past the end of the file (${fileLength} bytes); the file is truncated`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** One tensor as float32, whatever its stored dtype. The data is copied, so it may be unaligned in the file. */
export function tensorToF32(f: SafetensorsFile, name: string): Float32Array {
  const info = Object.hasOwn(f.header, name) ? f.header[name] : undefined;
  if (info === undefined) throw new Error(`${f.fileName ?? 'safetensors file'}: no tensor named "${name}"`);
  const raw = f.bytes.slice(f.dataStart + info.begin, f.dataStart + info.end); // copy: aligned, own buffer
  const count = (info.end - info.begin) / DTYPE_BYTES[info.dtype];
  if (!HOST_LITTLE_ENDIAN) return readBigEndianHost(raw, info.dtype, count);
  if (info.dtype === 'F32') return new Float32Array(raw.buffer, 0, count);
  const halves = new Uint16Array(raw.buffer, 0, count);
  return info.dtype === 'BF16' ? bf16ToF32(halves) : f16ToF32(halves);
}

/**
 * What is wrong with a tensor holding NaN or an infinity, or null when every value is finite: how many
 * values are bad, and the first one with its position (as an index into `shape` and as a flat index).
 * `x - x` is 0 for every finite float and NaN for NaN and both infinities: one subtraction per value.
 */
export function describeNonFinite(name: string, data: ArrayLike<number>, shape: readonly number[]): string | null {
  let first = -1;
  let count = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (first < 0) return null;
  const at: number[] = [];
  for (let d = shape.length - 1, rest = first; d >= 0; d--) {
    at.unshift(shape[d] > 0 ? rest % shape[d] : 0);
    rest = shape[d] > 0 ? Math.floor(rest / shape[d]) : 0;
  }
  const values = count === 1 ? '1 non-finite value' : `${count} non-finite values`;
  return `tensor "${name}" holds ${values} (the first, ${data[first]}, at [${at.join(', ')}], flat index ${first} of ${data.length})`;
}

const BROKEN_CHECKPOINT = 'A model with such a weight computes NaN everywhere: the file was written by a training run that diverged, or is damaged. ' +
  'Load an earlier checkpoint or another copy of this one.';

/** tensorToF32, refusing a tensor that holds NaN or an infinity: what every path that loads a model reads weights with. */
export function finiteTensorF32(f: SafetensorsFile, name: string): Float32Array {
  const data = tensorToF32(f, name);
  const bad = describeNonFinite(name, data, f.header[name].shape);
  if (bad !== null) throw new Error(`${f.fileName ?? 'safetensors file'}: ${bad}. ${BROKEN_CHECKPOINT}`);
  return data;
}

/** Checks every tensor of a file with finiteTensorF32 (one tensor decoded at a time). */
export function checkFiniteTensors(f: SafetensorsFile): void {
  for (const name of Object.keys(f.header)) finiteTensorF32(f, name);
}

/** Slow path through DataView, for a big-endian host only. */
function readBigEndianHost(raw: Uint8Array, dtype: Dtype, count: number): Float32Array {
  const view = new DataView(raw.buffer);
  if (dtype === 'F32') return Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
  const halves = Uint16Array.from({ length: count }, (_, i) => view.getUint16(2 * i, true));
  return dtype === 'BF16' ? bf16ToF32(halves) : f16ToF32(halves);
}

/** bfloat16 is the top half of a float32, so widening is a shift (exact, NaN payloads included). */
function bf16ToF32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) bits[i] = h[i] << 16;
  return out;
}

function f32Bits(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

/** Round-to-nearest-even, as PyTorch does; NaN stays NaN (quieted) rather than truncating to inf. */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const bits = f32Bits(x);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    if ((b & 0x7fffffff) > 0x7f800000) out[i] = (b >>> 16) | 0x0040;
    // Adding 0x7fff plus the lowest kept bit rounds ties to even; overflow correctly carries into inf.
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

type TypedTensor = { name: string; dtype: Dtype; data: Uint16Array | Float32Array; shape: number[] };

export function writeSafetensors(tensors: { name: string; data: Float32Array; shape: number[] }[], metadata?: Record<string, string>): Uint8Array {
  return writeSafetensorsTyped(
    tensors.map((t) => ({ ...t, dtype: 'F32' as const })),
    metadata,
  );
}

/**
 * Tensors are stored back to back in the given order, with no gaps: the reference implementation rejects
 * gaps, and our files must load in PyTorch too. The header is padded with spaces (as the format allows)
 * so the data starts on an 8-byte boundary; every tensor is then aligned to its own element size when
 * all tensors share a dtype, as our checkpoints do. `data` holds float32 values for F32 and raw bits
 * (see f32ToF16, f32ToBf16) for F16 and BF16.
 */
export function writeSafetensorsTyped(tensors: TypedTensor[], metadata?: Record<string, string>): Uint8Array {
  const entries: [string, unknown][] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`writeSafetensors: metadata value for "${k}" is not a string`);
    }
    entries.push(['__metadata__', metadata]);
  }
  const seen = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    const bad = (msg: string): never => {
      throw new Error(`writeSafetensors: tensor "${t.name}": ${msg}`);
    };
    if (t.name === '__metadata__' || seen.has(t.name)) bad('name is reserved or used twice');
    seen.add(t.name);
    if (!isDtype(t.dtype)) bad(`unsupported dtype ${JSON.stringify(t.dtype)}`);
    const wantArray = t.dtype === 'F32' ? 'Float32Array' : 'Uint16Array'; // 16-bit dtypes carry raw bits
    if ((t.dtype === 'F32') !== (t.data instanceof Float32Array)) bad(`${t.dtype} data must be a ${wantArray}`);
    if (!t.shape.every((d) => isCount(d))) bad(`shape [${t.shape.join(', ')}] is not a list of non-negative integers`);
    const elements = t.shape.reduce((p, d) => p * d, 1);
    if (elements !== t.data.length) bad(`shape [${t.shape.join(', ')}] has ${elements} elements, data has ${t.data.length}`);
    const size = elements * DTYPE_BYTES[t.dtype];
    entries.push([t.name, { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] }]);
    offset += size;
  }

  // Pad with spaces (valid trailing JSON whitespace) so the data section starts 8-byte aligned.
  const json = new TextEncoder().encode(JSON.stringify(Object.fromEntries(entries)));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.fill(0x20, 8, 8 + headerLength);
  out.set(json, 8);
  let pos = 8 + headerLength;
  for (const t of tensors) {
    if (HOST_LITTLE_ENDIAN) out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    else writeLittleEndian(out, pos, t.data);
    pos += t.data.byteLength;
  }
  return out;
}

/** Slow path for a big-endian host: the file is little-endian whatever the machine. */
function writeLittleEndian(out: Uint8Array, pos: number, data: Float32Array | Uint16Array): void {
  const view = new DataView(out.buffer, out.byteOffset + pos, data.byteLength);
  if (data instanceof Float32Array) data.forEach((v, i) => view.setFloat32(4 * i, v, true));
  else data.forEach((v, i) => view.setUint16(2 * i, v, true));
}

/**
 * A sharded checkpoint's index (model.safetensors.index.json):
 * {"metadata": {...}, "weight_map": {"tensor name": "model-00001-of-00002.safetensors", ...}}.
 * Shard names are resolved next to the index, so absolute paths and ".." are rejected. `shards` lists
 * the distinct shard files in first-mention order, which is the order to fetch them in.
 */
export function parseShardIndex(json: string, fileName = 'model.safetensors.index.json'): { weightMap: Record<string, string>; shards: string[] } {
  const fail = (msg: string): never => {
    throw new Error(`${fileName}: ${msg}`);
  };
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (e) {
    fail(`not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(value)) return fail('not a JSON object');
  const map = value.weight_map;
  if (!isObject(map)) return fail('missing "weight_map" object');
  if (Object.keys(map).length === 0) fail('"weight_map" is empty');
  const shards = new Set<string>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || shard.length === 0) fail(`tensor "${tensor}": shard is not a file name`);
    const file = shard as string;
    if (file.startsWith('/') || file.split(/[/\\]/).includes('..')) fail(`tensor "${tensor}": shard "${file}" points outside the checkpoint folder`);
    shards.add(file);
  }
  return { weightMap: map as Record<string, string>, shards: [...shards] };
}
