// A cluster of dlht node processes on 127.0.0.1 for tests and benchmarks: each node is a child
// process (`node --import tsx cluster-node.ts`) on a free port, driven over IPC, always killed at the end.

import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { LeadConfigInit } from '../../ts/node/config.js'
import { LeadNode, type NodeStats } from '../../ts/node/lead-node.js'
import type { ClusterNodeOptions } from './cluster-node.js'
import { englishWords } from './datasets.js'
import { type RingView, ringIsConsistent } from './ring.js'

const SCRIPT = fileURLToPath(new URL('./cluster-node.ts', import.meta.url))
const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url))

const everyChild = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of everyChild) child.kill('SIGKILL')
})

/** An error a node reported for an operation. */
export class ClusterNodeError extends Error {
  readonly code: string | undefined
  constructor(error: { name: string; code?: string; message: string }) {
    super(error.message)
    this.name = error.name
    this.code = error.code
  }
}

/** One node process. */
export class ClusterNode {
  readonly child: ChildProcess
  readonly peerId: string
  readonly multiaddr: string
  readonly port: number
  #nextId = 0
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(err: unknown): void }>()

  constructor(child: ChildProcess, ready: { multiaddrs: string[]; peerId: string }) {
    this.child = child
    this.peerId = ready.peerId
    this.multiaddr = ready.multiaddrs[0]
    this.port = Number(this.multiaddr.split('/')[4])
    child.on(
      'message',
      (message: { id: number; result?: unknown; error?: { name: string; message: string } }) => {
        const pending = this.#pending.get(message.id)
        if (pending === undefined) return
        this.#pending.delete(message.id)
        if (message.error !== undefined) pending.reject(new ClusterNodeError(message.error))
        else pending.resolve(message.result)
      },
    )
    child.on('exit', () => {
      for (const pending of this.#pending.values()) pending.reject(new Error('the node process exited'))
      this.#pending.clear()
    })
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Runs an operation of cluster-node.ts on this node. */
  call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      this.child.send({ id, op, args })
    })
  }

  /** Graceful leave: the node hands its entries over and exits. */
  async stop(): Promise<void> {
    if (!this.alive) return
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    await this.call('stop').catch(() => {})
    await exited
  }

  /** Kills the process at once (SIGKILL): no hand-off. */
  async kill(): Promise<void> {
    if (!this.alive) return
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.kill('SIGKILL')
    await exited
  }
}

export interface ClusterOptions {
  numVirtualNodes?: number
  /** Seconds. Default 0.2. */
  stabilizeInterval?: number
  /** Milliseconds. Default 1500. */
  callTimeout?: number
  /** Keys the first node trains the ring model on before others join. */
  trainOn?: Array<string | number>
  autoRetrain?: boolean
  newKeysTriggerCount?: number
  rebalance?: boolean
  /**
   * More LeadConfig fields of every node: size limits, `swarmKey`, `replicationFactor` and the
   * quorums, `dataDir` (startNode only: each node needs its own).
   */
  config?: LeadConfigInit
  /** Milliseconds between repair rounds. */
  repairIntervalMs?: number
}

/** Starts one node process; `bootstrapPeer` null starts a new ring. */
export async function startNode(
  bootstrapPeer: string | null,
  options: ClusterOptions = {},
): Promise<ClusterNode> {
  const nodeOptions: ClusterNodeOptions = {
    bootstrapPeer,
    numVirtualNodes: options.numVirtualNodes ?? 3,
    stabilizeInterval: options.stabilizeInterval ?? 0.2,
    callTimeout: options.callTimeout ?? 1500,
    trainOn: bootstrapPeer === null ? options.trainOn : undefined,
    autoRetrain: options.autoRetrain,
    newKeysTriggerCount: options.newKeysTriggerCount,
    rebalance: options.rebalance,
    config: options.config,
    repairIntervalMs: options.repairIntervalMs,
  }
  const child = fork(SCRIPT, [], {
    execPath: NODE,
    execArgv: ['--import', 'tsx'],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  everyChild.add(child)
  child.send(nodeOptions)
  child.once('exit', () => everyChild.delete(child))
  const ready = await new Promise<{ multiaddrs: string[]; peerId: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('node process did not start in 30 s')), 30_000)
    child.once('message', (message: { ready?: boolean; multiaddrs: string[]; peerId: string }) => {
      clearTimeout(timer)
      resolve(message)
    })
    child.once('exit', (code) => reject(new Error(`node process exited with ${code} before it was ready`)))
  })
  return new ClusterNode(child, ready)
}

/** A cluster whose processes are all killed when `teardown` runs (and when this process exits). */
export class Cluster {
  readonly nodes: ClusterNode[] = []
  readonly options: ClusterOptions

  constructor(options: ClusterOptions = {}) {
    this.options = options
  }

  /** Starts `count` nodes: the first founds the ring, the others join it via "localhost:port". */
  static async start(count: number, options: ClusterOptions = {}): Promise<Cluster> {
    const cluster = new Cluster(options)
    try {
      for (let i = 0; i < count; i++) await cluster.add()
    } catch (err) {
      await cluster.killAll()
      throw err
    }
    return cluster
  }

  get alive(): ClusterNode[] {
    return this.nodes.filter((node) => node.alive)
  }

  /** Starts one more node, joining through the first live node. */
  async add(): Promise<ClusterNode> {
    const via = this.alive[0]
    const node = await startNode(via === undefined ? null : `localhost:${via.port}`, this.options)
    this.nodes.push(node)
    return node
  }

  async killAll(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.kill()))
  }
}

/** Starts a cluster that the test's teardown kills. */
export async function startCluster(
  t: { teardown(fn: () => Promise<void>): void },
  count: number,
  options: ClusterOptions = {},
): Promise<Cluster> {
  const started = await Cluster.start(count, options)
  t.teardown(() => started.killAll())
  return started
}

/** Polls `condition` every 100 ms until it holds. */
export async function until(condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Every live node finished a repair round that began after `since`, found every replica in step
 * and held no copy it is not a replica of.
 */
export async function replicasInStep(nodes: ClusterNode[], since: number): Promise<boolean> {
  const all = await Promise.all(
    nodes.map((node) => node.call<{ node: NodeStats; routing: RingView }>('stats')),
  )
  if (!ringIsConsistent(all.map((stat) => stat.routing))) return false
  return all.every(({ node }) => {
    const repair = node.replication?.repair
    return (
      repair !== undefined &&
      repair.lastRoundAt !== null &&
      repair.lastRoundAt - repair.lastRoundMs > since &&
      repair.differingBuckets === 0 &&
      repair.unreachableReplicas === 0 &&
      node.replication?.straysLastRound === 0
    )
  })
}

/** `count` English words spread over the whole (sorted) list. */
export function wordKeys(count: number): string[] {
  const words = englishWords()
  return Array.from({ length: count }, (_, i) => words[Math.floor((i * words.length) / count)])
}

/** A node in this process that joins `cluster` with one vnode and its replication (not started): the benchmarks' client. */
export function clusterClient(cluster: Cluster): LeadNode {
  return new LeadNode({
    ip: '127.0.0.1',
    basePort: 0,
    bootstrapPeer: `localhost:${cluster.nodes[0].port}`,
    numVirtualNodes: 1,
    stabilizeInterval: 1,
    autoRetrain: false,
    replicationFactor: cluster.options.config?.replicationFactor,
    writeQuorum: cluster.options.config?.writeQuorum,
  })
}
