// The host's f32 -> f16 encoder (round to nearest, ties to even) against bit patterns worked out by hand,
// the exact decoder, and the two-per-word packing the kernels read.
import { describe, expect, it } from 'vitest';
import { f16ToF32, f32ToF16, packF16, roundToF16, unpackF16 } from '../../src/util/half';
import { rng } from '../../src/util/random';

const hex = (bits: ArrayLike<number>) => Array.from(bits, (b) => `0x${b.toString(16).padStart(4, '0')}`);
const encode = (xs: number[]) => hex(f32ToF16(Float32Array.from(xs)));

describe('f32ToF16', () => {
  it('encodes exact values and the ends of the range', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [1.5, 0x3e00],
      [65504, 0x7bff], // the largest half
      [-65504, 0xfbff],
      [2 ** -14, 0x0400], // the smallest normal
      [1023 * 2 ** -24, 0x03ff], // the largest subnormal
      [2 ** -24, 0x0001], // the smallest subnormal
      [-(2 ** -24), 0x8001],
      [Infinity, 0x7c00], [-Infinity, 0xfc00],
    ];
    expect(encode(cases.map((c) => c[0]))).toEqual(hex(cases.map((c) => c[1])));
  });

  it('rounds to nearest: 0.1, 1/3, and values near the overflow threshold', () => {
    const cases: [number, number][] = [
      [0.1, 0x2e66], // 0.0999755859375 (0.10009765625 is farther)
      [-0.1, 0xae66],
      [1 / 3, 0x3555], // 0.333251953125
      [65519, 0x7bff], // below the midpoint 65520: still the largest half
      [65520, 0x7c00], // the midpoint ties to even, which is inf (0x7bff is odd)
      [1e6, 0x7c00],
      [3.4028234663852886e38, 0x7c00], // the largest float32
      [1e-10, 0x0000], // far below half the smallest subnormal
    ];
    expect(encode(cases.map((c) => c[0]))).toEqual(hex(cases.map((c) => c[1])));
  });

  it('breaks ties to even, in the normals and the subnormals, carrying into the exponent', () => {
    const cases: [number, number][] = [
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1 + 2^-10: the even one, 1
      [1 + 3 * 2 ** -11, 0x3c02], // halfway between mantissas 1 and 2: 2
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just past the tie: up
      [2049, 0x6800], // spacing 2 above 2048: the tie goes to 2048
      [2051, 0x6802], // to 2052
      [2047.5, 0x6800], // halfway between 2047 (odd) and 2048: up, carrying into the exponent
      [2 ** -25, 0x0000], // half the smallest subnormal: ties to 0
      [3 * 2 ** -25, 0x0002], // 1.5 units: to 2
      [5 * 2 ** -25, 0x0002], // 2.5 units: to 2
      [2 ** -25 * 1.0001, 0x0001], // past the tie: up to 1 unit
      [1023.5 * 2 ** -24, 0x0400], // the largest subnormal's upper tie rounds into the normals
    ];
    expect(encode(cases.map((c) => c[0]))).toEqual(hex(cases.map((c) => c[1])));
  });

  it('keeps NaN a NaN (quiet, sign and top payload kept) rather than turning it into inf', () => {
    const bits = new Uint32Array([0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa00000]);
    const h = f32ToF16(new Float32Array(bits.buffer));
    expect(hex(h)).toEqual(hex([0x7e00, 0xfe00, 0x7e00, 0x7f00]));
    for (const v of f16ToF32(h)) expect(v).toBeNaN();
  });

  it('round-trips every half exactly (decode, then encode)', () => {
    const all = Uint16Array.from({ length: 1 << 16 }, (_, i) => i);
    const back = f32ToF16(f16ToF32(all));
    const nan = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    const bad = Array.from(all).findIndex((h, i) => (nan(h) ? !nan(back[i]) : back[i] !== h));
    expect(bad, `first half that does not round-trip: 0x${bad.toString(16)} -> 0x${back[bad]?.toString(16)}`).toBe(-1);
  });

  it('decodes subnormals, zeros and infinities exactly', () => {
    expect(Array.from(f16ToF32([0x0001, 0x03ff, 0x8000, 0x7c00, 0xfc00, 0x3c01]))).toEqual([
      2 ** -24, 1023 * 2 ** -24, -0, Infinity, -Infinity, 1 + 2 ** -10,
    ]);
  });

  it('rounds random values to a nearest half, within half a unit in the last place', () => {
    const r = rng(3);
    const x = Float32Array.from({ length: 5000 }, () => (r() - 0.5) * 2 ** Math.floor(r() * 36 - 26));
    const y = roundToF16(x);
    for (let i = 0; i < x.length; i++) {
      const a = Math.abs(x[i]);
      const ulp = a < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(a)) - 10);
      expect(Math.abs(y[i] - x[i]), `${x[i]} -> ${y[i]}`).toBeLessThanOrEqual(ulp / 2);
    }
  });
});

describe('packF16 / unpackF16', () => {
  it('puts element 2i in the low half of word i and 2i + 1 in the high half, the odd tail zero-padded', () => {
    const words = packF16(Float32Array.from([1, 2, 3]));
    expect(Array.from(words, (w) => w.toString(16))).toEqual(['40003c00', '4200']);
    expect(Array.from(unpackF16(words, 3))).toEqual([1, 2, 3]);
  });

  it('round-trips to the f16-rounded values and refuses to read past the words', () => {
    const r = rng(4);
    const x = Float32Array.from({ length: 101 }, () => r() * 8 - 4);
    expect(unpackF16(packF16(x), 101)).toEqual(roundToF16(x));
    expect(() => unpackF16(new Uint32Array(2), 5)).toThrow(/2 words hold at most 4 halves, asked for 5/);
  });
});
