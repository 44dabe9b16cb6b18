// One embedded LeadNode reproducing the seed's benchmark table (PUT, GET, range query of 100 keys,
// retraining at 1k and 10k keys) on integer keys and on string keys, next to a plain Map +
// v8.serialize baseline measured in the same run; also get latency while a retrain runs. Writes
// results/node.json.

import { deserialize, serialize } from 'node:v8'
import { seededRandom } from '../__test__/helpers/datasets.js'
import { LeadNode } from '../ts/index.js'
import { percentile, writeResults } from './measure.js'

const KEYS = 200_000
const BATCH = 1000
const SINGLE_OPS = 50_000
const RANGE_QUERIES = 20_000
const RANGE_SIZE = 100

/** Wall-clock rate, and the rate by this process's CPU time (which other jobs on the machine disturb less). */
interface Rate {
  opsPerSecond: number
  cpuOpsPerSecond: number
}

interface Row extends Rate {
  p50Us: number
  p99Us: number
}

/** Seconds of CPU this process has used. */
function cpuSeconds(): number {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1e6
}

const random = seededRandom(2024)
const keys = Array.from({ length: KEYS }, () => Math.floor(random() * 2 ** 48))
/** The same number of string keys, new to the node when written (`user:` and 10 base-36 digits). */
const stringKeys = Array.from({ length: KEYS }, () => `user:${Math.floor(random() * 36 ** 10).toString(36)}`)
const values = keys.map((_, i) => ({ data: `value-${i}` }))
/** Keys of the gets timed while retrains run. */
const probe = Array.from({ length: SINGLE_OPS }, () => keys[Math.floor(random() * KEYS)])

/** Runs `operation` once per item, awaiting each: throughput and per-call latency percentiles. */
async function timed<T>(
  items: readonly T[],
  operation: (item: T, index: number) => Promise<unknown>,
): Promise<Row> {
  const latencies = new Float64Array(items.length)
  const cpuStart = cpuSeconds()
  const start = process.hrtime.bigint()
  for (let i = 0; i < items.length; i++) {
    const begin = process.hrtime.bigint()
    await operation(items[i], i)
    latencies[i] = Number(process.hrtime.bigint() - begin) / 1000
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const cpu = cpuSeconds() - cpuStart
  const samples = Array.from(latencies)
  return {
    opsPerSecond: Math.round(items.length / seconds),
    cpuOpsPerSecond: Math.round(items.length / cpu),
    p50Us: round(percentile(samples, 50)),
    p99Us: round(percentile(samples, 99)),
  }
}

/** Throughput of operations done in batches of `BATCH` (one awaited call per batch). */
async function batched(count: number, run: (from: number, to: number) => Promise<unknown>): Promise<Rate> {
  const cpuStart = cpuSeconds()
  const start = process.hrtime.bigint()
  for (let from = 0; from < count; from += BATCH) await run(from, Math.min(count, from + BATCH))
  return {
    opsPerSecond: Math.round(count / (Number(process.hrtime.bigint() - start) / 1e9)),
    cpuOpsPerSecond: Math.round(count / (cpuSeconds() - cpuStart)),
  }
}

function round(value: number, digits = 2): number {
  return Number(value.toFixed(digits))
}

function batches(from: number): number[] {
  return Array.from({ length: Math.ceil((KEYS - from) / BATCH) }, (_, i) => from + i * BATCH)
}

async function baseline<K extends number | string>(keys: readonly K[]) {
  const probe = Array.from({ length: SINGLE_OPS }, () => keys[Math.floor(random() * KEYS)])
  const map = new Map<K, Uint8Array>()
  const put = async (key: K, value: unknown) => {
    map.set(key, serialize(value))
  }
  const get = async (key: K) => {
    const bytes = map.get(key)
    return bytes === undefined ? undefined : deserialize(bytes)
  }
  const putRow = await timed(keys, (key, i) => put(key, values[i]))
  const getRow = await timed(probe, (key) => get(key))
  return { put: putRow, get: getRow }
}

/** Runs every measured path on a small throwaway node first, so that the JIT has compiled them. */
async function warmUp<K extends number | string>(keys: readonly K[], above: (key: K) => K): Promise<void> {
  const node = new LeadNode({ network: false, autoRetrain: false })
  await node.start()
  const count = 20_000
  for (let from = 0; from < count; from += BATCH) {
    await node.putMany(keys.slice(from, from + BATCH).map((key, i) => [key, values[from + i]]))
  }
  for (let i = 0; i < 2000; i++) await node.put(keys[count + i], values[i])
  await node.retrainModel({ force: true })
  for (let from = 0; from < count; from += BATCH) await node.getMany(keys.slice(from, from + BATCH))
  for (let i = 0; i < count; i++) await node.get(keys[i])
  for (let i = 0; i < 2000; i++) {
    const { hashMin, hashMax } = node.learnedHash.predictRange(keys[i], above(keys[i]))
    for (const entry of await node.rangeQuery(hashMin, hashMax)) entry.value
    await node.rangeQueryKeys(keys[i], above(keys[i]))
  }
  await node.stop()
}

/** The table's rows on one key set: integers, or strings (ordered by UTF-8 bytes, as the node orders them). */
async function nodeTable<K extends number | string>(keys: readonly K[]) {
  const probe = Array.from({ length: SINGLE_OPS }, () => keys[Math.floor(random() * KEYS)])
  const node = new LeadNode({ network: false, autoRetrain: false })
  await node.start()
  const loaded = KEYS - 20_000
  const putBatched = await batched(loaded, (from, to) =>
    node.putMany(keys.slice(from, to).map((key, i) => [key, values[from + i]])),
  )
  const putSingle = await timed(keys.slice(loaded), (key, i) => node.put(key, values[loaded + i]))
  await node.retrainModel({ force: true })
  const getBatched = await batched(KEYS, (from, to) => node.getMany(keys.slice(from, to)))
  const getSingle = await timed(probe, (key) => node.get(key))

  // The string keys are ASCII: their UTF-16 order is their byte order.
  const ordered = [...new Set(keys)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const starts = Array.from({ length: RANGE_QUERIES }, () =>
    Math.floor(random() * (ordered.length - RANGE_SIZE)),
  )
  const arcs = starts.map((at) => [
    node.learnedHash.predict(ordered[at]),
    node.learnedHash.predict(ordered[at + RANGE_SIZE - 1]),
  ])
  let found = 0
  const rangeQuery = await timed(arcs, async ([low, high]) => {
    found += (await node.rangeQuery(low, high)).length
  })
  const rangeQueryReadingValues = await timed(arcs, async ([low, high]) => {
    for (const entry of await node.rangeQuery(low, high)) entry.value
  })
  const rangeQueryKeys = await timed(starts, (at) =>
    node.rangeQueryKeys(ordered[at], ordered[at + RANGE_SIZE - 1]),
  )
  await node.stop()
  return {
    putBatched,
    putSingle,
    getBatched,
    getSingle,
    rangeQuery: { ...rangeQuery, meanEntries: round(found / RANGE_QUERIES, 1) },
    rangeQueryReadingValues,
    rangeQueryKeys,
  }
}

/** Forced retrains of a node holding `count` keys: total time (training off-thread + re-positioning). */
async function retraining(count: number, runs: number) {
  const node = new LeadNode({ network: false, autoRetrain: false })
  await node.start()
  await node.putMany(keys.slice(0, count).map((key, i) => [key, values[i]]))
  const totals: number[] = []
  const training: number[] = []
  for (let run = 0; run < runs; run++) {
    const result = await node.retrainModel({ force: true })
    totals.push(result.trainingMs + result.repositionMs)
    training.push(result.trainingMs)
  }
  await node.stop()
  return {
    keys: count,
    trainingDataSize: Math.min(count, 10_000),
    p50Ms: round(percentile(totals, 50), 3),
    p99Ms: round(percentile(totals, 99), 3),
    trainingP50Ms: round(percentile(training, 50), 3),
  }
}

/**
 * Single gets, yielding to the event loop every few calls as a server would, while retrains of a
 * node holding every key run: get latency percentiles during the retrains.
 */
async function getsDuringRetrain() {
  const node = new LeadNode({ network: false, autoRetrain: false })
  await node.start()
  for (const from of batches(0))
    await node.putMany(keys.slice(from, from + BATCH).map((key, i) => [key, values[from + i]]))
  let retraining = true
  const retrains = (async () => {
    for (let run = 0; run < 5; run++) await node.retrainModel({ force: true })
    retraining = false
  })()
  const latencies: number[] = []
  for (let i = 0; retraining; i++) {
    const begin = process.hrtime.bigint()
    await node.get(probe[i % SINGLE_OPS])
    latencies.push(Number(process.hrtime.bigint() - begin) / 1000)
    if (i % 16 === 0) await new Promise<void>((resolve) => setImmediate(resolve))
  }
  await retrains
  await node.stop()
  return {
    keys: KEYS,
    retrains: 5,
    gets: latencies.length,
    p50Us: round(percentile(latencies, 50)),
    p99Us: round(percentile(latencies, 99)),
    maxUs: round(Math.max(...latencies)),
  }
}

const started = Date.now()
await warmUp(keys, (key) => key + 1e9)
await warmUp(stringKeys, (key) => `${key}~`)
const base = { integers: await baseline(keys), strings: await baseline(stringKeys) }
const node = { integers: await nodeTable(keys), strings: await nodeTable(stringKeys) }
const retrain = { '1k keys': await retraining(1_000, 21), '10k keys': await retraining(10_000, 11) }
const duringRetrain = await getsDuringRetrain()

function ratios(keySet: 'integers' | 'strings') {
  const [table, map] = [node[keySet], base[keySet]]
  return {
    putBatchedVsBaseline: round(table.putBatched.opsPerSecond / map.put.opsPerSecond),
    getBatchedVsBaseline: round(table.getBatched.opsPerSecond / map.get.opsPerSecond),
    putBatchedVsBaselineByCpu: round(table.putBatched.cpuOpsPerSecond / map.put.cpuOpsPerSecond),
    getBatchedVsBaselineByCpu: round(table.getBatched.cpuOpsPerSecond / map.get.cpuOpsPerSecond),
    putSingleVsBaseline: round(table.putSingle.opsPerSecond / map.put.opsPerSecond),
    getSingleVsBaseline: round(table.getSingle.opsPerSecond / map.get.opsPerSecond),
  }
}

const results = {
  keys: KEYS,
  batch: BATCH,
  value: values[0],
  stringKey: stringKeys[0],
  baseline: { description: 'async put/get over a JS Map with v8.serialize values, same keys', ...base },
  node,
  retrain,
  getDuringRetrain: duringRetrain,
  ratios: { integers: ratios('integers'), strings: ratios('strings') },
  targets: {
    putBatchedOpsPerSecond: 1_000_000,
    getBatchedOpsPerSecond: 2_000_000,
    singleGetP99Us: 10,
    singlePutP99Us: 50,
    rangeQuery100OpsPerSecond: 100_000,
    getP99DuringRetrainUs: 1000,
  },
  seconds: round((Date.now() - started) / 1000, 1),
}

const row = (
  name: string,
  ops: number | string,
  cpuOps: number | string,
  p50: number | string,
  p99: number | string,
) =>
  console.log(
    `${name.padEnd(48)} ${String(ops).padStart(10)} ${String(cpuOps).padStart(12)} ${String(p50).padStart(10)} ${String(p99).padStart(10)}`,
  )
row('operation', 'ops/s', 'ops/CPU-s', 'p50', 'p99')
for (const keySet of ['integers', 'strings'] as const) {
  const [table, map] = [node[keySet], base[keySet]]
  const timedRow = (name: string, r: Row) =>
    row(`${name}, ${keySet}`, r.opsPerSecond, r.cpuOpsPerSecond, `${r.p50Us} us`, `${r.p99Us} us`)
  const batchRow = (name: string, r: Rate) =>
    row(`${name} (batches of ${BATCH}), ${keySet}`, r.opsPerSecond, r.cpuOpsPerSecond, '-', '-')
  batchRow('PUT, putMany', table.putBatched)
  timedRow('PUT (single put)', table.putSingle)
  batchRow('GET, getMany', table.getBatched)
  timedRow('GET (single get)', table.getSingle)
  timedRow('range query, 100 keys', table.rangeQuery)
  timedRow('range query, values read', table.rangeQueryReadingValues)
  timedRow('rangeQueryKeys, 100 keys', table.rangeQueryKeys)
  timedRow('baseline PUT (Map + v8.serialize)', map.put)
  timedRow('baseline GET (Map + v8.deserialize)', map.get)
}
for (const [name, r] of Object.entries(retrain))
  row(`retraining, ${name}`, '-', '-', `${r.p50Ms} ms`, `${r.p99Ms} ms`)
row('GET during retraining (200k keys)', '-', '-', `${duringRetrain.p50Us} us`, `${duringRetrain.p99Us} us`)
console.log(`ratios vs baseline: ${JSON.stringify(results.ratios)}; ${results.seconds} s`)
console.log(`wrote ${writeResults('node', results)}`)
