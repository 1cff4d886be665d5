// The vocabulary-sized work of the model, the token embedding gather and the LM head, arranged so
// that no binding exceeds the device's maxStorageBufferBindingSize:
//
//   W_k     row chunk k of the embedding / LM head [V, C]: vocabulary rows [v0, v1) (src/model/params.ts
//           stores a tensor larger than one binding this way; a tensor that fits is one chunk)
//   L_b     row block b of the logits [rows, V]: rows [r0, r1), each block its own buffer (logitBlocks)
//
//   forward   x        = W[tokens]                    one gather per chunk, tokens of other chunks skipped
//             L_b[:, v0:v1] = xn[r0:r1] · W_k^T       one matmul per (block, chunk), writing a column window
//   backward  dxn[r0:r1] (+)= L_b[:, v0:v1] · W_k     (dlogits in L_b) accumulated over the chunks
//             dW_k     (+)= L_b[:, v0:v1]^T · xn[r0:r1]  accumulated over the blocks
//             dE_k     (+)= the scatter-add of dres over the chunk's tokens
// The windows are matmul's offsets and row strides (src/ops/matmul.ts), so nothing is copied. With one
// chunk and one block this is exactly the plain embedding and linear layer.
// Chunks of a frozen f16 table (RowChunk.dtype 'f16', src/model/params.ts) are read as packed halves: the
// gather's tableF16 and the matmuls' bF16 (W_k is operand B in both the forward and dxn). dW_k needs f32.

import type { View } from '../gpu/buffers';
import type { Gpu } from '../gpu/device';
import type { Dispatch } from '../gpu/kernel';
import { embedding, embeddingBackward } from '../ops/embedding';
import { matmul } from '../ops/matmul';
import type { RowChunk } from './params';

/**
 * The row blocks [first, rows] of logits [rows, V] so that each block fits one binding: a single block
 * when the whole fits, else near-equal blocks. Throws when even one row does not fit.
 */
export function logitBlocks(V: number, rows: number, maxBindingBytes: number): { first: number; rows: number }[] {
  const maxRows = Math.floor(maxBindingBytes / (4 * V));
  if (maxRows < 1) {
    throw new Error(
      `One row of logits over the vocabulary of ${V} tokens needs ${4 * V} bytes, more than this GPU can bind at once ` +
        `(maxStorageBufferBindingSize ${maxBindingBytes} bytes). Use a model with a smaller vocabulary or a GPU with a larger binding limit.`,
    );
  }
  if (rows <= maxRows) return [{ first: 0, rows }];
  const per = Math.ceil(rows / Math.ceil(rows / maxRows));
  return Array.from({ length: Math.ceil(rows / per) }, (_, i) => ({ first: i * per, rows: Math.min(per, rows - i * per) }));
}

/** The row ranges of logits blocks allocated with logitBlocks' sizes (each view holds rows x V floats). */
export function blocksOf(views: View[], V: number): RowChunk[] {
  let first = 0;
  return views.map((view) => {
    const rows = view.size / (4 * V);
    if (!Number.isInteger(rows) || rows < 1) throw new Error(`A logits block of ${view.size} bytes is not a whole number of rows of ${V} logits.`);
    const b = { view, first, rows };
    first += rows;
    return b;
  });
}

function checkCovers(what: string, parts: { first: number; rows: number }[], n: number): void {
  let next = 0;
  for (const p of parts) {
    if (p.first !== next) throw new Error(`${what}: its chunks must cover rows 0..${n - 1} in order; a chunk starts at ${p.first}, expected ${next}.`);
    next += p.rows;
  }
  if (next !== n) throw new Error(`${what}: its chunks cover ${next} rows, expected ${n}.`);
}

export interface EmbedTokensArgs {
  tokens: View; // [rows] u32
  table: RowChunk[]; // the embedding [V, C] as row chunks
  out: View; // [rows, C]
  rows: number;
  C: number;
  V: number;
}

/** out = table[tokens], one gather per chunk; every output row is written by the chunk holding its token. */
export function embedTokens(gpu: Gpu, { tokens, table, out, rows, C, V }: EmbedTokensArgs): Dispatch[] {
  checkCovers('embedTokens: the table', table, V);
  return table.flatMap((k) => embedding(gpu, { tokens, table: k.view, out, rows, C, V, first: k.first, tableRows: k.rows, tableF16: k.dtype === 'f16' }));
}

export interface EmbedTokensBackwardArgs {
  dout: View; // [rows, C]
  unique: View; // token index (src/ops/embedding.ts, uploadTokenIndex)
  offsets: View;
  positions: View;
  dtable: RowChunk[]; // the embedding's gradient [V, C] as row chunks
  rows: number;
  C: number;
  V: number;
  accumulate: boolean;
}

/** dtable rows of the batch's tokens (+)= the sums of their dout rows, one dispatch per chunk. */
export function embedTokensBackward(gpu: Gpu, a: EmbedTokensBackwardArgs): Dispatch[] {
  checkCovers('embedTokensBackward: dtable', a.dtable, a.V);
  return a.dtable.flatMap((k) =>
    embeddingBackward(gpu, {
      dout: a.dout, unique: a.unique, offsets: a.offsets, positions: a.positions, dtable: k.view,
      rows: a.rows, C: a.C, V: a.V, accumulate: a.accumulate, first: k.first, tableRows: k.rows,
    }),
  );
}

export interface LmHeadArgs {
  x: View; // [rows, C] the normed hidden states
  w: RowChunk[]; // the head [V, C] as row chunks (the embedding's when tied)
  logits: RowChunk[]; // [rows, V] as row blocks (logitBlocks / blocksOf)
  C: number;
  V: number;
}

/** logits = x·W^T: one matmul per (block, chunk), each writing its block's columns [v0, v1). */
export function lmHead(gpu: Gpu, { x, w, logits, C, V }: LmHeadArgs): Dispatch[] {
  checkCovers('lmHead: the weight', w, V);
  return logits.flatMap((b) =>
    w.flatMap((k) =>
      matmul(gpu, {
        a: x, aOffset: b.first * C, b: k.view, bF16: k.dtype === 'f16', c: b.view, cOffset: k.first, ldc: V,
        M: b.rows, N: k.rows, K: C, transB: true,
      }),
    ),
  );
}

export interface LmHeadBackwardArgs extends LmHeadArgs {
  /** dlogits, in the logits blocks (the cross-entropy writes them there). */
  dx: View; // [rows, C] written
  dw?: RowChunk[]; // the head's gradient as row chunks (like w), written; omitted when the head is frozen
}

/** dx = dlogits·W (summed over chunks) and, unless frozen, dW = dlogits^T·x (summed over blocks). */
export function lmHeadBackward(gpu: Gpu, { x, w, logits, C, V, dx, dw }: LmHeadBackwardArgs): Dispatch[] {
  checkCovers('lmHeadBackward: the weight', w, V);
  if (dw) checkCovers('lmHeadBackward: the gradient', dw, V);
  if (dw && w.some((k) => k.dtype === 'f16')) {
    throw new Error('lmHeadBackward: the head is stored in f16, which only a frozen head may be; pass no dw, or store the weights in f32 to train them.');
  }
  const out: Dispatch[] = [];
  for (const b of logits) {
    w.forEach((k, i) => {
      out.push(...matmul(gpu, {
        a: b.view, aOffset: k.first, lda: V, b: k.view, bF16: k.dtype === 'f16', c: dx, cOffset: b.first * C,
        M: b.rows, N: C, K: k.rows, accumulate: i > 0,
      }));
    });
  }
  if (dw) {
    dw.forEach((k) => {
      logits.forEach((b, i) => {
        out.push(...matmul(gpu, {
          a: b.view, aOffset: k.first, lda: V, b: x, bOffset: b.first * C, c: k.view,
          M: k.rows, N: C, K: b.rows, transA: true, accumulate: i > 0,
        }));
      });
    });
  }
  return out;
}
