// Memory at scale: one in-process LeadNode holding 2M and 10M small entries against plain JS Maps of
// the same data, each in its own child process of this run (RSS, bytes per entry, get latency).
// Writes results/memory.json.

import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { deserialize, serialize } from 'node:v8'
import { seededRandom } from '../__test__/helpers/datasets.js'
import { LeadNode } from '../ts/index.js'
import { percentile, writeResults } from './measure.js'

/** Entries to hold: `--entries=N` or DLHT_MEMORY_ENTRIES for a smaller run; 10M takes ~5 GB and a few minutes. */
const ENTRIES = Number(
  process.argv.find((arg) => arg.startsWith('--entries='))?.slice('--entries='.length) ??
    process.env.DLHT_MEMORY_ENTRIES ??
    10_000_000,
)
const BATCH = 10_000
const PROBES = 20_000
/** `map-bytes` costs ~1.7 KB per entry (a backing store per Buffer): it holds at most this many. */
const MAP_BYTES_MAX_ENTRIES = 1_000_000
/** The smaller scale measured too (when `ENTRIES` is above it). */
const SMALLER_ENTRIES = 2_000_000
/** Heap limit of each child: 10M entries need more than V8's default. */
const MAX_OLD_SPACE_MB = 16_384

/** `map`: the values as objects; `map-bytes`: as v8.serialize bytes, the form dlht stores them in. */
type Store = 'map' | 'map-bytes' | 'lead-node'

interface Footprint {
  store: Store
  entries: number
  rssBytes: number
  heapUsedBytes: number
  /** Off-heap: array buffers and other memory V8 accounts for outside its heap. */
  externalBytes: number
  bytesPerEntry: number
  heapBytesPerEntry: number
  loadSeconds: number
  getP50Us: number
  getP99Us: number
}

const keyAt = (i: number) => `user:${i.toString(36).padStart(8, '0')}`
const valueAt = (i: number) => ({ n: i })

/**
 * Full GCs with event-loop turns between them: buffers handed over by the native addon are freed by
 * finalizers that run a turn after the GC that found them dead, and a retrain may still be finishing.
 */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 3; turn++) {
    globalThis.gc?.()
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  globalThis.gc?.()
}

/** Fills one store in this process with `entries` entries and measures it. */
async function measure(store: Store, entries: number): Promise<Footprint> {
  await settle()
  const before = process.memoryUsage()
  const started = performance.now()
  let get: (key: string) => Promise<unknown>
  if (store === 'map') {
    const map = new Map<string, unknown>()
    for (let i = 0; i < entries; i++) map.set(keyAt(i), valueAt(i))
    get = async (key) => map.get(key)
  } else if (store === 'map-bytes') {
    const map = new Map<string, Uint8Array>()
    for (let i = 0; i < entries; i++) map.set(keyAt(i), serialize(valueAt(i)))
    get = async (key) => {
      const bytes = map.get(key)
      return bytes === undefined ? undefined : deserialize(bytes)
    }
  } else {
    const node = new LeadNode({ network: false })
    await node.start()
    for (let from = 0; from < entries; from += BATCH) {
      const batch = Array.from(
        { length: Math.min(BATCH, entries - from) },
        (_, i) => [keyAt(from + i), valueAt(from + i)] as const,
      )
      await node.putMany(batch)
    }
    get = (key) => node.get(key)
  }
  const loadSeconds = (performance.now() - started) / 1000
  await settle()
  const { rss, heapUsed, external } = process.memoryUsage()
  const random = seededRandom(5)
  const latencies: number[] = []
  for (let i = 0; i < PROBES; i++) {
    const key = keyAt(Math.floor(random() * entries))
    const start = process.hrtime.bigint()
    if ((await get(key)) === undefined) throw new Error(`${store} lost ${key}`)
    latencies.push(Number(process.hrtime.bigint() - start) / 1000)
  }
  return {
    store,
    entries,
    rssBytes: rss,
    heapUsedBytes: heapUsed,
    externalBytes: external,
    bytesPerEntry: Math.round((rss - before.rss) / entries),
    heapBytesPerEntry: Math.round((heapUsed - before.heapUsed) / entries),
    loadSeconds,
    getP50Us: percentile(latencies, 50),
    getP99Us: percentile(latencies, 99),
  }
}

const child = process.argv[2]?.startsWith('--') ? undefined : (process.argv[2] as Store | undefined)
if (child !== undefined) {
  console.log(JSON.stringify(await measure(child, ENTRIES)))
} else {
  const script = fileURLToPath(import.meta.url)
  const runs: Array<[Store, number]> = [
    ['map', ENTRIES],
    ['map-bytes', Math.min(ENTRIES, MAP_BYTES_MAX_ENTRIES)],
    ['lead-node', ENTRIES],
  ]
  if (ENTRIES > SMALLER_ENTRIES) runs.push(['map', SMALLER_ENTRIES], ['lead-node', SMALLER_ENTRIES])
  const footprints = runs.map(
    ([store, entries]) =>
      JSON.parse(
        execFileSync(
          process.execPath,
          [
            '--expose-gc',
            `--max-old-space-size=${MAX_OLD_SPACE_MB}`,
            '--import',
            'tsx',
            script,
            store,
            `--entries=${entries}`,
          ],
          { encoding: 'utf8', maxBuffer: 1 << 20, timeout: 30 * 60_000 },
        ),
      ) as Footprint,
  )
  console.table(footprints)
  const find = (store: Store, entries: number) =>
    footprints.find((footprint) => footprint.store === store && footprint.entries === entries) as Footprint
  const [map, mapBytes, leadNode] = footprints
  const ratios = {
    bytesPerEntryOverMap: leadNode.bytesPerEntry / map.bytesPerEntry,
    bytesPerEntryOverMapBytes: leadNode.bytesPerEntry / mapBytes.bytesPerEntry,
    getP99OverMapBytes: leadNode.getP99Us / mapBytes.getP99Us,
    ...(ENTRIES > SMALLER_ENTRIES && {
      bytesPerEntryOverMapAtSmaller:
        find('lead-node', SMALLER_ENTRIES).bytesPerEntry / find('map', SMALLER_ENTRIES).bytesPerEntry,
    }),
  }
  const target = { bytesPerEntry: 150 }
  console.log(ratios)
  console.log(
    `wrote ${writeResults('memory', { value: valueAt(0), key: keyAt(0), footprints, ratios, target })}`,
  )
}
