// Sequential put and get on a single node, networked (a one-peer Chord ring on loopback, every key
// owned here) against `network: false`, measured in the same run with tinybench: the cost of the
// overlay's local owner path. Writes results/local-owner.json.

import { Bench } from 'tinybench'
import { type LeadConfigInit, LeadNode } from '../ts/index.js'
import { writeResults } from './measure.js'

const PRELOADED = 10_000
const TIME_MS = 3000

const nodes = {
  local: new LeadNode({ network: false, autoRetrain: false }),
  networked: new LeadNode({ ip: '127.0.0.1', basePort: 0, autoRetrain: false } satisfies LeadConfigInit),
}
for (const node of Object.values(nodes)) {
  await node.start()
  await node.putMany(Array.from({ length: PRELOADED }, (_, i) => [`key-${i}`, { i }] as const))
}

const bench = new Bench({ time: TIME_MS, warmupTime: 500 })
for (const [name, node] of Object.entries(nodes)) {
  let written = 0
  let read = 0
  bench.add(`put ${name}`, async () => {
    await node.put(`new-${written++}`, { written })
  })
  bench.add(`get ${name}`, async () => {
    await node.get(`key-${read++ % PRELOADED}`)
  })
}
await bench.run()

const rows: Record<string, { opsPerSecond: number; p50Us: number; p99Us: number }> = {}
for (const task of bench.tasks) {
  const result = task.result
  if (!('latency' in result)) throw new Error(`${task.name} did not finish: ${result.state}`)
  rows[task.name] = {
    opsPerSecond: Math.round(1000 / result.latency.mean),
    p50Us: Math.round(result.latency.p50 * 1000),
    p99Us: Math.round(result.latency.p99 * 1000),
  }
}
const ratio = (operation: string) =>
  Number((rows[`${operation} local`].opsPerSecond / rows[`${operation} networked`].opsPerSecond).toFixed(2))
const results = { rows, slowdown: { put: ratio('put'), get: ratio('get') }, target: 1.2 }
console.table(rows)
console.log(
  `networked single node is slower by put ${results.slowdown.put}x, get ${results.slowdown.get}x (target 1.2x)`,
)
writeResults('local-owner', results)
for (const node of Object.values(nodes)) await node.stop()
