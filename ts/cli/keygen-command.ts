// `dlht keygen`: makes the key of a private ring (a libp2p swarm key), which every `dlht start` of the
// ring and every client is then given with --swarm-key-file.

import { writeFileSync } from 'node:fs'
import { generateSwarmKey } from '../overlay/private-network.js'
import { type Command, ExitCode, parseCommand, stringOption, UsageError } from './command.js'

const HELP = `Usage: dlht keygen [--out <file>]

Makes a new swarm key: the shared secret of a private ring. Nodes started with
"dlht start --swarm-key-file <file>" accept only peers and clients holding the same key; keep it like
a password. Writes the key to --out (readable by its owner only; an existing file is not replaced),
or prints it.

Options:
  --out <file>           the file to write (default: print to stdout)
  -h, --help             this help
`

export const keygenCommand: Command = {
  name: 'keygen',
  summary: 'make the swarm key of a private ring',
  help: HELP,
  async run(args) {
    const parsed = parseCommand(args, { out: { type: 'string' } })
    if (parsed.help) {
      process.stdout.write(HELP)
      return ExitCode.Ok
    }
    const key = generateSwarmKey()
    const out = stringOption(parsed, 'out')
    if (out === undefined) {
      process.stdout.write(key)
      return ExitCode.Ok
    }
    try {
      writeFileSync(out, key, { mode: 0o600, flag: 'wx' })
    } catch (err) {
      throw new UsageError(`--out ${out}: ${(err as Error).message}`, { cause: err })
    }
    return ExitCode.Ok
  },
}
