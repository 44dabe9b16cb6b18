// What replication costs and how fast repair restores it, on loopback rings of node processes:
// batched PUT and GET (and single GETs) at replicationFactor 1 and 3 on 3 and on 8 processes (the
// two rings of a size in one run), the time anti-entropy takes to restore 3 copies after the
// fullest of 4 peers is killed, and what durability 'power' costs an LMDB node's writes.

import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Cluster, clusterClient, replicasInStep, until } from '../__test__/helpers/cluster.js'
import { seededRandom } from '../__test__/helpers/datasets.js'
import { type RingView, ringIsConsistent } from '../__test__/helpers/ring.js'
import { LeadNode, type NodeStats } from '../ts/node/lead-node.js'
import { closedLoop, type Latencies, writeResults } from './measure.js'

const KEY_COUNT = 20_000
const BATCH = 1000
/** Batches in flight in the batched rows, and single GETs in flight. */
const BATCHES_IN_FLIGHT = 4
const GETS_IN_FLIGHT = 64
const SINGLE_GETS = 10_000
/** Untimed passes over the keys before measuring (JIT warm-up), and measured rounds. */
const WARM_UP_PASSES = 3
const ROUNDS = 5
/** Entries in the repair run: 4 processes with 3 copies each hold about 3/4 of them (the fullest is killed). */
const ENTRIES = 150_000

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

/** A ring of `processes` processes with `replicationFactor` copies and a client node in this process. */
async function ring(processes: number, replicationFactor: number) {
  const cluster = await Cluster.start(processes, {
    trainOn: sample,
    stabilizeInterval: 1,
    callTimeout: 5000,
    config: { replicationFactor },
  })
  const client = clusterClient(cluster)
  await client.start()
  await until(async () =>
    ringIsConsistent([
      ...(await Promise.all(cluster.nodes.map(async (node) => (await node.call<Stats>('stats')).routing))),
      client.getRoutingTableStats() as unknown as RingView,
    ]),
  )
  const keys = Array.from({ length: KEY_COUNT }, () => Math.floor(random() * 1e9))
  const value = (key: number) => ({ key, tag: 'bench' })
  let wrongReads = 0
  const put = (batch: number[]) => client.putMany(batch.map((key) => [key, value(key)] as const))
  const get = async (batch: number[]) => {
    const values = await client.getMany<{ key: number }>(batch)
    for (let i = 0; i < batch.length; i++) if (values[i]?.key !== batch[i]) wrongReads++
  }
  const rows = async () => ({
    putBatched: await batched(keys, put),
    getBatched: await batched(keys, get),
    getSingle: await closedLoop(SINGLE_GETS, GETS_IN_FLIGHT, async (i) => {
      const key = keys[i % keys.length]
      if ((await client.get<{ key: number }>(key))?.key !== key) wrongReads++
    }),
  })
  return {
    replicationFactor,
    rows,
    wrongReads: () => wrongReads,
    stop: async () => {
      await client.stop()
      await cluster.killAll()
    },
  }
}

/** The median of each measure over the rounds. */
function medians<R extends Record<string, Latencies>>(rounds: R[]): R {
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]
  const out: Record<string, Latencies> = {}
  for (const row of Object.keys(rounds[0])) {
    out[row] = {
      opsPerSecond: median(rounds.map((round) => round[row].opsPerSecond)),
      p50Ms: median(rounds.map((round) => round[row].p50Ms)),
      p99Ms: median(rounds.map((round) => round[row].p99Ms)),
    }
  }
  return out as R
}

/**
 * Both rings run at once and their rows alternate, round after round, so that both meet the same
 * load from the rest of the machine; the medians over the rounds are reported.
 */
async function operations(processes: number, roundCount: number) {
  const rings = [await ring(processes, 1), await ring(processes, 3)]
  try {
    for (let pass = 0; pass < WARM_UP_PASSES; pass++) for (const setup of rings) await setup.rows()
    const rounds: Array<Array<Awaited<ReturnType<(typeof rings)[number]['rows']>>>> = rings.map(() => [])
    for (let round = 0; round < roundCount; round++) {
      for (const [i, setup] of rings.entries()) rounds[i].push(await setup.rows())
    }
    return rings.map((setup, i) => ({
      processes,
      replicationFactor: setup.replicationFactor,
      ...medians(rounds[i]),
      wrongReads: setup.wrongReads(),
    }))
  } finally {
    for (const setup of rings) await setup.stop()
  }
}

/** Kills the fullest of 4 processes holding ENTRIES entries and times repair back to 3 copies of everything. */
async function restore() {
  const total = ENTRIES
  const keys = Array.from({ length: total }, (_, i) => i * 7919)
  const cluster = await Cluster.start(4, {
    trainOn: keys.filter((_, i) => i % 10 === 0),
    stabilizeInterval: 0.5,
    callTimeout: 5000,
    config: { replicationFactor: 3 },
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
    const held = await Promise.all(cluster.nodes.map(async (node) => (await node.call<Stats>('stats')).node))
    const victimEntries = Math.max(...held.map((node) => node.keys))
    const victim = cluster.nodes[held.findIndex((node) => node.keys === victimEntries)]
    const before = held.filter((_, i) => cluster.nodes[i] !== victim)
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

/** Batched puts per second of an in-process LMDB node, one row per durability, rows alternating. */
async function durabilityCost() {
  const setups = await Promise.all(
    (['process', 'power'] as const).map(async (durability) => {
      const dir = await mkdtemp(join(tmpdir(), 'dlht-durability-'))
      const node = new LeadNode({ network: false, autoRetrain: false, dataDir: dir, durability })
      await node.start()
      await node.retrainModel({ sampleKeys: sample, force: true })
      return { durability, dir, node, rounds: [] as Latencies[] }
    }),
  )
  try {
    let next = 0
    const put = (node: LeadNode) => (batch: number[]) =>
      node.putMany(batch.map((key) => [key, { key, round: next }] as const))
    for (let round = 0; round < ROUNDS + 1; round++) {
      next++
      for (const setup of setups) {
        const result = await batched(sample, put(setup.node))
        if (round > 0) setup.rounds.push(result)
      }
    }
    return setups.map(({ durability, rounds }) => ({
      durability,
      ...medians(rounds.map((putBatched) => ({ putBatched }))),
    }))
  } finally {
    for (const { node, dir } of setups) {
      await node.stop()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

const ratios = (rows: Awaited<ReturnType<typeof operations>>) => ({
  putBatched: rows[1].putBatched.opsPerSecond / rows[0].putBatched.opsPerSecond,
  getBatched: rows[1].getBatched.opsPerSecond / rows[0].getBatched.opsPerSecond,
  getSingle: rows[1].getSingle.opsPerSecond / rows[0].getSingle.opsPerSecond,
})

const loadBefore = loadavg()[0]
const threeProcesses = await operations(3, ROUNDS)
const eightProcesses = await operations(8, 3)
const repair = await restore()
const durability = await durabilityCost()
const results = {
  keys: KEY_COUNT,
  batch: BATCH,
  rows: [...threeProcesses, ...eightProcesses],
  ratios: ratios(threeProcesses),
  ratios8: ratios(eightProcesses),
  repair,
  durability: {
    rows: durability,
    powerToProcess: durability[1].putBatched.opsPerSecond / durability[0].putBatched.opsPerSecond,
  },
  loadAverage: { before: loadBefore, after: loadavg()[0] },
}
console.log(JSON.stringify(results, null, 2))
console.log(`wrote ${writeResults('replication', results)}`)
process.exit(0)
