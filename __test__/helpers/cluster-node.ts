// One dlht node in its own process, driven by the cluster harness over IPC: it starts a LeadNode
// with the Chord overlay, reports its address, runs the operations it is sent, and exits with its parent.

import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { LeadConfigInit } from '../../ts/node/config.js'
import { LeadNode } from '../../ts/node/lead-node.js'
import type { LogRecord } from '../../ts/node/node-log.js'
import { chordRouter } from '../../ts/overlay/chord-router.js'
import { PeerUnavailableError } from '../../ts/protocol/errors.js'
import { DATA_PROTOCOL } from '../../ts/protocol/messages.js'
import { DlhtService } from '../../ts/protocol/service.js'
import { listenAddresses } from './ring.js'

/** What the harness sends as its first IPC message. */
export interface ClusterNodeOptions {
  bootstrapPeer: string | null
  numVirtualNodes: number
  stabilizeInterval: number
  callTimeout: number
  /** Keys to train the ring's model on before any other node joins (first node only). */
  trainOn?: Array<string | number>
  /** Retrain when a training trigger fires (default false), and after how many new keys. */
  autoRetrain?: boolean
  newKeysTriggerCount?: number
  /** Move vnodes after a rollout this node coordinates (`chordRouter({ rebalance })`). */
  rebalance?: boolean
  /** More LeadConfig fields (swarm key, replication and quorums, an LMDB data directory, limits). */
  config?: LeadConfigInit
  /** Milliseconds between repair rounds (`chordRouter({ repairIntervalMs })`). */
  repairIntervalMs?: number
}

/** A request from the harness: an operation with its arguments. */
export interface ClusterRequest {
  id: number
  op: string
  args: unknown[]
}

// A full GC on request (memory measurements), without starting every node with --expose-gc.
setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

const options = await new Promise<ClusterNodeOptions>((resolve) => process.once('message', resolve))
const config: LeadConfigInit = {
  ip: '127.0.0.1',
  basePort: 0,
  bootstrapPeer: options.bootstrapPeer,
  numVirtualNodes: options.numVirtualNodes,
  stabilizeInterval: options.stabilizeInterval,
  autoRetrain: options.autoRetrain ?? false,
  modelUpdateThreshold: 100,
  training: { newKeysTriggerCount: options.newKeysTriggerCount ?? 1000 },
  ...options.config,
}
const node = new LeadNode(config, {
  router: chordRouter({
    callTimeout: options.callTimeout,
    rebalance: options.rebalance,
    repairIntervalMs: options.repairIntervalMs,
  }),
})

// Warnings and errors a node reports (a refused model, a failed hand-over) go to the test output.
node.addEventListener('log', (event) => {
  const record = (event as CustomEvent<LogRecord>).detail
  if (record.level === 'warn' || record.level === 'error')
    process.stderr.write(`[dlht node ${node.peerId.slice(-6)}] ${record.message}\n`)
})

/** Peers this node exchanges no data with (a partition of the data plane; the ring stays whole). */
const isolated = new Set<string>()
const call = DlhtService.prototype.call
DlhtService.prototype.call = function (this: DlhtService, peer, protocol, ...rest) {
  if (protocol === DATA_PROTOCOL && isolated.has(peer.peerId))
    return Promise.reject(new PeerUnavailableError(`${peer.peerId} is cut off by the test`))
  return call.call(this, peer, protocol, ...rest)
} as typeof call

const operations: Record<string, (...args: never[]) => unknown> = {
  put: (key: string, value: unknown) => node.put(key, value),
  putMany: (entries: Array<[string, unknown]>) => node.putMany(entries),
  get: (key: string) => node.get(key),
  getMany: (keys: string[]) => node.getMany(keys),
  delete: (key: string) => node.delete(key),
  rangeQuery: async (low: bigint, high: bigint) =>
    (await node.rangeQuery(low, high)).map((entry) => ({ key: entry.key, position: entry.position })),
  positions: (keys: string[]) => keys.map((key) => node.learnedHash.predict(key)),
  retrain: () => node.retrainModel({ force: true }),
  stats: () => ({ node: node.getStats(), routing: node.getRoutingTableStats() }),
  /** Memory of the process, after a full garbage collection when `collect`. */
  memory: (collect: boolean) => {
    if (collect) collectGarbage()
    return process.memoryUsage()
  },
  metrics: () => node.metrics(),
  storedKeys: () => node.storedKeys(),
  /** Refuses data calls to these peers from now on (none: heals). */
  isolateData: (peerIds: string[]) => {
    isolated.clear()
    for (const peerId of peerIds) isolated.add(peerId)
  },
  stop: async () => {
    await node.stop()
    setImmediate(() => process.exit(0))
  },
}

process.on('disconnect', () => process.exit(0))
process.on('message', async (request: ClusterRequest) => {
  try {
    const operation = operations[request.op]
    if (operation === undefined) throw new Error(`unknown operation ${request.op}`)
    const result = await operation(...(request.args as never[]))
    process.send?.({ id: request.id, result })
  } catch (err) {
    const error = err as Error & { code?: string }
    process.send?.({ id: request.id, error: { name: error.name, code: error.code, message: error.message } })
  }
})

await node.start()
if (options.trainOn !== undefined) await node.retrainModel({ sampleKeys: options.trainOn, force: true })
process.send?.({ ready: true, multiaddrs: listenAddresses(node), peerId: node.peerId })
