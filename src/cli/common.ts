/**
 * What every command shares: argument parsing with `node:util` (no CLI
 * framework), the one-line error, and number formatting.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** An error the user caused or can fix: printed as one line, no stack trace. */
export class CliError extends Error {
  /** 1 for a failure, 2 for bad usage (as most Unix tools do). */
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** Where a command writes: `process.stdout` / `process.stderr`, or anything with `write` in tests. */
export interface CliOutput {
  write(text: string): unknown;
  /** Whether it is a terminal (top draws differently). */
  isTTY?: boolean;
}

/** The streams and environment a command runs with (injectable for tests). */
export interface CliContext {
  stdout: CliOutput;
  stderr: CliOutput;
  /** Only `top` reads it (keys); opening it is left to the command that needs it. */
  readonly stdin: NodeJS.ReadStream;
  env: NodeJS.ProcessEnv;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parsed options: strings and booleans by name. */
export interface ParsedCommand {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** `parseArgs` (plus `-h, --help`), with its errors turned into a usage error naming the command. */
export function parseCommand(command: string, args: string[], options: Options): ParsedCommand {
  try {
    const parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
    return { values: parsed.values as ParsedCommand['values'], positionals: parsed.positionals };
  } catch (error) {
    // parseArgs messages are multi-line with hints; keep the first line.
    const message = (error as Error).message.split('\n')[0].replace(/\.$/, '');
    throw new CliError(`${command}: ${message} (see wsgi-status ${command} --help)`, 2);
  }
}

/** Exactly one positional argument, or a usage error. */
export function onePositional(command: string, positionals: string[], what: string): string {
  if (positionals.length === 0) throw new CliError(`${command}: missing ${what} (see wsgi-status ${command} --help)`, 2);
  if (positionals.length > 1) {
    throw new CliError(
      `${command}: unexpected argument ${JSON.stringify(positionals[1])} (see wsgi-status ${command} --help)`,
      2,
    );
  }
  return positionals[0];
}

/** A positive integer option, or a usage error naming it. */
export function integerOption(
  command: string,
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
) {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new CliError(`${command}: --${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`, 2);
  }
  return Number(value);
}

/** Bytes as MiB with one decimal. */
export function mebibytes(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

/** Pads cells into aligned columns; `right[i]` aligns column i to the right (numbers). */
export function columns(rows: string[][], right: readonly boolean[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (right[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  );
}
