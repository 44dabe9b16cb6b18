// Crashes and partitions on real node processes (127.0.0.1): a data-directory node SIGKILLed in a
// burst of writes keeps every acknowledged one, and a ring whose halves cannot exchange data for a
// while converges once they can again, with every acknowledged write kept and none duplicated.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import type { NodeStats } from '../ts/node/lead-node.js'
import {
  type ClusterNode,
  ClusterNodeError,
  replicasInStep,
  startCluster,
  startNode,
  until,
  wordKeys,
} from './helpers/cluster.js'
import { type RingView, successorListsComplete } from './helpers/ring.js'

const SIZE = 2n ** 62n

type Stats = { node: NodeStats; routing: RingView }

async function stats(nodes: ClusterNode[]): Promise<Stats[]> {
  return Promise.all(nodes.map((node) => node.call<Stats>('stats')))
}

for (const durability of ['process', 'power'] as const) {
  test.serial(
    `a data-directory node (durability '${durability}') SIGKILLed in a burst of writes keeps every acknowledged one, intact`,
    async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'dlht-crash-'))
      t.teardown(() => rm(dir, { recursive: true, force: true }))
      const options = { config: { replicationFactor: 1, dataDir: dir, durability } }
      const node = await startNode(null, { ...options, trainOn: wordKeys(1000) })
      t.teardown(() => node.kill())
      // Every key is written once, by one batch: what a key reads is its batch's value or nothing.
      const acknowledged: string[] = []
      let batches = 0
      const writers = Array.from({ length: 4 }, async (_, writer) => {
        for (let batch = 0; ; batch++) {
          const keys = Array.from({ length: 200 }, (_, i) => `w${writer}-b${batch}-k${i}`)
          try {
            await node.call(
              'putMany',
              keys.map((key) => [key, `value of ${key}`]),
            )
          } catch {
            return
          }
          acknowledged.push(...keys)
          batches++
        }
      })
      await until(async () => batches >= 20, 30_000)
      await node.kill()
      await Promise.all(writers)
      t.log(`${acknowledged.length} keys acknowledged before the SIGKILL`)

      const restarted = await startNode(null, options)
      t.teardown(() => restarted.kill())
      const values = await restarted.call<unknown[]>('getMany', acknowledged)
      t.deepEqual(
        acknowledged.filter((key, i) => values[i] !== `value of ${key}`),
        [],
        'every acknowledged key reads its value',
      )
      const stored = await restarted.call<string[]>('storedKeys')
      const found = await restarted.call<unknown[]>('getMany', stored)
      t.deepEqual(
        stored.filter((key, i) => found[i] !== `value of ${key}`),
        [],
        'every stored key (acknowledged or not) reads the value written',
      )
    },
  )
}

test.serial(
  'a ring whose two halves exchange no data for a while converges after: acknowledged writes kept, none duplicated',
  async (t) => {
    const keys = wordKeys(3000)
    const cluster = await startCluster(t, 5, {
      trainOn: keys,
      config: { replicationFactor: 3 },
      repairIntervalMs: 1000,
      callTimeout: 1500,
    })
    const { nodes } = cluster
    await until(async () => successorListsComplete((await stats(nodes)).map((stat) => stat.routing)))
    await nodes[0].call(
      'putMany',
      keys.map((key) => [key, `${key}#0`]),
    )
    const halves = [nodes.slice(0, 2), nodes.slice(2)]
    const cut = async (on: boolean) => {
      for (const [mine, theirs] of [halves, [...halves].reverse()])
        for (const node of mine) await node.call('isolateData', on ? theirs.map((other) => other.peerId) : [])
    }
    await cut(true)
    // Each half's writer updates its own keys: what a key must read afterwards is its last acknowledged write.
    const acknowledged = new Map<string, string>(keys.map((key) => [key, `${key}#0`]))
    const unsure = new Map<string, string[]>()
    let failed = 0
    await Promise.all(
      halves.map(async ([writer], half) => {
        const own = keys.filter((_, i) => i % 2 === half).slice(0, 600)
        for (let i = 0; i < own.length; i += 50) {
          const batch = own.slice(i, i + 50)
          const value = `#${half}-${i}`
          try {
            await writer.call(
              'putMany',
              batch.map((key) => [key, `${key}${value}`]),
            )
            for (const key of batch) acknowledged.set(key, `${key}${value}`)
          } catch (err) {
            if (!(err instanceof ClusterNodeError)) throw err
            failed++
            for (const key of batch) unsure.set(key, [...(unsure.get(key) ?? []), `${key}${value}`])
          }
        }
      }),
    )
    const during = await stats(nodes)
    const held = during.reduce((sum, { node }) => sum + (node.replication?.hints.held ?? 0), 0)
    t.log(`${failed} of 24 batches failed with a typed error; ${held} writes held as hints`)
    t.true(held > 0, 'writes to replicas across the cut are held for them')
    const healed = Date.now()
    await cut(false)
    await until(() => replicasInStep(nodes, healed), 60_000)
    const after = await stats(nodes)
    t.is(
      after.reduce((sum, { node }) => sum + (node.replication?.hints.held ?? 0), 0),
      0,
      'every hint was delivered',
    )
    for (const reader of nodes) {
      const values = await reader.call<unknown[]>('getMany', keys)
      t.deepEqual(
        keys.filter(
          (key, i) =>
            values[i] !== acknowledged.get(key) && !(unsure.get(key) ?? []).includes(values[i] as string),
        ),
        [],
        'every key reads its last acknowledged write (or a later one that failed)',
      )
    }
    const copies = new Map<string, number>()
    for (const node of nodes)
      for (const key of await node.call<string[]>('storedKeys')) copies.set(key, (copies.get(key) ?? 0) + 1)
    t.deepEqual(
      keys.filter((key) => copies.get(key) !== 3),
      [],
      'every entry on exactly 3 processes',
    )
    const scanned = (await nodes[0].call<Array<{ key: string }>>('rangeQuery', 0n, SIZE - 1n)).map(
      (entry) => entry.key,
    )
    t.is(scanned.length, keys.length, 'a range query returns each key once')
    t.is(new Set(scanned).size, keys.length)
  },
)

for (const replicationFactor of [1, 3]) {
  test.serial(
    `r = ${replicationFactor}: a peer that leaves right after a forced retrain takes no entry with it`,
    async (t) => {
      const keys = wordKeys(4000)
      const cluster = await startCluster(t, 5, {
        trainOn: keys.slice(0, 500),
        config: { replicationFactor },
        repairIntervalMs: 1000,
        callTimeout: 3000,
      })
      const [anchor, , coordinator, , leaver] = cluster.nodes
      await until(async () =>
        successorListsComplete((await stats(cluster.nodes)).map((stat) => stat.routing)),
      )
      await anchor.call(
        'putMany',
        keys.map((key) => [key, key]),
      )
      const retrained = await coordinator.call<{ retrained: boolean }>('retrain')
      t.true(retrained.retrained)
      await leaver.stop()
      t.deepEqual(await anchor.call<unknown[]>('getMany', keys), keys, 'every key reads its value')
      const stored = new Set<string>()
      for (const node of cluster.alive)
        for (const key of await node.call<string[]>('storedKeys')) stored.add(key)
      t.deepEqual(
        keys.filter((key) => !stored.has(key)),
        [],
        'every key is stored by a live process',
      )
    },
  )
}
