// Untrusted values in error messages. JSON.parse reads arrays nested a million deep, but JSON.stringify (and
// String(), through Array.prototype.join) of one nested a few thousand deep overflows the stack, and a field
// holding a million numbers would make a message megabytes long: preview() is short and never throws.

/** A JSON rendering of `value` cut to `max` characters ("..." marks the cut). */
export function preview(value: unknown, max = 60): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value); // undefined, functions and symbols have no JSON
  } catch {
    text = Array.isArray(value) ? '[[[...]]] (nested too deep to print)' : '{...} (nested too deep to print)';
  }
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
