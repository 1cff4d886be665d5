// Shared pieces of the property-based parser tests: how many runs, mutations of valid inputs (bytes flipped,
// truncated, inserted, deleted, repeated; JSON nested deeper than any stack), and what a clean refusal is.
import fc from 'fast-check';
import { expect } from 'vitest';

/**
 * Runs per property: enough to find the usual crashes, few enough that every property file takes about a
 * second. PROPS_RUNS=5000 npx vitest run tests/props searches longer.
 */
export const PROPS: fc.Parameters<unknown> = { numRuns: Number(process.env.PROPS_RUNS ?? 100) };

/** Errors that mean the parser itself broke (a property read off undefined, a bad allocation, a stack overflow). */
const CRASHES = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError];

/**
 * Asserts that `e` is a refusal a user can act on: an Error (or a subclass the project defines) with a
 * message of at most `maxLength` characters, not one of the built-in crash kinds; optionally its message
 * matches `message`.
 */
export function cleanError(e: unknown, message?: RegExp, maxLength = 5000): void {
  expect(e, 'a thrown value that is not an Error').toBeInstanceOf(Error);
  const err = e as Error;
  const crash = CRASHES.find((C) => err instanceof C);
  if (crash) throw new Error(`the parser crashed with ${err.name}: ${err.message}\n${err.stack}`);
  expect(err.message.trim().length, 'an Error with an empty message').toBeGreaterThan(0);
  expect(err.message.length, `a message of ${err.message.length} characters`).toBeLessThanOrEqual(maxLength);
  if (message) expect(err.message).toMatch(message);
}

/** Runs `parse` and returns what it returned, or undefined after checking that what it threw is clean. */
export function parsesOrRefuses<T>(parse: () => T, message?: RegExp, maxLength?: number): T | undefined {
  try {
    return parse();
  } catch (e) {
    cleanError(e, message, maxLength);
    return undefined;
  }
}

export async function parsesOrRefusesAsync<T>(parse: () => Promise<T>, message?: RegExp): Promise<T | undefined> {
  try {
    return await parse();
  } catch (e) {
    cleanError(e, message);
    return undefined;
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Bytes worth inserting into JSON: its structural characters and literals, besides random bytes. */
const JSON_BITS = ['{', '}', '[', ']', '"', ',', ':', '-', '0', '1e999', 'null', 'true', '"__proto__"', '\\u0000', '\n', '\uFFFF'];
const insertion = fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.constantFrom(...JSON_BITS).map((s) => enc.encode(s)));

type Edit = { kind: 'flip' | 'truncate' | 'insert' | 'delete' | 'repeat'; at: number; len: number; bytes: Uint8Array };
const edit: fc.Arbitrary<Edit> = fc.record({
  kind: fc.constantFrom('flip', 'truncate', 'insert', 'delete', 'repeat'),
  at: fc.nat(),
  len: fc.integer({ min: 1, max: 64 }),
  bytes: insertion,
});

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

function applyEdit(b: Uint8Array, e: Edit): Uint8Array {
  const at = e.at % (b.length + 1);
  switch (e.kind) {
    case 'flip': {
      if (b.length === 0) return e.bytes;
      const c = b.slice();
      c[at % b.length] ^= e.bytes[0] || 0x80;
      return c;
    }
    case 'truncate':
      return b.slice(0, at);
    case 'insert':
      return concat(b.subarray(0, at), e.bytes, b.subarray(at));
    case 'delete':
      return concat(b.subarray(0, at), b.subarray(at + e.len));
    case 'repeat':
      return concat(b.subarray(0, at + e.len), b.subarray(at, at + e.len), b.subarray(at + e.len));
  }
}

/** A valid input with one to four edits (bytes flipped, the tail cut, bytes inserted, deleted or repeated). */
export function mutatedBytes(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([b, edits]) => edits.reduce(applyEdit, b));
}

/** The same for text (edited as UTF-8; bytes that no longer decode become U+FFFD). */
export function mutatedText(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return mutatedBytes(valid.map((s) => enc.encode(s))).map((b) => dec.decode(b));
}

/** `depth` nested arrays (or objects) around a value: JSON.parse reads it, but a recursive walk or JSON.stringify of it overflows the stack. */
export function deepJson(depth: number, inner = '1', kind: 'array' | 'object' = 'array'): string {
  return kind === 'array' ? '['.repeat(depth) + inner + ']'.repeat(depth) : '{"k":'.repeat(depth) + inner + '}'.repeat(depth);
}

/** JSON text of a valid object with one field replaced by an arbitrary JSON value, deeply nested ones included. */
export function withFieldReplaced(valid: Record<string, unknown>): fc.Arbitrary<string> {
  const keys = Object.keys(valid);
  const value = fc.oneof(
    { weight: 4, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.integer({ min: 2000, max: 20000 }).map((d) => deepJson(d)) },
    { weight: 1, arbitrary: fc.constantFrom('1e308', '-0', '1.5', '"toString"', '"__proto__"', '"constructor"', '[]', '{}', 'null') },
  );
  return fc.tuple(fc.constantFrom(...keys), value).map(([k, v]) => {
    const text = JSON.stringify({ ...valid, [k]: '\u0000SLOT\u0000' });
    return text.replace('"\\u0000SLOT\\u0000"', () => v); // a function: a value holding "$&" is not a pattern
  });
}
