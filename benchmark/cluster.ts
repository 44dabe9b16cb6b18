// Remote operations on a 3-process loopback cluster: PUT, GET and range query (100 keys), with
// throughput, p50 and p99, measured from a client node whose keys all live on the other processes.
// Measured once the ring is stable and after warm-up passes (so JIT compilation is not timed), with
// the CPU time each operation cost the client and the node processes.

import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { Cluster, clusterClient } from '../__test__/helpers/cluster.js'
import { seededRandom } from '../__test__/helpers/datasets.js'
import { type RingView, ringIsConsistent } from '../__test__/helpers/ring.js'
import { closedLoop, type Latencies, percentile, writeResults } from './measure.js'

const KEY_COUNT = 20_000
const BATCH = 1000
const IN_FLIGHT = 256
/** Calls of the moderate-load GET row (4 in flight): its p99 is the 100th slowest. */
const MODERATE_CALLS = 10_000
/** Arrival rate of the open-loop GET row (well below the sequential rate). */
const OPEN_LOOP_RATE = 500
/**
 * Warm-up passes repeat for at least this long: after a single pass the node processes' optimizing
 * compiler was still at work (a fifth of their CPU) during the measured rows.
 */
const WARM_UP_MS = 15_000
/** Linux's USER_HZ: the unit of CPU times in /proc/<pid>/stat. */
const CLOCK_TICKS_PER_SECOND = 100

/** Starts `rate` operations per second on a fixed schedule, whatever the earlier ones are doing. */
async function openLoop(
  count: number,
  rate: number,
  operation: (i: number) => Promise<unknown>,
): Promise<Latencies> {
  const latencies: number[] = []
  const running: Array<Promise<void>> = []
  const start = performance.now()
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / rate - performance.now()
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    const began = performance.now()
    running.push(operation(i).then(() => void latencies.push(performance.now() - began)))
  }
  await Promise.all(running)
  const seconds = (performance.now() - start) / 1000
  return { opsPerSecond: count / seconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) }
}

/** Microseconds of CPU (user + system) process `pid` has used, from /proc; undefined where there is none. */
function cpuMicros(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS_PER_SECOND
  } catch {
    return undefined
  }
}

/** CPU microseconds per operation, of the client and of all node processes together (null off Linux). */
interface CpuPerOperation {
  clientUs: number
  nodesUs: number | null
}

/** Runs a measured row of `operations` operations and adds what they cost in CPU time. */
async function withCpu<T>(
  pids: Array<number | undefined>,
  operations: number,
  run: () => Promise<T>,
): Promise<T & { cpuPerOperation: CpuPerOperation }> {
  const nodesTime = () =>
    pids.reduce<number | undefined>((sum, pid) => {
      const micros = cpuMicros(pid)
      return sum === undefined || micros === undefined ? undefined : sum + micros
    }, 0)
  const nodesBefore = nodesTime()
  const clientBefore = process.cpuUsage()
  const result = await run()
  const client = process.cpuUsage(clientBefore)
  const nodesAfter = nodesTime()
  const nodesUs =
    nodesBefore === undefined || nodesAfter === undefined
      ? null
      : Math.round((nodesAfter - nodesBefore) / operations)
  return {
    ...result,
    cpuPerOperation: { clientUs: Math.round((client.user + client.system) / operations), nodesUs },
  }
}

/** Waits until the vnodes of every process form one consistent ring. */
async function ringSettled(views: () => Promise<RingView[]>): Promise<void> {
  const deadline = performance.now() + 30_000
  while (!ringIsConsistent(await views())) {
    if (performance.now() > deadline) throw new Error('the ring did not stabilize in 30 s')
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** Throughput of batch calls (`putMany`/`getMany` of BATCH keys), a few batches in flight. */
async function batched(keys: number[], operation: (batch: number[]) => Promise<unknown>): Promise<Latencies> {
  const batches = Math.ceil(keys.length / BATCH)
  const result = await closedLoop(batches, 4, (b) => operation(keys.slice(b * BATCH, (b + 1) * BATCH)))
  return { ...result, opsPerSecond: result.opsPerSecond * BATCH }
}

const random = seededRandom(42)
const sample = Array.from({ length: KEY_COUNT }, () => Math.floor(random() * 1e9))
const cluster = await Cluster.start(3, {
  trainOn: sample,
  stabilizeInterval: 1,
  callTimeout: 5000,
  config: { replicationFactor: 1 },
})
const client = clusterClient(cluster)
try {
  await client.start()
  await ringSettled(async () => [
    ...(await Promise.all(
      cluster.nodes.map(async (node) => (await node.call<{ routing: RingView }>('stats')).routing),
    )),
    client.getRoutingTableStats() as unknown as RingView,
  ])
  // Remote operations only: keep the keys the client's own vnode does not own.
  const keys: number[] = []
  while (keys.length < KEY_COUNT) {
    const key = Math.floor(random() * 1e9)
    if ((await client.findSuccessor(client.learnedHash.predict(key))).peerId !== client.peerId) keys.push(key)
  }
  const value = (i: number) => ({ n: i, tag: 'bench' })
  // Every measured read is checked: after the single PUTs, key i holds value(i).
  const indexOf = new Map(keys.map((key, i) => [key, i]))
  let wrongReads = 0
  const check = (key: number, read: unknown) => {
    if ((read as { n?: number } | undefined)?.n !== indexOf.get(key)) wrongReads++
  }
  const checkedGet = async (i: number) => check(keys[i], await client.get(keys[i]))
  // Other work on the machine shows in the tails: record the 1-minute load average around the run.
  const loadBefore = loadavg()[0]

  // Warm-up: every measured path, untimed, on a quarter of the keys, pass after pass for WARM_UP_MS.
  const warm = keys.slice(0, KEY_COUNT / 4)
  const warmUntil = performance.now() + WARM_UP_MS
  do {
    await batched(warm, (batch) => client.putMany(batch.map((key, i) => [key, value(i)] as const)))
    await closedLoop(warm.length, IN_FLIGHT, (i) => client.put(warm[i], value(i)))
    await batched(warm, (batch) => client.getMany(batch))
    await closedLoop(warm.length, IN_FLIGHT, (i) => client.get(warm[i]))
    await closedLoop(warm.length, 4, (i) => client.get(warm[i]))
    await closedLoop(1000, 1, (i) => client.get(warm[i]))
  } while (performance.now() < warmUntil)

  const pids = cluster.nodes.map((node) => node.child.pid)
  const measured = <T>(operations: number, run: () => Promise<T>) => withCpu(pids, operations, run)
  const putBatched = await measured(keys.length, () =>
    batched(keys, (batch) => client.putMany(batch.map((key, i) => [key, value(i)] as const))),
  )
  const putSingle = await measured(keys.length, () =>
    closedLoop(keys.length, IN_FLIGHT, (i) => client.put(keys[i], value(i))),
  )
  const getBatched = await measured(keys.length, () =>
    batched(keys, async (batch) => {
      const values = await client.getMany(batch)
      for (let j = 0; j < batch.length; j++) check(batch[j], values[j])
    }),
  )
  const getSingle = await measured(keys.length, () => closedLoop(keys.length, IN_FLIGHT, checkedGet))
  const getModerate = await measured(MODERATE_CALLS, () => closedLoop(MODERATE_CALLS, 4, checkedGet))
  const getSequential = await measured(3000, () => closedLoop(3000, 1, checkedGet))
  const getOpenLoop = await measured(3000, () => openLoop(3000, OPEN_LOOP_RATE, checkedGet))

  const sorted = [...keys].sort((a, b) => a - b)
  const positions = sorted.map((key) => client.learnedHash.predict(key))
  const warmRandom = seededRandom(7)
  for (let i = 0; i < 100; i++) {
    const start = Math.floor(warmRandom() * (sorted.length - 100))
    await client.rangeQuery(positions[start], positions[start + 99])
  }
  const overlayBefore = client.getRoutingTableStats().overlay as Record<string, number>
  const ranges = 300
  let owningVnodes = 0
  let rangeEntries = 0
  const rangeStarts = Array.from({ length: ranges }, () => Math.floor(random() * (sorted.length - 100)))
  for (const start of rangeStarts) {
    const owners = new Set<bigint>()
    for (const position of positions.slice(start, start + 100))
      owners.add((await client.findSuccessor(position)).id)
    owningVnodes += owners.size
  }
  const range = await measured(ranges, () =>
    closedLoop(ranges, 1, async (i) => {
      const start = rangeStarts[i]
      rangeEntries += (await client.rangeQuery(positions[start], positions[start + 99])).length
    }),
  )
  const overlayAfter = client.getRoutingTableStats().overlay as Record<string, number>
  const delta = (field: string) => overlayAfter[field] - overlayBefore[field]
  const rangeMessages = delta('rangeRoutingMessages') + delta('scanMessages')

  const loadAfter = loadavg()[0]
  const results = {
    setup: {
      processes: 3,
      vnodesPerProcess: 3,
      client: 'in-process LeadNode with 1 vnode; every measured key is owned by another process',
      keys: keys.length,
      transport: 'libp2p TCP + noise + yamux on 127.0.0.1, one long-lived stream per peer and protocol',
      method: `after the ring is consistent and ${WARM_UP_MS / 1000} s of untimed warm-up passes over every operation`,
      loadAverage: { before: loadBefore, after: loadAfter },
    },
    put: { batched: putBatched, pipelinedSingles: { inFlight: IN_FLIGHT, ...putSingle } },
    get: {
      batched: getBatched,
      pipelinedSingles: { inFlight: IN_FLIGHT, ...getSingle },
      moderateLoad: { inFlight: 4, ...getModerate },
      sequential: { inFlight: 1, ...getSequential },
      openLoop: { arrivalsPerSecond: OPEN_LOOP_RATE, ...getOpenLoop },
      /** Measured reads that did not return the value last written (must be 0). */
      wrongReads,
    },
    rangeQuery100: {
      ...range,
      meanEntries: rangeEntries / ranges,
      messagesPerQuery: rangeMessages / ranges,
      owningVnodesPerQuery: owningVnodes / ranges,
      perKeyLookupBaseline: 100,
    },
    overlay: overlayAfter,
  }
  console.log(JSON.stringify(results, null, 2))
  console.log(`wrote ${writeResults('cluster', results)}`)
  if (wrongReads > 0) throw new Error(`${wrongReads} measured reads returned the wrong value`)
} finally {
  await client.stop()
  // One after the other: nodes stopping together refuse each other's hand-overs.
  for (const node of cluster.nodes) await node.stop()
  await cluster.killAll()
}
