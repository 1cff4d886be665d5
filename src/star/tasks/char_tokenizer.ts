// A character-level tokenizer with a few whole-word tokens. The arithmetic task needs only a handful of
// symbols, so a tiny vocabulary keeps the embedding and the softmax small; the markup words ("<scratch>",
// "Input:", ...) are single tokens so the model never has to spell them out, which would only waste capacity.

export interface CharTokenizer {
  vocabSize: number;
  pad: number;
  bos: number;
  eos: number;
  encode(text: string): number[];
  /** Drops PAD/BOS/EOS, so a raw generated sequence decodes to its text. */
  decode(ids: number[]): string;
  /** The text of one token; special tokens render as "<pad>", "<bos>", "<eos>" (for debugging views). */
  tokenText(id: number): string;
}

const PAD = 0;
const BOS = 1;
const EOS = 2;
const SPECIAL_TEXT = ['<pad>', '<bos>', '<eos>'];

/**
 * Builds a tokenizer whose ids are PAD=0, BOS=1, EOS=2, then `pieces` in order. A piece is either a
 * single character or a multi-character word; encoding matches greedily, longest piece first, so a word
 * wins over the characters it is made of.
 */
export function createCharTokenizer(pieces: string[]): CharTokenizer {
  const idOf = new Map<string, number>();
  pieces.forEach((piece, i) => {
    if (piece.length === 0) throw new Error('createCharTokenizer: empty piece');
    if (idOf.has(piece)) throw new Error(`createCharTokenizer: duplicate piece ${JSON.stringify(piece)}`);
    idOf.set(piece, SPECIAL_TEXT.length + i);
  });
  // Longest first, so that greedy matching picks e.g. "</scratch>" before any shorter piece it starts with.
  const words = pieces.filter((p) => p.length > 1).sort((x, y) => y.length - x.length);
  const texts = [...SPECIAL_TEXT, ...pieces];

  function encode(text: string): number[] {
    const ids: number[] = [];
    let i = 0;
    while (i < text.length) {
      const word = words.find((w) => text.startsWith(w, i));
      if (word !== undefined) {
        ids.push(idOf.get(word)!);
        i += word.length;
        continue;
      }
      // Code points, not UTF-16 units, so the error names an emoji rather than half of one.
      const ch = String.fromCodePoint(text.codePointAt(i)!);
      const id = idOf.get(ch);
      if (id === undefined) {
        const code = ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
        throw new Error(`tokenizer: cannot encode character ${JSON.stringify(ch)} (U+${code}) at position ${i}`);
      }
      ids.push(id);
      i += ch.length;
    }
    return ids;
  }

  function tokenText(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= texts.length) {
      throw new Error(`tokenizer: token id ${id} is outside the vocabulary [0, ${texts.length})`);
    }
    return texts[id];
  }

  function decode(ids: number[]): string {
    let out = '';
    for (const id of ids) {
      if (id === PAD || id === BOS || id === EOS) continue;
      out += tokenText(id);
    }
    return out;
  }

  return { vocabSize: texts.length, pad: PAD, bos: BOS, eos: EOS, encode, decode, tokenText };
}

/** Everything the arithmetic scratchpad format (./arithmetic.ts) can contain. */
export const arithmeticTokenizer: CharTokenizer = createCharTokenizer([
  ...'0123456789 +,C:\n',
  '<scratch>',
  '</scratch>',
  'Input:',
  'Target:',
]);
