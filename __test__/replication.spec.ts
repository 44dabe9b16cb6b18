// Replication on real multi-process rings (127.0.0.1): peers SIGKILLed while a writer runs, repair
// restoring every copy, and a peer restarted on its data directory. Nothing acknowledged is lost.

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
import { seededRandom } from './helpers/datasets.js'
import { type RingView, successorListsComplete } from './helpers/ring.js'

const SIZE = 2n ** 62n
const DELETED = Symbol('deleted')
type Value = string | typeof DELETED

/**
 * What a sequential writer did to each key: the last acknowledged value, and the values of the
 * operations that failed after it (a failed write may have been stored by some replicas).
 */
class History {
  readonly acked = new Map<string, Value>()
  readonly unsure = new Map<string, Value[]>()

  ack(key: string, value: Value): void {
    this.acked.set(key, value)
    this.unsure.delete(key)
  }

  fail(key: string, value: Value): void {
    const values = this.unsure.get(key) ?? []
    values.push(value)
    this.unsure.set(key, values)
  }

  /** Keys whose read value is not one the history allows. */
  wrong(keys: readonly string[], values: readonly unknown[]): string[] {
    const wrong: string[] = []
    for (let i = 0; i < keys.length; i++) {
      const read: Value = values[i] === undefined ? DELETED : (values[i] as string)
      const allowed = [this.acked.get(keys[i]) ?? DELETED, ...(this.unsure.get(keys[i]) ?? [])]
      if (!allowed.includes(read))
        wrong.push(`${keys[i]} read ${String(read)}, allowed ${allowed.map(String)}`)
    }
    return wrong
  }

  /** Keys whose acknowledged state is a value (and no failed write may have deleted them). */
  live(): string[] {
    return [...this.acked]
      .filter(([key, value]) => value !== DELETED && !(this.unsure.get(key) ?? []).includes(DELETED))
      .map(([key]) => key)
  }
}

type Stats = { node: NodeStats; routing: RingView }

async function stats(nodes: ClusterNode[]): Promise<Stats[]> {
  return Promise.all(nodes.map((node) => node.call<Stats>('stats')))
}

/** How many of `nodes` store each key. */
async function copies(nodes: ClusterNode[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  for (const node of nodes) {
    for (const key of await node.call<string[]>('storedKeys')) counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

/** Runs one put or delete after another on `node` until `running()` is false. */
async function writer(
  node: ClusterNode,
  keys: readonly string[],
  history: History,
  running: () => boolean,
  seed: number,
): Promise<number> {
  const random = seededRandom(seed)
  let operations = 0
  while (running()) {
    const key = keys[Math.floor(random() * keys.length)]
    const value: Value = random() < 0.2 ? DELETED : `${key}#${operations}`
    try {
      if (value === DELETED) await node.call('delete', key)
      else await node.call('put', key, value)
      history.ack(key, value)
    } catch (err) {
      if (!(err instanceof ClusterNodeError)) throw err
      history.fail(key, value)
    }
    operations++
  }
  return operations
}

test.serial(
  'r = 3 on 6 processes: 2 SIGKILLed at once under a writer, then repair, then a third: nothing acknowledged lost',
  async (t) => {
    const keys = wordKeys(3000)
    const cluster = await startCluster(t, 6, {
      trainOn: keys,
      config: { replicationFactor: 3 },
      repairIntervalMs: 1000,
      callTimeout: 2000,
    })
    const [anchor, second] = cluster.nodes
    await until(async () => successorListsComplete((await stats(cluster.nodes)).map((stat) => stat.routing)))
    const history = new History()
    await anchor.call(
      'putMany',
      keys.map((key) => [key, `${key}#initial`]),
    )
    for (const key of keys) history.ack(key, `${key}#initial`)
    for (const key of keys.slice(0, 300)) {
      await second.call('delete', key)
      history.ack(key, DELETED)
    }
    const loadedAt = Date.now()
    await until(() => replicasInStep(cluster.nodes, loadedAt), 60_000)
    const replicated = await copies(cluster.nodes)
    t.true(
      history.live().every((key) => replicated.get(key) === 3),
      'every entry is stored by exactly 3 processes',
    )
    t.true(
      keys.slice(0, 300).every((key) => !replicated.has(key)),
      'deleted keys are stored by none',
    )

    let writing = true
    const written = writer(anchor, keys, history, () => writing, 11)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const killedAt = Date.now()
    await Promise.all([cluster.nodes[4].kill(), cluster.nodes[5].kill()])
    await new Promise((resolve) => setTimeout(resolve, 3000))
    writing = false
    const operations = await written
    const failed = [...history.unsure.values()].reduce((sum, values) => sum + values.length, 0)
    t.log(`${operations} writes and deletes around the kills, ${failed} failed with a typed error`)

    for (const reader of [anchor, cluster.nodes[3]]) {
      t.deepEqual(
        history.wrong(keys, await reader.call<unknown[]>('getMany', keys)),
        [],
        'reads after 2 kills',
      )
    }
    const scanned = (await second.call<Array<{ key: string }>>('rangeQuery', 0n, SIZE - 1n)).map(
      (entry) => entry.key,
    )
    t.is(new Set(scanned).size, scanned.length, 'a range query returns each key once')
    t.true(
      history.live().every((key) => scanned.includes(key)),
      'a range query returns every live key',
    )

    await until(() => replicasInStep(cluster.alive, killedAt), 60_000)
    const repairs = (await stats(cluster.alive)).map(({ node }) => node.replication?.repair)
    t.log(
      `repair: ${repairs.reduce((sum, repair) => sum + (repair?.pushedRecords ?? 0), 0)} records pushed, ${repairs.reduce((sum, repair) => sum + (repair?.repairBytes ?? 0), 0)} bytes`,
    )
    const restored = await copies(cluster.alive)
    t.deepEqual(
      history.live().filter((key) => restored.get(key) !== 3),
      [],
      'after repair every entry is stored by exactly 3 of the 4 live processes',
    )

    await cluster.nodes[2].kill()
    for (const reader of [anchor, second]) {
      t.deepEqual(
        history.wrong(keys, await reader.call<unknown[]>('getMany', keys)),
        [],
        'reads after a third kill',
      )
    }
  },
)

test.serial(
  'a peer SIGKILLed and restarted on its data directory: nothing acknowledged missing, no deleted key back',
  async (t) => {
    const keys = wordKeys(2000)
    const dirs = await Promise.all([0, 1, 2, 3].map(() => mkdtemp(join(tmpdir(), 'dlht-replica-'))))
    t.teardown(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))).then(() => {}))
    const options = { repairIntervalMs: 1000, callTimeout: 2000 }
    const config = { replicationFactor: 3 }
    const nodes: ClusterNode[] = [
      await startNode(null, { ...options, trainOn: keys, config: { ...config, dataDir: dirs[0] } }),
    ]
    t.teardown(() => Promise.all(nodes.map((node) => node.kill())).then(() => {}))
    for (const dir of dirs.slice(1))
      nodes.push(
        await startNode(`localhost:${nodes[0].port}`, { ...options, config: { ...config, dataDir: dir } }),
      )
    const [anchor, , , victim] = nodes
    await until(async () => successorListsComplete((await stats(nodes)).map((stat) => stat.routing)))
    const history = new History()
    await anchor.call(
      'putMany',
      keys.map((key) => [key, `${key}#1`]),
    )
    for (const key of keys) history.ack(key, `${key}#1`)

    await victim.kill()
    const survivors = nodes.slice(0, 3)
    const random = seededRandom(3)
    for (let i = 0; i < 600; i++) {
      const key = keys[Math.floor(random() * keys.length)]
      const value: Value = i % 2 === 0 ? DELETED : `${key}#2`
      try {
        if (value === DELETED) await anchor.call('delete', key)
        else await anchor.call('put', key, value)
        history.ack(key, value)
      } catch (err) {
        if (!(err instanceof ClusterNodeError)) throw err
        history.fail(key, value)
      }
    }
    const restartedAt = Date.now()
    const restarted = await startNode(`localhost:${anchor.port}`, {
      ...options,
      config: { ...config, dataDir: dirs[3] },
    })
    nodes.push(restarted)
    const ring = [...survivors, restarted]
    await until(() => replicasInStep(ring, restartedAt), 60_000)
    for (const reader of ring) {
      t.deepEqual(
        history.wrong(keys, await reader.call<unknown[]>('getMany', keys)),
        [],
        'reads after the restart',
      )
    }
    t.true(
      (await restarted.call<Stats>('stats')).node.keys > 0,
      'the restarted peer came back with its entries',
    )
  },
)

test.serial(
  'a read whose replicas do not answer fails with ReplicasUnavailableError, not undefined',
  async (t) => {
    const keys = wordKeys(400)
    // readQuorum 3: every replica must answer. The map of replica sets is walked once, before the kill.
    const cluster = await startCluster(t, 4, {
      trainOn: keys,
      config: { replicationFactor: 3, readQuorum: 3 },
      repairIntervalMs: 120_000,
      callTimeout: 2000,
    })
    const { nodes } = cluster
    await until(async () => successorListsComplete((await stats(nodes)).map((stat) => stat.routing)))
    await nodes[0].call(
      'putMany',
      keys.map((key) => [key, key]),
    )
    for (const node of nodes)
      t.deepEqual(await node.call<unknown[]>('getMany', keys), keys, 'every replica answers')
    // The peer holding the fewest keys (3 copies on 4 peers: at most 3/4 of them) is killed.
    const held = await Promise.all(nodes.map((node) => node.call<string[]>('storedKeys')))
    const fewest = held.reduce((best, keysHeld, i) => (keysHeld.length < held[best].length ? i : best), 0)
    const victim = nodes[fewest]
    const reader = nodes[(fewest + 1) % nodes.length]
    const onVictim = new Set(held[fewest])
    t.true(onVictim.size > 0 && onVictim.size < keys.length)
    await victim.kill()
    const outcomes = await Promise.allSettled(keys.map((key) => reader.call('get', key)))
    for (const [i, outcome] of outcomes.entries()) {
      if (onVictim.has(keys[i])) {
        t.is(outcome.status, 'rejected', `${keys[i]} has a replica on the killed peer`)
        if (outcome.status === 'rejected')
          t.is((outcome.reason as ClusterNodeError).code, 'ERR_DLHT_REPLICAS_UNAVAILABLE')
      } else t.deepEqual(outcome, { status: 'fulfilled', value: keys[i] })
    }
  },
)

test.serial(
  'replica sets follow a rollout: after a retrain every entry is on exactly 3 processes',
  async (t) => {
    const keys = wordKeys(4000)
    const cluster = await startCluster(t, 5, {
      trainOn: keys.slice(0, 500),
      config: { replicationFactor: 3 },
      repairIntervalMs: 1000,
      callTimeout: 3000,
    })
    const [anchor, , other] = cluster.nodes
    await until(async () => successorListsComplete((await stats(cluster.nodes)).map((stat) => stat.routing)))
    await anchor.call(
      'putMany',
      keys.map((key) => [key, key]),
    )
    await anchor.call('delete', keys[0])
    const result = await other.call<{ retrained: boolean; modelVersion: number }>('retrain')
    t.true(result.retrained)
    await until(async () =>
      (await stats(cluster.nodes)).every(
        ({ node }) => node.modelVersion === result.modelVersion && node.rollout?.state === 'idle',
      ),
    )
    const settled = Date.now()
    await until(() => replicasInStep(cluster.nodes, settled), 60_000)
    const stored = await copies(cluster.nodes)
    t.deepEqual(
      keys.slice(1).filter((key) => stored.get(key) !== 3),
      [],
    )
    t.false(stored.has(keys[0]), 'the deleted key is stored nowhere')
    const values = await anchor.call<unknown[]>('getMany', keys)
    t.deepEqual(values, [undefined, ...keys.slice(1)])
  },
)
