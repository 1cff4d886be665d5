// Host side of shaders/matmul.wgsl: C[M,N] (+)= alpha·op(A)·op(B) (+ bias), and the bias gradient sumRows.
//
// How the linear layer (W stored [N,K] as in PyTorch, x [M,K], y [M,N], M = BT rows) uses it:
//   forward  y  = x·W^T + b     matmul({ a: x,  b: W, c: y,  M, N, K, transB: true, bias: b })
//   dx (+)= dy·W                matmul({ a: dy, b: W, c: dx, M, N: K, K: N, accumulate })
//   dW (+)= dy^T·x              matmul({ a: dy, b: x, c: dW, M: N, N: K, K: M, transA: true, accumulate })
//   db (+)= sum over rows of dy sumRows({ x: dy, out: db, M, N, accumulate })
// alpha (default 1) scales the product only; LoRA uses it for y += scale·u·B^T (src/model/lora.ts).
// Windows of larger matrices (src/model/vocab.ts: the LM head over vocabulary chunks and logits row blocks):
//   matmul({ ..., a, aOffset, lda })   element (i, j) of the stored A is a[aOffset + i*lda + j]; B and C alike.
// Frozen f16 base weights (src/model/params.ts, dtype 'f16'): matmul({ ..., b: W, bF16: true }) reads B as
// IEEE halves packed two per 32-bit word (src/util/half.ts, packF16) and still accumulates in f32; offsets and
// strides stay in elements. It is the only half-precision operand: A, C and the bias are always f32.
// Each (entry point, transA, transB, accumulate, bF16) variant compiles once through the pipeline cache.
import code from '../../shaders/matmul.wgsl?raw';
import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import { type Dispatch, grid1d, makeDispatch } from '../gpu/kernel';
import { matmulVariant } from './profile';
import { checkDims, checkLen, checkNoAlias } from './shapes';

const shader = { name: 'matmul', code };

/**
 * Threads per workgroup side on the tiled path (the shader's WG override); each thread computes a 4x4 block, so a
 * workgroup owns a (4*WG)x(4*WG) tile of C. Small products take 8 (32x32 tiles): a 64x64 tile would
 * leave most of its 256 threads idle, and fewer tiles would mean fewer workgroups to spread.
 */
function threadsPerSide(M: number, N: number): number {
  return Math.ceil(M / 64) * Math.ceil(N / 64) < 16 ? 8 : 16;
}
/** Columns per sum_rows workgroup. */
const SUM_COLS = 32;

export interface MatmulArgs {
  a: View; b: View; c: View; // f32 row-major
  M: number; N: number; K: number;
  transA?: boolean; // false: A stored [M,K]; true: A stored [K,M] (use A^T)
  transB?: boolean; // false: B stored [K,N]; true: B stored [N,K] (use B^T) -- the PyTorch Linear weight layout
  accumulate?: boolean; // true: C += op(A)·op(B); false: C = op(A)·op(B)
  bias?: View; // optional [N], added to every row (only allowed when accumulate is false)
  alpha?: number; // scales op(A)·op(B) (not C, not the bias); default 1
  /** b holds packed halves (two per u32, element e in the low half of word e/2 when e is even), not f32. */
  bF16?: boolean;
  /**
   * Windows (in floats): element (i, j) of the stored A is a[aOffset + i*lda + j], likewise B and C.
   * Defaults: offset 0 and the stored row length (A: K, or M with transA; B: N, or K with transB; C: N).
   */
  aOffset?: number; lda?: number;
  bOffset?: number; ldb?: number;
  cOffset?: number; ldc?: number;
}

/**
 * Checks a stored operand of `rows` x `cols` (named `label`, e.g. 'a [M,K]') at `offset` with row stride
 * `ld` against its view; returns [offset, ld].
 */
function windowOf(label: string, v: View, rows: number, cols: number, offset = 0, ld = cols, elemBytes = 4): [number, number] {
  if (!Number.isInteger(offset) || offset < 0) throw new Error(`matmul: ${label} offset must be an integer >= 0, got ${offset}`);
  if (!Number.isInteger(ld) || ld < cols) throw new Error(`matmul: ${label} row stride must be an integer >= its ${cols} columns, got ${ld}`);
  const name = offset || ld !== cols ? `${label} (offset ${offset}, row stride ${ld})` : label;
  checkLen('matmul', { [name]: v }, offset + (rows - 1) * ld + cols, elemBytes);
  return [offset, ld];
}


export function matmul(gpu: Gpu, args: MatmulArgs): Dispatch[] {
  const { a, b, c, M, N, K, bias } = args;
  const transA = args.transA ?? false;
  const transB = args.transB ?? false;
  const accumulate = args.accumulate ?? false;
  const alpha = args.alpha ?? 1;
  checkDims('matmul', { M, N, K });
  if (!Number.isFinite(alpha)) throw new Error(`matmul: alpha must be a finite number, got ${alpha}`);
  const [aOff, lda] = transA ? windowOf('a [K,M]', a, K, M, args.aOffset, args.lda) : windowOf('a [M,K]', a, M, K, args.aOffset, args.lda);
  const bF16 = args.bF16 ?? false;
  const bLabel = (dims: string) => `b ${dims}${bF16 ? ' (f16)' : ''}`;
  const bBytes = bF16 ? 2 : 4;
  const [bOff, ldb] = transB
    ? windowOf(bLabel('[N,K]'), b, N, K, args.bOffset, args.ldb, bBytes)
    : windowOf(bLabel('[K,N]'), b, K, N, args.bOffset, args.ldb, bBytes);
  const [cOff, ldc] = windowOf('c [M,N]', c, M, N, args.cOffset, args.ldc);
  if (bias) {
    if (accumulate) throw new Error('matmul: bias is only allowed when accumulate is false (add it once, in the forward)');
    checkLen('matmul', { 'bias [N]': bias }, N);
  }
  checkNoAlias('matmul', 'c', c, bias ? { a, b, bias } : { a, b });

  // CPU drivers take the barrier-free direct path: 4x4 threads with 8x8 blocks (32x32 tiles); see the shader and ./profile.ts.
  const direct = matmulVariant(gpu) === 'direct';
  const WG = direct ? 4 : threadsPerSide(M, N);
  const tile = (direct ? 8 : 4) * WG;
  const tilesN = Math.ceil(N / tile);
  const tiles = Math.ceil(M / tile) * tilesN;
  const uniforms = [M, N, K, tilesN, tiles, { f32: alpha }, lda, ldb, ldc, aOff, bOff, cOff];
  // B_F16 only when set, so the f32 variants keep their pipeline keys.
  const flags = { TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0, WG, ...(bF16 ? { B_F16: 1 } : {}) };
  const workgroups = grid1d(gpu, tiles, 1);
  const label = `matmul ${M}x${N}x${K}${transA ? ' tA' : ''}${transB ? ' tB' : ''}${bF16 ? ' f16B' : ''}${accumulate ? ' +=' : ''}${alpha !== 1 ? ` x${alpha}` : ''}`;
  if (bias) {
    return [makeDispatch(gpu, { label, shader, entry: direct ? 'direct_bias' : 'main_bias', constants: flags, uniforms, buffers: { 1: a, 2: b, 3: c, 4: bias }, workgroups })];
  }
  return [
    makeDispatch(gpu, {
      label,
      shader,
      entry: direct ? 'direct' : 'main',
      constants: { ...flags, ACCUMULATE: accumulate ? 1 : 0 },
      uniforms,
      buffers: { 1: a, 2: b, 3: c },
      workgroups,
    }),
  ];
}

/** Column sums for the bias gradient: out[n] (+)= sum_m x[m, n]. x is [M, N]. Deterministic. */
export function sumRows(gpu: Gpu, args: { x: View; out: View; M: number; N: number; accumulate?: boolean }): Dispatch[] {
  const { x, out, M, N } = args;
  const accumulate = args.accumulate ?? false;
  checkDims('sumRows', { M, N });
  checkLen('sumRows', { 'x [M,N]': x }, M * N);
  checkLen('sumRows', { 'out [N]': out }, N);
  checkNoAlias('sumRows', 'out', out, { x });
  const tiles = Math.ceil(N / SUM_COLS);
  return [
    makeDispatch(gpu, {
      label: `sumRows ${M}x${N}${accumulate ? ' +=' : ''}`,
      shader,
      entry: 'sum_rows',
      constants: { SUM_ACCUMULATE: accumulate ? 1 : 0 },
      uniforms: [M, N, tiles],
      buffers: { 1: x, 2: out },
      workgroups: grid1d(gpu, tiles, 1),
    }),
  ];
}
