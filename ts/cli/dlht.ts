#!/usr/bin/env node
// The `dlht` command (the package's bin): runs a node of a ring (`dlht start`), talks to a running ring
// from a shell (put, get, delete, range, stats, retrain) and makes private rings' keys (keygen).

import { DlhtError, InvalidArgumentError } from '../errors.js'
import { assertSupportedNode } from '../platform.js'
import { type Command, ExitCode, UsageError } from './command.js'

const HELP = (commands: Command[]) => `Usage: dlht <command> [options]

Commands:
${commands.map((command) => `  ${command.name.padEnd(9)}${command.summary}`).join('\n')}

Run "dlht <command> --help" for a command's options.
Exit codes: 0 done, 1 key not found, 2 bad usage, 3 failed (the error's code is printed).
`

/** The exit code and message of a command that threw `err`. */
function report(err: unknown, name: string): number {
  // Local argument errors (a bad --peer address, a config field out of range) are usage errors;
  // errors from the ring arrive as RemoteError and other DlhtErrors.
  if (err instanceof UsageError || err instanceof InvalidArgumentError) {
    process.stderr.write(`dlht ${name}: ${err.message}\nRun "dlht ${name} --help" for usage.\n`)
    return ExitCode.Usage
  }
  const code = err instanceof DlhtError ? err.code : 'ERR_DLHT_UNEXPECTED'
  process.stderr.write(`dlht ${name}: ${code}: ${(err as Error)?.message ?? String(err)}\n`)
  return ExitCode.Failed
}

async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args
  try {
    assertSupportedNode()
  } catch (err) {
    return report(err, name ?? '')
  }
  // Loaded only once Node is known to be recent enough: they import libp2p and the addon.
  const { startCommand } = await import('./start-command.js')
  const { clientCommands } = await import('./client-commands.js')
  const { keygenCommand } = await import('./keygen-command.js')
  const commands = [startCommand, ...clientCommands, keygenCommand]
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP(commands))
    return name === undefined ? ExitCode.Usage : ExitCode.Ok
  }
  const command = commands.find((candidate) => candidate.name === name)
  if (command === undefined) {
    process.stderr.write(`dlht: unknown command ${JSON.stringify(name)}\n\n${HELP(commands)}`)
    return ExitCode.Usage
  }
  try {
    return await command.run(rest)
  } catch (err) {
    return report(err, name)
  }
}

process.exit(await main(process.argv.slice(2)))
