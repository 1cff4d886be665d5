// What the engine needs of a tokenizer: the arithmetic task's character tokenizer
// (src/star/tasks/char_tokenizer.ts) and the Hub tokenizer adapter (src/hub/tokenizer.ts) both fit. It lives
// below both, so the Hub layer never imports the STaR engine for a type.

export interface EngineTokenizer {
  vocabSize: number;
  bos: number;
  eos: number;
  pad: number;
  encode(text: string): number[];
  decode(ids: number[]): string;
}
