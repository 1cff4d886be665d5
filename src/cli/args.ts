// A small strict argument parser: known flags only, every value checked, errors name the flag.

export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * One flag. An 'int' is a whole number within [min, max] (default 0 to 2^53 - 1); a value outside (or not a
 * whole number) is refused with the range in the message, so no flag can ask for 10^20 iterations or a
 * seed that wraps around. The runner's flags all state their own range.
 */
export type FlagSpec =
  | { type: 'string' | 'bool'; help: string }
  | { type: 'int'; min?: number; max?: number; help: string };

export type Parsed = { command: string | null; flags: Record<string, string | number | boolean> };

const range = (spec: { min?: number; max?: number }) => [spec.min ?? 0, spec.max ?? Number.MAX_SAFE_INTEGER];

function intValue(name: string, spec: { min?: number; max?: number }, value: string): number {
  const [min, max] = range(spec);
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`Flag --${name} takes a whole number from ${min} to ${max}, got "${value}".`);
  return n;
}

/** Parses `[command] --flag value ...`. `commands` lists the words accepted before the flags. */
export function parseArgs(argv: string[], specs: Record<string, FlagSpec>, commands: string[]): Parsed {
  const flags: Parsed['flags'] = {};
  let command: string | null = null;
  let i = 0;
  if (argv[0] && !argv[0].startsWith('-')) {
    if (!commands.includes(argv[0])) throw new UsageError(`Unknown command "${argv[0]}". Commands: ${commands.join(', ')}.`);
    command = argv[0];
    i = 1;
  }
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new UsageError(`Unexpected argument "${arg}"; flags look like --name value.`);
    let [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (!spec) throw new UsageError(`Unknown flag --${name}. Known flags: ${Object.keys(specs).map((s) => `--${s}`).join(', ')}.`);
    if (spec.type === 'bool') {
      if (inline !== undefined && inline !== 'true' && inline !== 'false') throw new UsageError(`Flag --${name} takes no value (or =true, =false), got "${inline}".`);
      flags[name] = inline !== 'false';
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`Flag --${name} needs a value.`);
    flags[name] = spec.type === 'int' ? intValue(name, spec, value) : value;
  }
  return { command, flags };
}

export function usage(title: string, specs: Record<string, FlagSpec>): string {
  const arg = (s: FlagSpec) => (s.type === 'bool' ? '' : s.type === 'int' ? ` <${range(s).join('..')}>` : ' <string>');
  const lines = Object.entries(specs).map(([k, s]) => `  --${k}${arg(s)}`.padEnd(30) + s.help);
  return `${title}\n${lines.join('\n')}`;
}
