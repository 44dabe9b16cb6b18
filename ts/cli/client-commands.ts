// The client subcommands of `dlht` (put, get, delete, range, stats, retrain): each dials one node of a
// running ring with a DlhtClient, asks it once, prints the answer as JSON and exits with a script's code.

import { DlhtClient } from '../client/dlht-client.js'
import {
  type Command,
  ExitCode,
  integerOption,
  type OptionSpecs,
  type ParsedCommand,
  parseCommand,
  readSwarmKeyFile,
  stringOption,
  UsageError,
} from './command.js'

const PEER_OPTIONS: OptionSpecs = {
  peer: { type: 'string', short: 'p' },
  timeout: { type: 'string' },
  'swarm-key-file': { type: 'string' },
}

const PEER_HELP = `  -p, --peer <peer>      "host:port" or multiaddr of a node (dlht start); default $DLHT_PEER
  --timeout <ms>         deadline of the request, dial included (default 30000)
  --swarm-key-file <f>   the key of a private ring (dlht start --swarm-key-file); default $DLHT_SWARM_KEY_FILE
  -h, --help             this help`

const EXIT_HELP = `Exit codes: 0 done, 1 key not found, 2 bad usage, 3 failed (the error's code is printed).`

/** JSON text of a value; bigints as decimal strings, Uint8Arrays as arrays of bytes. */
function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    (_, v) => (typeof v === 'bigint' ? String(v) : v instanceof Uint8Array ? [...v] : v),
    indent,
  )
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new UsageError(`${what} is not JSON: ${(err as Error).message}`, { cause: err })
  }
}

/** Connects to the peer the options name, runs `ask` and closes the connection whatever happens. */
async function withClient<T>(parsed: ParsedCommand, ask: (client: DlhtClient) => Promise<T>): Promise<T> {
  const peer = stringOption(parsed, 'peer') ?? process.env.DLHT_PEER
  if (peer === undefined || peer === '')
    throw new UsageError('--peer <host:port> is required (or set DLHT_PEER)')
  const timeout = integerOption('timeout', stringOption(parsed, 'timeout'), 1, 3_600_000)
  const swarmKeyFile = stringOption(parsed, 'swarm-key-file') ?? process.env.DLHT_SWARM_KEY_FILE
  const swarmKey =
    swarmKeyFile === undefined || swarmKeyFile === '' ? undefined : readSwarmKeyFile(swarmKeyFile)
  const client = await DlhtClient.connect(peer, { timeout, swarmKey })
  try {
    return await ask(client)
  } finally {
    await client.close()
  }
}

/** A client command: its arguments, extra options, and what it does with a connected client. */
function clientCommand(spec: {
  name: string
  summary: string
  args: string[]
  options?: OptionSpecs
  optionsHelp?: string
  description: string
  ask(client: DlhtClient, parsed: ParsedCommand): Promise<number>
}): Command {
  const usage = [spec.name, ...spec.args.map((arg) => `<${arg}>`)].join(' ')
  const help = `Usage: dlht ${usage} --peer <host:port> [options]

${spec.description}

Options:
${spec.optionsHelp ?? ''}${PEER_HELP}

${EXIT_HELP}
`
  return {
    name: spec.name,
    summary: spec.summary,
    help,
    async run(args) {
      const parsed = parseCommand(args, { ...PEER_OPTIONS, ...spec.options }, spec.args)
      if (parsed.help) {
        process.stdout.write(help)
        return ExitCode.Ok
      }
      return withClient(parsed, (client) => spec.ask(client, parsed))
    },
  }
}

function notFound(key: string): number {
  process.stderr.write(`dlht: not found: ${key}\n`)
  return ExitCode.NotFound
}

export const clientCommands: Command[] = [
  clientCommand({
    name: 'put',
    summary: 'store a JSON value under a key',
    args: ['key', 'json'],
    description:
      'Stores the JSON value under the (string) key, replacing any previous value. Prints nothing.',
    async ask(client, { positionals: [key, json] }) {
      await client.put(key, parseJson(json, 'the value'))
      return ExitCode.Ok
    },
  }),
  clientCommand({
    name: 'get',
    summary: "print a key's value as JSON",
    args: ['key'],
    description: "Prints the key's value as one line of JSON; exits 1 when the key is not stored.",
    async ask(client, { positionals: [key] }) {
      const value = await client.get(key)
      if (value === undefined) return notFound(key)
      console.log(toJson(value))
      return ExitCode.Ok
    },
  }),
  clientCommand({
    name: 'delete',
    summary: 'remove a key',
    args: ['key'],
    description: 'Removes the key; exits 1 when it was not stored.',
    async ask(client, { positionals: [key] }) {
      return (await client.delete(key)) ? ExitCode.Ok : notFound(key)
    },
  }),
  clientCommand({
    name: 'range',
    summary: 'print the entries of a key range as JSON lines',
    args: ['min', 'max'],
    options: { limit: { type: 'string' } },
    optionsHelp: '  --limit <n>            most entries printed (default 1000)\n',
    description:
      'Prints the entries whose keys lie in [min, max] (inclusive, by UTF-8 order) in key order, one\n' +
      'JSON object {"key", "value"} a line. When the range holds more than --limit entries, says so on\n' +
      'stderr after the last line.',
    async ask(client, parsed) {
      const [min, max] = parsed.positionals
      const limit = integerOption('limit', stringOption(parsed, 'limit'), 0, 1_000_000) ?? 1000
      const { entries, truncated } = await client.rangeQueryKeys(min, max, limit)
      for (const entry of entries) console.log(toJson(entry))
      if (truncated) process.stderr.write(`dlht: more than ${limit} entries; raise --limit to see them\n`)
      return ExitCode.Ok
    },
  }),
  clientCommand({
    name: 'stats',
    summary: "print the node's stats as JSON",
    args: [],
    description: "Prints the node's getStats() as JSON: keys, bytes, vnodes, operations, model, rollout.",
    async ask(client) {
      console.log(toJson(await client.stats(), 2))
      return ExitCode.Ok
    },
  }),
  clientCommand({
    name: 'retrain',
    summary: 'retrain the ring model (federated round)',
    args: [],
    options: { force: { type: 'boolean' } },
    optionsHelp: '  --force                retrain even if no training trigger fires\n',
    description:
      "Asks the node to retrain (on a ring: a federated round and rollout); prints the result's JSON.",
    async ask(client, parsed) {
      console.log(toJson(await client.retrain(parsed.values.force === true), 2))
      return ExitCode.Ok
    },
  }),
]
