// What replication costs and how fast repair restores it, on loopback rings of node processes:
// batched PUT and GET (and single GETs) at replicationFactor 1 and 3 on 3 processes, in one run,
// then the time anti-entropy takes to restore 3 copies after a peer holding 100k entries is killed.

import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { Cluster, clusterClient, replicasInStep, until } from '../__test__/helpers/cluster.js'
import { seededRandom } from '../__test__/helpers/datasets.js'
import { type RingView, ringIsConsistent } from '../__test__/helpers/ring.js'
import type { NodeStats } from '../ts/node/lead-node.js'
import { closedLoop, type Latencies, writeResults } from './measure.js'

const KEY_COUNT = 20_000
const BATCH = 1000
/** Batches in flight in the batched rows, and single GETs in flight. */
const BATCHES_IN_FLIGHT = 4
const GETS_IN_FLIGHT = 64
const SINGLE_GETS = 10_000
/** Untimed passes over the keys before measuring (JIT warm-up). */
const WARM_UP_PASSES = 3
/** Entries the killed peer holds in the repair run (4 processes, 3 copies: each holds 3/4 of them). */
const VICTIM_ENTRIES = 100_000

type Stats = { node: NodeStats; routing: RingView }

const random = seededRandom(42)
const sample = Array.from({ length: KEY_COUNT }, () => Math.floor(random() * 1e9))

/** Per-key throughput of batches of BATCH keys, with per-batch latency percentiles. */
async function batched(keys: number[], operation: (batch: number[]) => Promise<unknown>): Promise<Latencies> {
  const batches = Math.ceil(keys.length / BATCH)
  const result = await closedLoop(batches, BATCHES_IN_FLIGHT, (b) =>
    operation(keys.slice(b * BATCH, (b + 1) * BATCH)),
  )
  return { ...result, opsPerSecond: result.opsPerSecond * BATCH }
}

/** PUT and GET rows on a 3-process ring with `replicationFactor` copies, from a client node in this process. */
async function operations(replicationFactor: number) {
  const cluster = await Cluster.start(3, {
    trainOn: sample,
    stabilizeInterval: 1,
    callTimeout: 5000,
    replicationFactor,
  })
  const client = clusterClient(cluster)
  try {
    await client.start()
    await until(async () =>
      ringIsConsistent([
        ...(await Promise.all(cluster.nodes.map(async (node) => (await node.call<Stats>('stats')).routing))),
        client.getRoutingTableStats() as unknown as RingView,
      ]),
    )
    const keys = Array.from({ length: KEY_COUNT }, () => Math.floor(random() * 1e9))
    const value = (key: number) => ({ key, tag: 'bench' })
    const put = (batch: number[]) => client.putMany(batch.map((key) => [key, value(key)] as const))
    let wrongReads = 0
    const get = async (batch: number[]) => {
      const values = await client.getMany<{ key: number }>(batch)
      for (let i = 0; i < batch.length; i++) if (values[i]?.key !== batch[i]) wrongReads++
    }
    for (let pass = 0; pass < WARM_UP_PASSES; pass++) {
      await batched(keys, put)
      await batched(keys, get)
    }
    wrongReads = 0
    const putBatched = await batched(keys, put)
    const getBatched = await batched(keys, get)
    const getSingle = await closedLoop(SINGLE_GETS, GETS_IN_FLIGHT, async (i) => {
      const key = keys[i % keys.length]
      if ((await client.get<{ key: number }>(key))?.key !== key) wrongReads++
    })
    return { replicationFactor, putBatched, getBatched, getSingle, wrongReads }
  } finally {
    await client.stop()
    await cluster.killAll()
  }
}

/** Kills one of 4 processes holding VICTIM_ENTRIES entries and times repair back to 3 copies of everything. */
async function restore() {
  const total = Math.round((VICTIM_ENTRIES * 4) / 3)
  const keys = Array.from({ length: total }, (_, i) => i * 7919)
  const cluster = await Cluster.start(4, {
    trainOn: keys.filter((_, i) => i % 10 === 0),
    stabilizeInterval: 0.5,
    callTimeout: 5000,
    replicationFactor: 3,
    repairIntervalMs: 1000,
  })
  try {
    const [anchor] = cluster.nodes
    for (let i = 0; i < total; i += 5000) {
      await anchor.call(
        'putMany',
        keys.slice(i, i + 5000).map((key) => [key, { key }]),
      )
    }
    const loaded = Date.now()
    await until(() => replicasInStep(cluster.nodes, loaded), 300_000)
    const victim = cluster.nodes[3]
    const victimEntries = (await victim.call<Stats>('stats')).node.keys
    const before = await Promise.all(
      cluster.nodes.slice(0, 3).map(async (node) => (await node.call<Stats>('stats')).node),
    )
    const killed = Date.now()
    const started = performance.now()
    await victim.kill()
    await until(() => replicasInStep(cluster.alive, killed), 300_000)
    const restoreSeconds = (performance.now() - started) / 1000
    const after = await Promise.all(cluster.alive.map(async (node) => (await node.call<Stats>('stats')).node))
    // With 3 processes left and 3 copies, every survivor must hold every entry.
    const copiesComplete = after.every((node) => node.keys === total)
    const repairBytes = after.reduce(
      (sum, node, i) =>
        sum + (node.replication?.repair.repairBytes ?? 0) - (before[i].replication?.repair.repairBytes ?? 0),
      0,
    )
    return {
      entries: total,
      victimEntries,
      restoreSeconds,
      copiesComplete,
      repairBytes,
      repairIntervalMs: 1000,
    }
  } finally {
    await cluster.killAll()
  }
}

const loadBefore = loadavg()[0]
const single = await operations(1)
const replicated = await operations(3)
const repair = await restore()
const results = {
  keys: KEY_COUNT,
  batch: BATCH,
  rows: [single, replicated],
  ratios: {
    putBatched: replicated.putBatched.opsPerSecond / single.putBatched.opsPerSecond,
    getBatched: replicated.getBatched.opsPerSecond / single.getBatched.opsPerSecond,
    getSingle: replicated.getSingle.opsPerSecond / single.getSingle.opsPerSecond,
  },
  repair,
  loadAverage: { before: loadBefore, after: loadavg()[0] },
}
console.log(JSON.stringify(results, null, 2))
console.log(`wrote ${writeResults('replication', results)}`)
process.exit(0)
