// What every `dlht` subcommand shares: its shape, the exit codes scripts can rely on, and argument
// parsing by node:util parseArgs that turns every mistake into a UsageError.

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { CodedError } from '../errors.js'

/** Exit codes of the `dlht` command. */
export const ExitCode = {
  /** Done. */
  Ok: 0,
  /** `get` or `delete` of a key that is not stored. */
  NotFound: 1,
  /** Bad arguments, options, JSON or configuration: nothing was done. */
  Usage: 2,
  /** The operation failed: peer unreachable, timeout, or an error from the ring (its code is printed). */
  Failed: 3,
} as const

/** The command line is wrong (unknown option, missing argument, bad number or JSON). */
export class UsageError extends CodedError {
  static override readonly code = 'ERR_DLHT_USAGE'
}

/** One subcommand of `dlht`. */
export interface Command {
  name: string
  /** One line for `dlht --help`. */
  summary: string
  /** The whole of `dlht <name> --help`. */
  help: string
  /** Runs the command; resolves to its exit code. */
  run(args: string[]): Promise<number>
}

/** Options as `parseArgs` takes them: strings or booleans, no multiples. */
export type OptionSpecs = Record<string, { type: 'string' | 'boolean'; short?: string }>

/** What `parseCommand` found: option values by name, and the positional arguments. */
export interface ParsedCommand {
  values: Record<string, string | boolean | undefined>
  positionals: string[]
  /** `--help` was given: print the command's help and do nothing else. */
  help: boolean
}

/**
 * Parses `args` strictly: options as declared, plus `--help`. Exactly `positionals` positional
 * arguments are required (named in the error).
 * @throws UsageError
 */
export function parseCommand(
  args: string[],
  options: OptionSpecs,
  positionals: readonly string[] = [],
): ParsedCommand {
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] }
  try {
    parsed = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    })
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err })
  }
  const help = parsed.values.help === true
  if (!help && parsed.positionals.length !== positionals.length) {
    throw new UsageError(
      positionals.length === 0
        ? `takes no arguments, got ${parsed.positionals.join(' ')}`
        : `expects ${positionals.map((name) => `<${name}>`).join(' ')}, got ${parsed.positionals.length} argument(s)`,
    )
  }
  return { ...parsed, help }
}

/** The string value of an option, or undefined. */
export function stringOption(parsed: ParsedCommand, name: string): string | undefined {
  const value = parsed.values[name]
  return typeof value === 'string' ? value : undefined
}

/** An integer option in [min, max], or undefined when absent. @throws UsageError */
export function integerOption(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined
  const parsed = Number(value)
  if (!/^\d+$/.test(value) || parsed < min || parsed > max) {
    throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`)
  }
  return parsed
}

/** The text of a swarm key file (`dlht keygen`); its format is checked where the key is used. @throws UsageError */
export function readSwarmKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(`--swarm-key-file ${path}: ${(err as Error).message}`, { cause: err })
  }
}
