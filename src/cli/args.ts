// A small strict argument parser: known flags only, every value checked, errors name the flag.

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface FlagSpec {
  /** 'string', 'int' (non-negative integer) or 'bool' (no value). */
  type: 'string' | 'int' | 'bool';
  help: string;
}

export type Parsed = { command: string | null; flags: Record<string, string | number | boolean> };

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
    const spec = specs[name];
    if (!spec) throw new UsageError(`Unknown flag --${name}. Known flags: ${Object.keys(specs).map((s) => `--${s}`).join(', ')}.`);
    if (spec.type === 'bool') {
      flags[name] = inline === undefined ? true : inline !== 'false';
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`Flag --${name} needs a value.`);
    if (spec.type === 'int') {
      if (!/^\d+$/.test(value)) throw new UsageError(`Flag --${name} takes a non-negative integer, got "${value}".`);
      flags[name] = Number(value);
    } else flags[name] = value;
  }
  return { command, flags };
}

export function usage(title: string, specs: Record<string, FlagSpec>): string {
  const lines = Object.entries(specs).map(([k, s]) => `  --${k}${s.type === 'bool' ? '' : ` <${s.type}>`}`.padEnd(26) + s.help);
  return `${title}\n${lines.join('\n')}`;
}
