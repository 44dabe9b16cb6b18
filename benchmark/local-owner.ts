// Sequential put and get on a single node, networked (a one-peer Chord ring on loopback, every key
// owned here) against `network: false`, measured in the same run with tinybench: the cost of the
// overlay's local owner path. Rounds alternate the two nodes so that the machine's load weighs on
// both alike; each ratio is the median over the rounds. Writes results/local-owner.json.

import { Bench } from 'tinybench'
import { LeadNode } from '../ts/index.js'
import { writeResults } from './measure.js'

const PRELOADED = 10_000
const ROUNDS = 7
const TIME_MS = 500

const nodes = {
  local: new LeadNode({ network: false, autoRetrain: false }),
  networked: new LeadNode({ ip: '127.0.0.1', basePort: 0, autoRetrain: false }),
}
for (const node of Object.values(nodes)) {
  await node.start()
  await node.putMany(Array.from({ length: PRELOADED }, (_, i) => [`key-${i}`, { i }] as const))
}

type Operation = 'put' | 'get'
const OPERATIONS: Operation[] = ['put', 'get']
let written = 0
let read = 0
const operation = (node: LeadNode, name: Operation) =>
  name === 'put'
    ? async () => {
        await node.put(`new-${written++}`, { written })
      }
    : async () => {
        await node.get(`key-${read++ % PRELOADED}`)
      }

/** Operations per second and latency percentiles of every round, by task name. */
const rounds: Record<string, Array<{ opsPerSecond: number; p50Us: number; p99Us: number }>> = {}
for (let round = 0; round < ROUNDS; round++) {
  const bench = new Bench({ time: TIME_MS, warmupTime: round === 0 ? 500 : 100 })
  const order = round % 2 === 0 ? (['local', 'networked'] as const) : (['networked', 'local'] as const)
  for (const name of OPERATIONS)
    for (const kind of order) bench.add(`${name} ${kind}`, operation(nodes[kind], name))
  await bench.run()
  for (const task of bench.tasks) {
    const result = task.result
    if (!('latency' in result)) throw new Error(`${task.name} did not finish: ${result.state}`)
    rounds[task.name] ??= []
    rounds[task.name].push({
      opsPerSecond: Math.round(1000 / result.latency.mean),
      p50Us: Math.round(result.latency.p50 * 1000),
      p99Us: Math.round(result.latency.p99 * 1000),
    })
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const rows = Object.fromEntries(
  Object.entries(rounds).map(([name, samples]) => [
    name,
    {
      opsPerSecond: median(samples.map((sample) => sample.opsPerSecond)),
      p50Us: median(samples.map((sample) => sample.p50Us)),
      p99Us: median(samples.map((sample) => sample.p99Us)),
    },
  ]),
)
const slowdown = Object.fromEntries(
  OPERATIONS.map((name) => {
    const ratios = rounds[`${name} local`].map(
      (local, i) => local.opsPerSecond / rounds[`${name} networked`][i].opsPerSecond,
    )
    return [name, Number(median(ratios).toFixed(2))]
  }),
)
console.table(rows)
console.log(
  `networked single node is slower by put ${slowdown.put}x, get ${slowdown.get}x (median of ${ROUNDS} rounds; target 1.2x)`,
)
writeResults('local-owner', { rows, slowdown, rounds: ROUNDS, target: 1.2 })
for (const node of Object.values(nodes)) await node.stop()
