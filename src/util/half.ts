// IEEE 754 half precision (binary16) on the host: the f16 dtype of safetensors files, and the f16 store of
// a frozen base model on the GPU, where halves are packed two per 32-bit word (packF16) and the kernels
// widen them with WGSL's unpack2x16float.

/** Round-to-nearest-even; too large becomes inf, too small becomes a subnormal or zero; NaN stays NaN. */
export function f32ToF16(x: Float32Array): Uint16Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < bits.length; i++) {
    const sign = (bits[i] >>> 16) & 0x8000;
    const abs = bits[i] & 0x7fffffff;
    if (abs > 0x7f800000) {
      out[i] = sign | 0x7e00 | ((abs >>> 13) & 0x3ff); // quiet NaN, top of the payload kept
    } else if (abs >= 0x477ff000) {
      out[i] = sign | 0x7c00; // >= 65520, the midpoint above the largest half (65504), rounds to inf
    } else if (abs < 0x38800000) {
      // Below 2^-14 the half is subnormal, counting units of 2^-24; the scaled value is exact in float64.
      out[i] = sign | roundHalfEven(Math.abs(x[i]) * 2 ** 24); // may round up to 0x400, the smallest normal
    } else {
      const exp = (abs >>> 23) - 127 + 15;
      const mant = abs & 0x7fffff;
      const dropped = mant & 0x1fff; // the 13 bits that do not fit
      let h = (exp << 10) | (mant >>> 13);
      if (dropped > 0x1000 || (dropped === 0x1000 && h & 1)) h++; // a carry into the exponent is correct
      out[i] = sign | h;
    }
  }
  return out;
}

function roundHalfEven(t: number): number {
  const r = Math.floor(t);
  const frac = t - r;
  return frac > 0.5 || (frac === 0.5 && r % 2 === 1) ? r + 1 : r;
}

/** Exact widening (every half is a float32), NaN payloads kept. */
export function f16ToF32(h: ArrayLike<number>): Float32Array {
  const out = new Float32Array(h.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) {
    const sign = (h[i] & 0x8000) << 16;
    const exp = (h[i] >> 10) & 0x1f;
    const mant = h[i] & 0x3ff;
    if (exp === 0 && mant !== 0) {
      // Subnormal: mant * 2^-24, exact in float32 (whose normal range reaches far lower).
      out[i] = (sign ? -1 : 1) * mant * 2 ** -24;
    } else if (exp === 0) {
      bits[i] = sign; // +-0
    } else if (exp === 0x1f) {
      bits[i] = sign | 0x7f800000 | (mant << 13); // inf, or NaN keeping its payload
    } else {
      bits[i] = sign | ((exp + 127 - 15) << 23) | (mant << 13); // rebias the exponent
    }
  }
  return out;
}

/** Each value rounded to the nearest half, as f32: what an f16 store holds for it. */
export function roundToF16(x: Float32Array): Float32Array {
  return f16ToF32(f32ToF16(x));
}

/**
 * Halves packed two per 32-bit word, as the kernels read them: element e sits in bits 0..15 of word
 * e >> 1 when e is even, in bits 16..31 when odd (unpack2x16float's components x and y). An odd count
 * leaves the last high half zero.
 */
export function packF16(x: Float32Array): Uint32Array {
  const h = f32ToF16(x);
  const words = new Uint32Array(Math.ceil(h.length / 2));
  for (let i = 0; i < h.length; i++) words[i >> 1] |= h[i] << (16 * (i & 1));
  return words;
}

/** The first `count` halves of packed words (packF16's inverse), widened to f32. */
export function unpackF16(words: Uint32Array, count: number): Float32Array {
  if (count > 2 * words.length) throw new Error(`unpackF16: ${words.length} words hold at most ${2 * words.length} halves, asked for ${count}.`);
  const h = new Uint16Array(count);
  for (let i = 0; i < count; i++) h[i] = (words[i >> 1] >>> (16 * (i & 1))) & 0xffff;
  return f16ToF32(h);
}
