import { describe, expect, it } from 'vitest';
import {
  f32ToBf16,
  f32ToF16,
  parseSafetensors,
  parseShardIndex,
  tensorToF32,
  writeSafetensors,
  writeSafetensorsTyped,
} from '../../src/hub/safetensors';
import { randn, rng } from '../../src/util/random';

/** A file with a hand-written header (string or object) and `dataBytes` zero bytes of data. */
function rawFile(header: unknown, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

/** float32 -> 16-bit -> float32, through a written and parsed file. */
function roundTrip16(dtype: 'F16' | 'BF16', values: number[]): Float32Array {
  const x = new Float32Array(values);
  const data = dtype === 'F16' ? f32ToF16(x) : f32ToBf16(x);
  const file = parseSafetensors(writeSafetensorsTyped([{ name: 't', dtype, data, shape: [x.length] }]));
  return tensorToF32(file, 't');
}

function decodeBits(dtype: 'F16' | 'BF16', bits: number[]): Float32Array {
  const file = parseSafetensors(writeSafetensorsTyped([{ name: 't', dtype, data: new Uint16Array(bits), shape: [bits.length] }]));
  return tensorToF32(file, 't');
}

describe('safetensors round trips', () => {
  it('writes and reads F32 tensors with metadata, in order and aligned', () => {
    const r = rng(1);
    const tensors = [
      { name: 'wte', data: randn(12, r), shape: [3, 4] },
      { name: 'ln.bias', data: randn(5, r), shape: [5] },
      { name: 'scalar', data: new Float32Array([7.5]), shape: [] },
      { name: 'empty', data: new Float32Array(0), shape: [0, 3] },
    ];
    const bytes = writeSafetensors(tensors, { format: 'pt', step: '120' });
    const f = parseSafetensors(bytes, 'ckpt.safetensors');
    expect(f.dataStart % 8).toBe(0);
    expect(f.metadata).toEqual({ format: 'pt', step: '120' });
    expect(Object.keys(f.header)).toEqual(tensors.map((t) => t.name));
    let offset = 0;
    for (const t of tensors) {
      const info = f.header[t.name];
      expect(info).toMatchObject({ dtype: 'F32', shape: t.shape, begin: offset });
      expect((f.dataStart + info.begin) % 4).toBe(0);
      expect(tensorToF32(f, t.name)).toEqual(t.data);
      offset = info.end;
    }
    expect(bytes.length).toBe(f.dataStart + offset);
  });

  it('pads the header with spaces and omits empty metadata', () => {
    const bytes = writeSafetensors([{ name: 'a', data: new Float32Array([1]), shape: [1] }]);
    const f = parseSafetensors(bytes);
    const header = new TextDecoder().decode(bytes.subarray(8, f.dataStart));
    expect(header).toMatch(/^\{"a":.*\} *$/);
    expect(header).not.toContain('__metadata__');
    expect(f.metadata).toEqual({});
  });

  it('reads from an unaligned view into a larger buffer', () => {
    const bytes = writeSafetensors([{ name: 'a', data: new Float32Array([1, -2, 3.25]), shape: [3] }]);
    const host = new Uint8Array(bytes.length + 3);
    host.set(bytes, 1);
    expect(tensorToF32(parseSafetensors(host.subarray(1, 1 + bytes.length)), 'a')).toEqual(new Float32Array([1, -2, 3.25]));
  });

  it('round-trips exactly representable F16 values, subnormals and infinities', () => {
    const values = [0, 1, -2, 0.5, 1 + 2 ** -10, 65504, -65504, 2 ** -14, 2 ** -24, -3 * 2 ** -24, 1023 * 2 ** -24, Infinity, -Infinity];
    expect(roundTrip16('F16', values)).toEqual(new Float32Array(values));
    expect(Object.is(roundTrip16('F16', [-0])[0], -0)).toBe(true);
    expect(roundTrip16('F16', [NaN])[0]).toBeNaN();
  });

  it('decodes F16 bit patterns', () => {
    const got = decodeBits('F16', [0x3c00, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x8000]);
    expect([...got.slice(0, 8)]).toEqual([1, 2 ** -24, -(2 ** -24), 1023 * 2 ** -24, 2 ** -14, 65504, Infinity, -Infinity]);
    expect(got[8]).toBeNaN();
    expect(got[9]).toBeNaN(); // signalling NaN must not become infinity
    expect(Object.is(got[10], -0)).toBe(true);
  });

  it('rounds to F16 to nearest, ties to even', () => {
    const cases: [number, number][] = [
      [1 + 2 ** -11, 1], // tie, 1 is even
      [1 + 3 * 2 ** -11, 1 + 2 ** -9], // tie, rounds up to the even neighbour
      [1 + 2 ** -11 + 2 ** -20, 1 + 2 ** -10], // just above the tie
      [65519, 65504],
      [65520, Infinity], // the midpoint above the largest half
      [-1e6, -Infinity],
      [2 ** -25, 0], // half a subnormal unit: tie to 0
      [3 * 2 ** -25, 2 ** -23], // 1.5 units: tie to 2
      [2 ** -26, 0],
      [1023.5 * 2 ** -24, 2 ** -14], // the largest subnormal rounds up into the normals
      [2 ** -14 * (1 + 2 ** -11), 2 ** -14],
    ];
    expect([...roundTrip16('F16', cases.map((c) => c[0]))]).toEqual(cases.map((c) => c[1]));
  });

  it('round-trips BF16 values and rounds to nearest, ties to even', () => {
    const exact = [0, 1, -2, 0.5, 3.140625, 2 ** -130, 3.3895313892515355e38, Infinity, -Infinity];
    expect(roundTrip16('BF16', exact)).toEqual(new Float32Array(exact));
    const cases: [number, number][] = [
      [1 + 2 ** -8, 1],
      [1 + 3 * 2 ** -8, 1 + 2 ** -6],
      [1 + 2 ** -8 + 2 ** -20, 1 + 2 ** -7],
      [3.4028234663852886e38, Infinity], // the largest float32 rounds past the largest bfloat16
    ];
    expect([...roundTrip16('BF16', cases.map((c) => c[0]))]).toEqual(cases.map((c) => c[1]));
    expect(roundTrip16('BF16', [NaN])[0]).toBeNaN();
    expect(decodeBits('BF16', [0x7f81])[0]).toBeNaN();
  });

  it('always picks a nearest 16-bit neighbour (random values)', () => {
    const r = rng(5);
    const x = new Float32Array(2000).map(() => (r() - 0.5) * 2 ** Math.floor(r() * 40 - 30));
    for (const [dtype, encode] of [['F16', f32ToF16], ['BF16', f32ToBf16]] as const) {
      const bits = encode(x);
      const got = decodeBits(dtype, [...bits]);
      const below = decodeBits(dtype, [...bits].map((b) => (b & 0x7fff ? b - 1 : b)));
      const above = decodeBits(dtype, [...bits].map((b) => b + 1));
      for (let i = 0; i < x.length; i++) {
        const err = Math.abs(got[i] - x[i]);
        const ok = err <= Math.abs(below[i] - x[i]) && err <= Math.abs(above[i] - x[i]);
        expect(ok, `${dtype} ${x[i]} -> ${got[i]}`).toBe(true);
      }
    }
  });
});

describe('malformed safetensors files', () => {
  const ok = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };
  const parse = (bytes: Uint8Array) => () => parseSafetensors(bytes, 'bad.safetensors');

  it('rejects files shorter than the length prefix', () => {
    expect(parse(new Uint8Array(5))).toThrow(/^bad\.safetensors: file is 5 bytes, shorter than the 8-byte header length/);
  });

  it('rejects a header length past the end of the file', () => {
    const bytes = rawFile(ok, 16);
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 63n, true);
    expect(parse(bytes)).toThrow(/bad\.safetensors: header length \d+ runs past the end of the file/);
  });

  it('rejects a header that is not a JSON object', () => {
    expect(parse(rawFile('{"w": {', 0))).toThrow(/bad\.safetensors: header is not valid JSON/);
    expect(parse(rawFile('[1, 2]', 0))).toThrow(/bad\.safetensors: header is not a JSON object/);
    const bytes = rawFile('{"a":1}', 0);
    bytes[9] = 0xff; // not UTF-8
    expect(parse(bytes)).toThrow(/header is not valid JSON/);
  });

  it('names an unsupported dtype', () => {
    expect(parse(rawFile({ w: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, 16))).toThrow(
      /bad\.safetensors: tensor "w": unsupported dtype "I64"/,
    );
  });

  it('rejects bad shapes and offsets', () => {
    expect(parse(rawFile({ w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, 8))).toThrow(/tensor "w": shape \[2,-1\]/);
    expect(parse(rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }, 8))).toThrow(/tensor "w": data_offsets \[0\]/);
    expect(parse(rawFile({ w: 3 }, 8))).toThrow(/tensor "w": header entry is not an object/);
  });

  it('rejects data_offsets that do not match the shape and dtype', () => {
    expect(parse(rawFile({ w: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 16] } }, 16))).toThrow(
      /bad\.safetensors: tensor "w": data_offsets \[0, 16\] span 16 bytes, but F16 shape \[2, 2\] needs 8/,
    );
    expect(parse(rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, 8))).toThrow(/tensor "w": data_offsets \[8, 4\]/);
  });

  it('rejects a truncated file', () => {
    expect(parse(rawFile(ok, 12))).toThrow(/bad\.safetensors: tensor "w": data ends at byte \d+, past the end of the file .* truncated/);
  });

  it('rejects overlapping tensors, naming both', () => {
    const header = { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [2], data_offsets: [12, 20] } };
    expect(parse(rawFile(header, 20))).toThrow(/bad\.safetensors: tensors "a" \[0, 16\) and "b" \[12, 20\) overlap/);
    // Zero-size tensors occupy nothing, so they overlap nothing.
    const empty = { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, e: { dtype: 'F32', shape: [0], data_offsets: [8, 8] } };
    expect(() => parseSafetensors(rawFile(empty, 16))).not.toThrow();
  });

  it('rejects non-string metadata', () => {
    expect(parse(rawFile({ ...ok, __metadata__: { step: 3 } }, 16))).toThrow(/bad\.safetensors: "__metadata__" value for "step" is not a string/);
  });

  it('names the file when asked for a missing tensor', () => {
    const f = parseSafetensors(rawFile(ok, 16), 'bad.safetensors');
    expect(() => tensorToF32(f, 'nope')).toThrow(/bad\.safetensors: no tensor named "nope"/);
    expect(() => tensorToF32(f, 'toString')).toThrow(/no tensor named "toString"/);
  });

  it('refuses to write inconsistent tensors', () => {
    const data = new Float32Array(3);
    expect(() => writeSafetensors([{ name: 'a', data, shape: [2, 2] }])).toThrow(/tensor "a": shape \[2, 2\] has 4 elements, data has 3/);
    expect(() => writeSafetensors([{ name: 'a', data, shape: [3] }, { name: 'a', data, shape: [3] }])).toThrow(/used twice/);
    expect(() => writeSafetensorsTyped([{ name: 'a', dtype: 'F16', data, shape: [3] }])).toThrow(/F16 data must be a Uint16Array/);
  });
});

describe('parseShardIndex', () => {
  const index = {
    metadata: { total_size: 1234 },
    weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors', 'c.weight': 'model-00001-of-00002.safetensors' },
  };

  it('returns the weight map and the shards in first-mention order', () => {
    const { weightMap, shards } = parseShardIndex(JSON.stringify(index));
    expect(weightMap).toEqual(index.weight_map);
    expect(shards).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
  });

  it('names the file and says what is wrong', () => {
    const parse = (x: unknown) => () => parseShardIndex(typeof x === 'string' ? x : JSON.stringify(x), 'idx.json');
    expect(parse('{"weight_map": ')).toThrow(/^idx\.json: not valid JSON/);
    expect(parse([])).toThrow(/^idx\.json: not a JSON object/);
    expect(parse({ metadata: {} })).toThrow(/^idx\.json: missing "weight_map" object/);
    expect(parse({ weight_map: {} })).toThrow(/^idx\.json: "weight_map" is empty/);
    expect(parse({ weight_map: { w: 3 } })).toThrow(/^idx\.json: tensor "w": shard is not a file name/);
    expect(parse({ weight_map: { w: '../secret.safetensors' } })).toThrow(/tensor "w": shard "..\/secret.safetensors" points outside/);
    expect(parse({ weight_map: { w: '/etc/x.safetensors' } })).toThrow(/points outside/);
  });
});
