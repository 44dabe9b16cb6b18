// `dlht start`: runs one long-lived node of a ring, serving the ring, the data plane and clients, until
// SIGINT or SIGTERM, when it leaves gracefully (its entries go to its successors first).

import { readFileSync } from 'node:fs'
import { serveClients } from '../node/client-gateway.js'
import type { LeadConfigInit } from '../node/config.js'
import { LeadNode } from '../node/lead-node.js'
import { type ChordRouter, chordRouter } from '../overlay/chord-router.js'
import {
  type Command,
  ExitCode,
  integerOption,
  parseCommand,
  readSwarmKeyFile,
  stringOption,
  UsageError,
} from './command.js'

const HELP = `Usage: dlht start [options]

Runs a node of a dlht ring until SIGINT or SIGTERM, then leaves gracefully (hands its entries to
its successors). Prints "listening <multiaddr>" for each address, then serves ring peers and the
client commands (dlht put/get/delete/range/stats/retrain --peer <host:port>).

Options:
  --host <ip>            address to listen on (default 127.0.0.1)
  --port <n>             TCP port, 0 picks a free one (default 9000)
  --bootstrap <peer>     "host:port" or multiaddr of a node of the ring to join (default: a new ring)
  --vnodes <n>           virtual nodes of this node (default 3)
  --data-dir <dir>       LMDB directory: entries and model survive a restart (default: in memory)
  --replication <n>      copies of every entry on the ring, 1-16 (default 3; writes wait for a majority)
  --swarm-key-file <f>   a private ring: only peers with this key connect (make one with dlht keygen)
  --metrics-port <n>     serve Prometheus metrics at http://<host>:<n>/metrics (0 picks a port)
  --config <file>        JSON file of LeadConfig fields (hashSpaceSize as a string); options win
  -h, --help             this help
`

const OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  bootstrap: { type: 'string' },
  vnodes: { type: 'string' },
  'data-dir': { type: 'string' },
  replication: { type: 'string' },
  'swarm-key-file': { type: 'string' },
  'metrics-port': { type: 'string' },
  config: { type: 'string' },
} as const

/** LeadConfig fields from a JSON file; hashSpaceSize may be a string or a number there. */
function readConfigFile(path: string): LeadConfigInit {
  let config: unknown
  try {
    config = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new UsageError(`--config ${path}: ${(err as Error).message}`, { cause: err })
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new UsageError(`--config ${path} must hold a JSON object of LeadConfig fields`)
  }
  const fields = config as Record<string, unknown>
  if (typeof fields.hashSpaceSize === 'string' || typeof fields.hashSpaceSize === 'number') {
    try {
      fields.hashSpaceSize = BigInt(fields.hashSpaceSize)
    } catch (err) {
      throw new UsageError(`--config ${path}: hashSpaceSize is not an integer`, { cause: err })
    }
  }
  return fields as LeadConfigInit
}

/** The node's configuration: the file's fields, then the options given. */
function configOf(values: Parameters<typeof stringOption>[0]): LeadConfigInit {
  const file = stringOption(values, 'config')
  const config: LeadConfigInit = { ip: '127.0.0.1', ...(file === undefined ? {} : readConfigFile(file)) }
  const host = stringOption(values, 'host')
  const bootstrap = stringOption(values, 'bootstrap')
  const dataDir = stringOption(values, 'data-dir')
  const port = integerOption('port', stringOption(values, 'port'), 0, 65535)
  const vnodes = integerOption('vnodes', stringOption(values, 'vnodes'), 1, 4096)
  const metricsPort = integerOption('metrics-port', stringOption(values, 'metrics-port'), 0, 65535)
  const replication = integerOption('replication', stringOption(values, 'replication'), 1, 16)
  const swarmKeyFile = stringOption(values, 'swarm-key-file')
  if (host !== undefined) config.ip = host
  if (port !== undefined) config.basePort = port
  if (bootstrap !== undefined) config.bootstrapPeer = bootstrap
  if (vnodes !== undefined) config.numVirtualNodes = vnodes
  if (dataDir !== undefined) config.dataDir = dataDir
  if (metricsPort !== undefined) config.metricsPort = metricsPort
  if (replication !== undefined) config.replicationFactor = replication
  if (swarmKeyFile !== undefined) config.swarmKey = readSwarmKeyFile(swarmKeyFile)
  if (config.network === false) throw new UsageError('dlht start runs a network node: drop "network": false')
  return config
}

/** Resolves at the first SIGINT or SIGTERM; a second one exits at once. */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (signal: string) => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      const again = () => process.exit(ExitCode.Failed)
      process.once('SIGINT', again)
      process.once('SIGTERM', again)
      resolve(signal)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}

export const startCommand: Command = {
  name: 'start',
  summary: 'run a node of a ring until SIGINT/SIGTERM',
  help: HELP,
  async run(args) {
    const parsed = parseCommand(args, OPTIONS)
    if (parsed.help) {
      process.stdout.write(HELP)
      return ExitCode.Ok
    }
    let router: ChordRouter | undefined
    const node = new LeadNode(configOf(parsed), {
      router: (components) => {
        router = chordRouter()(components)
        return router
      },
    })
    node.addEventListener('log', (event) => {
      const { level, message } = event.detail
      if (level !== 'debug') process.stderr.write(`${level} ${message}\n`)
    })
    const stopped = stopSignal()
    await node.start()
    const libp2p = router?.libp2p
    if (libp2p === undefined) throw new Error('the Chord router started without a libp2p node')
    const stopServingClients = await serveClients(libp2p, node)
    console.log(`peer ${node.peerId}`)
    for (const address of router?.multiaddrs() ?? []) console.log(`listening ${address}`)
    if (node.metricsUrl !== null) console.log(`metrics ${node.metricsUrl}`)
    console.log(
      node.config.bootstrapPeer === null
        ? 'started a new ring'
        : `joined the ring of ${node.config.bootstrapPeer}`,
    )
    console.log(`${await stopped}: leaving the ring`)
    await stopServingClients()
    await node.stop()
    console.log('stopped')
    return ExitCode.Ok
  },
}
