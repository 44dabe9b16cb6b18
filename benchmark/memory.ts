// Memory at scale: one in-process LeadNode holding N small entries against a plain JS Map of the same
// data, each in its own child process of this run (RSS, bytes per entry, get latency). Writes results/memory.json.

import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { seededRandom } from '../__test__/helpers/datasets.js'
import { LeadNode } from '../ts/index.js'
import { percentile, writeResults } from './measure.js'

/** Entries to hold; DLHT_MEMORY_ENTRIES overrides (10M needs several GB and minutes). */
const ENTRIES = Number(process.env.DLHT_MEMORY_ENTRIES ?? 1_000_000)
const BATCH = 10_000
const PROBES = 20_000

type Store = 'map' | 'lead-node'

interface Footprint {
  store: Store
  entries: number
  rssBytes: number
  heapUsedBytes: number
  bytesPerEntry: number
  loadSeconds: number
  getP50Us: number
  getP99Us: number
}

const keyAt = (i: number) => `user:${i.toString(36).padStart(8, '0')}`
const valueAt = (i: number) => ({ n: i })

/** Fills one store in this process and measures it. */
async function measure(store: Store): Promise<Footprint> {
  globalThis.gc?.()
  const before = process.memoryUsage().rss
  const started = performance.now()
  let get: (key: string) => Promise<unknown>
  if (store === 'map') {
    const map = new Map<string, unknown>()
    for (let i = 0; i < ENTRIES; i++) map.set(keyAt(i), valueAt(i))
    get = async (key) => map.get(key)
  } else {
    const node = new LeadNode({ network: false })
    await node.start()
    for (let from = 0; from < ENTRIES; from += BATCH) {
      const entries = Array.from(
        { length: Math.min(BATCH, ENTRIES - from) },
        (_, i) => [keyAt(from + i), valueAt(from + i)] as const,
      )
      await node.putMany(entries)
    }
    get = (key) => node.get(key)
  }
  const loadSeconds = (performance.now() - started) / 1000
  globalThis.gc?.()
  const { rss, heapUsed } = process.memoryUsage()
  const random = seededRandom(5)
  const latencies: number[] = []
  for (let i = 0; i < PROBES; i++) {
    const key = keyAt(Math.floor(random() * ENTRIES))
    const start = process.hrtime.bigint()
    if ((await get(key)) === undefined) throw new Error(`${store} lost ${key}`)
    latencies.push(Number(process.hrtime.bigint() - start) / 1000)
  }
  return {
    store,
    entries: ENTRIES,
    rssBytes: rss,
    heapUsedBytes: heapUsed,
    bytesPerEntry: Math.round((rss - before) / ENTRIES),
    loadSeconds,
    getP50Us: percentile(latencies, 50),
    getP99Us: percentile(latencies, 99),
  }
}

const child = process.argv[2] as Store | undefined
if (child !== undefined) {
  console.log(JSON.stringify(await measure(child)))
} else {
  const script = fileURLToPath(import.meta.url)
  const footprints = (['map', 'lead-node'] as const).map(
    (store) =>
      JSON.parse(
        execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, store], {
          encoding: 'utf8',
          maxBuffer: 1 << 20,
        }),
      ) as Footprint,
  )
  console.table(footprints)
  console.log(`wrote ${writeResults('memory', { value: valueAt(0), key: keyAt(0), footprints })}`)
}
