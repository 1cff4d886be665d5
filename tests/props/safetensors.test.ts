// safetensors files and sharded-checkpoint indexes from the network or the user's disk: valid files with
// bytes flipped, cut, inserted or repeated, headers with a field replaced by any JSON value (nested deeper
// than any stack included), and random bytes either parse into tensors that read back whole, or are refused
// with an Error naming the file; never a TypeError, a RangeError from a bad allocation or a stack overflow.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Dtype, f32ToBf16, f32ToF16, finiteTensorF32, parseSafetensors, parseShardIndex, tensorToF32, writeSafetensorsTyped,
} from '../../src/hub/safetensors';
import { cleanError, deepJson, mutatedBytes, mutatedText, parsesOrRefuses, PROPS, withFieldReplaced } from './props';

const dims = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 3 });
const tensor = fc.record({ dtype: fc.constantFrom<Dtype>('F32', 'F16', 'BF16'), shape: dims, seed: fc.nat() });
/** A valid file of one to three tensors (the names are unique), as writeSafetensorsTyped writes them. */
const validFile = fc.array(tensor, { minLength: 1, maxLength: 3 }).map((ts) =>
  writeSafetensorsTyped(ts.map((t, i) => {
    const n = t.shape.reduce((p, d) => p * d, 1);
    const x = Float32Array.from({ length: n }, (_, j) => Math.sin(t.seed + j));
    return { name: `t${i}`, dtype: t.dtype, shape: t.shape, data: t.dtype === 'F32' ? x : t.dtype === 'F16' ? f32ToF16(x) : f32ToBf16(x) };
  }), { format: 'pt' }),
);

/** A header (JSON text) and the data bytes behind it, assembled with a correct length prefix. */
function withHeader(header: string, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

/** Parses, then reads every tensor: whatever is accepted must read back with as many values as its shape says. */
function readAll(bytes: Uint8Array): void {
  const f = parsesOrRefuses(() => parseSafetensors(bytes, 'm.safetensors'), /^m\.safetensors: /);
  if (!f) return;
  for (const [name, info] of Object.entries(f.header)) {
    const x = tensorToF32(f, name);
    expect(x.length).toBe(info.shape.reduce((p, d) => p * d, 1));
    parsesOrRefuses(() => finiteTensorF32(f, name), /^m\.safetensors: tensor ".*" holds \d+ non-finite/);
  }
}

describe('parseSafetensors (property-based)', () => {
  it('reads back every valid file', () => {
    fc.assert(fc.property(validFile, (bytes) => {
      expect(Object.keys(parseSafetensors(bytes).header).length).toBeGreaterThan(0);
    }), PROPS);
  });

  it('a valid file with bytes flipped, cut, inserted, deleted or repeated', () => {
    fc.assert(fc.property(mutatedBytes(validFile), readAll), PROPS);
  });

  it('a valid header with one field of one tensor replaced by any JSON value', () => {
    const entry = { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] };
    fc.assert(
      fc.property(withFieldReplaced(entry), fc.integer({ min: 0, max: 48 }), (text, dataBytes) => readAll(withHeader(`{"w":${text}}`, dataBytes))),
      PROPS,
    );
  });

  it('a mutated header text behind a correct length prefix, and random bytes', () => {
    const header = '{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"F32","shape":[1,1],"data_offsets":[6,10]}}';
    fc.assert(fc.property(mutatedText(fc.constant(header)), (text) => readAll(withHeader(text, 10))), PROPS);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), readAll), PROPS);
  });

  it('a shape nested 20,000 deep or 200,000 entries long is refused with a short message', () => {
    for (const shape of [deepJson(20_000), JSON.stringify(Array.from({ length: 200_000 }, () => -1))]) {
      try {
        parseSafetensors(withHeader(`{"w":{"dtype":"F32","shape":${shape},"data_offsets":[0,4]}}`, 4), 'deep.safetensors');
        expect.unreachable('accepted');
      } catch (e) {
        cleanError(e, /^deep\.safetensors: tensor "w": shape .{0,80} is not a list of non-negative integers$/);
      }
    }
  });
});

describe('parseShardIndex (property-based)', () => {
  const index = { metadata: { total_size: 10 }, weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors' } };

  it('a mutated index, an index with a field replaced, or any JSON: a map of tensors to shards, or an Error naming the file', () => {
    const accepted = (text: string) => {
      const r = parsesOrRefuses(() => parseShardIndex(text, 'index.json'), /^index\.json: /);
      if (!r) return;
      for (const shard of Object.values(r.weightMap)) expect(typeof shard).toBe('string');
      expect(r.shards.every((s) => !s.startsWith('/') && !s.split(/[/\\]/).includes('..'))).toBe(true);
    };
    fc.assert(fc.property(mutatedText(fc.constant(JSON.stringify(index))), accepted), PROPS);
    fc.assert(fc.property(withFieldReplaced(index), accepted), PROPS);
    fc.assert(fc.property(fc.json(), accepted), PROPS);
  });
});
