// A cluster-wide retrain on 8 loopback processes (3 vnodes each) holding 100k English words: the
// federated round's time and bytes (against shipping key samples), the migration's duration and
// rate, the vnode moves that follow (rebalance on) against consistent hashing, and remote GET
// latency and misses from an in-process client before and during all of it.

import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { Cluster, clusterClient, until, wordKeys } from '../__test__/helpers/cluster.js'
import { seededRandom } from '../__test__/helpers/datasets.js'
import { vnodePosition } from '../ts/chord/index.js'
import type { RolloutStats } from '../ts/federation/model-rollout.js'
import type { NodeStats, RetrainResult } from '../ts/node/lead-node.js'
import { closedLoop, percentile, writeResults } from './measure.js'

const NODES = 8
const SIZE = 2n ** 62n
const KEYS = 100_000
/** Keys a node would ship per round if rounds exchanged samples instead of models. */
const SAMPLE_KEYS = 10_000
const BATCH = 1000

const words = wordKeys(KEYS)
// The ring starts on a model of the first quarter of the words: the retrain moves most entries.
const cluster = await Cluster.start(NODES, {
  trainOn: words.slice(0, KEYS / 4),
  stabilizeInterval: 1,
  callTimeout: 5000,
  rebalance: true,
  config: { replicationFactor: 1 },
})
const client = clusterClient(cluster)

type Stats = NodeStats & { rollout: RolloutStats }
const allStats = async (): Promise<Stats[]> => [
  ...(await Promise.all(cluster.nodes.map(async (node) => (await node.call<{ node: Stats }>('stats')).node))),
  client.getStats() as Stats,
]

/** GETs with 4 in flight until `stop` is set; latencies, errors and wrong answers. */
function getLoad(random: () => number) {
  const latencies: number[] = []
  let errors = 0
  const errorCodes = new Set<string>()
  let wrong = 0
  let stop = false
  const done = Promise.all(
    Array.from({ length: 4 }, async () => {
      while (!stop) {
        const word = words[Math.floor(random() * words.length)]
        const began = performance.now()
        try {
          if ((await client.get(word)) !== word.length) wrong++
          latencies.push(performance.now() - began)
        } catch (err) {
          errors++
          errorCodes.add((err as { code?: string }).code ?? (err as Error).message)
        }
      }
    }),
  )
  return {
    async finish() {
      stop = true
      await done
      return {
        gets: latencies.length,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        errors,
        errorCodes: [...errorCodes],
        wrong,
      }
    },
  }
}

try {
  await client.start()
  for (let i = 0; i < words.length; i += BATCH) {
    await client.putMany(words.slice(i, i + BATCH).map((word) => [word, word.length] as const))
  }
  const random = seededRandom(5)
  const before = await closedLoop(3000, 4, async () => {
    const word = words[Math.floor(random() * words.length)]
    if ((await client.get(word)) !== word.length) throw new Error(`wrong value for ${word}`)
  })
  const keysBefore = (await allStats()).map((node) => node.keys)

  const load = getLoad(random)
  const started = performance.now()
  const round = await cluster.nodes[0].call<RetrainResult>('retrain')
  const committed = performance.now()
  await until(async () => {
    const all = await allStats()
    return all.every((node) => node.modelVersion === round.modelVersion && node.rollout.state === 'idle')
  }, 120_000)
  const finished = performance.now()
  const during = await load.finish()
  const after = await allStats()
  const migratedEntries = after.reduce((sum, node) => sum + node.rollout.migratedEntries, 0)
  const migratedBytes = after.reduce((sum, node) => sum + node.rollout.migratedBytes, 0)
  const keysAfter = after.map((node) => node.keys)
  const mean = KEYS / keysAfter.length
  // Consistent hashing in the same run: SHA-256 of each key onto the same peers' SHA-256 vnode ids.
  const ring = after
    .flatMap((node) =>
      node.vnodes.map((vnode) => ({
        id: vnodePosition(node.peerId, vnode.vnodeId, SIZE),
        peer: node.peerId,
      })),
    )
    .sort((a, b) => (a.id < b.id ? -1 : 1))
  const hashed = new Map<string, number>()
  for (const word of words) {
    const position = createHash('sha256').update(word).digest().readBigUInt64BE(0) % SIZE
    const owner = ring.find((vnode) => vnode.id >= position) ?? ring[0]
    hashed.set(owner.peer, (hashed.get(owner.peer) ?? 0) + 1)
  }
  const contributors = round.contributors ?? 0
  // Shipping samples instead: each contributor sends up to SAMPLE_KEYS encoded keys (8 bytes each).
  const sampleBytes = keysBefore.reduce((sum, keys) => sum + Math.min(SAMPLE_KEYS, keys) * 8, 0)

  const results = {
    setup: {
      processes: NODES,
      vnodesPerProcess: 3,
      client: 'in-process LeadNode with 1 vnode (also a member of the ring)',
      keys: KEYS,
      data: 'an-array-of-english-words, spread over the list; ring first trained on the first quarter',
    },
    round: {
      modelVersion: round.modelVersion,
      contributors,
      trainingDataSize: round.trainingDataSize,
      roundMs: round.trainingMs,
      untilCommitMs: committed - started,
      bytesExchanged: round.bytesExchanged,
      bytesIfShippingSamples: sampleBytes,
      ratio: sampleBytes / (round.bytesExchanged ?? 1),
    },
    migration: {
      untilEveryPeerIdleMs: finished - committed,
      slowestPeerMs: Math.max(...after.map((node) => node.rollout.lastMigrationMs ?? 0)),
      entries: migratedEntries,
      bytes: migratedBytes,
      entriesPerSecond: migratedEntries / ((finished - committed) / 1000),
      keysPerProcessBefore: keysBefore,
      keysPerProcessAfter: keysAfter,
    },
    loadPerProcess: {
      rebalance: after[0].rollout.lastRebalance,
      learnedMaxOverMean: Math.max(...keysAfter) / mean,
      consistentHashingMaxOverMean: Math.max(...after.map((node) => hashed.get(node.peerId) ?? 0)) / mean,
    },
    get: { beforeRollout: before, duringRollout: during, p99Ratio: during.p99Ms / before.p99Ms },
  }
  console.log(JSON.stringify(results, null, 2))
  console.log(`written to ${writeResults('rollout', results)}`)
  if (after.reduce((sum, node) => sum + node.keys, 0) !== KEYS) throw new Error('entries lost or duplicated')
} finally {
  await client.stop().catch(() => {})
  await cluster.killAll()
}
