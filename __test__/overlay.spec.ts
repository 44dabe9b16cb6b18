// Three LeadNodes in one process forming a Chord ring over real libp2p (TCP on 127.0.0.1):
// cross-node put/get/delete/range, the routing cache, and hand-off when a node leaves (one copy
// of each entry, replicationFactor 1: the tests count entries per node).

import test from 'ava'
import { LeadNode } from '../ts/node/lead-node.js'
import { chordRouter } from '../ts/overlay/chord-router.js'
import { englishWords } from './helpers/datasets.js'
import { type RingView, ringIsConsistent, successorListsComplete } from './helpers/ring.js'

const WORDS = englishWords()
/** Words spread over the alphabet (strings are placed in byte order). */
const KEYS = Array.from({ length: 600 }, (_, i) => WORDS[Math.floor((i * WORDS.length) / 600)])

function node(bootstrapPeer: string | null, stabilizeInterval = 0.1): LeadNode {
  return new LeadNode(
    {
      ip: '127.0.0.1',
      basePort: 0,
      bootstrapPeer,
      stabilizeInterval,
      autoRetrain: false,
      replicationFactor: 1,
    },
    { router: chordRouter({ callTimeout: 2000 }) },
  )
}

function views(nodes: LeadNode[]): RingView[] {
  return nodes.map((member) => member.getRoutingTableStats() as unknown as RingView)
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A ring of three nodes whose model was trained on KEYS by the first before the others joined. */
async function threeNodeRing(t: { teardown(fn: () => Promise<void>): void }): Promise<LeadNode[]> {
  const first = node(null)
  await first.start()
  t.teardown(() => first.stop())
  await first.retrainModel({ sampleKeys: KEYS, force: true })
  const address = (first.getRoutingTableStats().multiaddrs as string[])[0]
  const port = address.split('/')[4]
  const second = node(`localhost:${port}`)
  const third = node(address)
  for (const joiner of [second, third]) {
    await joiner.start()
    t.teardown(() => joiner.stop())
  }
  const nodes = [first, second, third]
  await until(() => ringIsConsistent(views(nodes)))
  return nodes
}

test('three nodes: puts and gets from any node, ranges equal brute force, deletes seen everywhere', async (t) => {
  const nodes = await threeNodeRing(t)
  t.true(
    nodes.every((member) => member.learnedHash.version === 1),
    'joiners adopted the ring model',
  )
  await Promise.all(KEYS.map((key, i) => nodes[i % 3].put(key, { i, key })))
  for (const [i, key] of KEYS.entries()) t.deepEqual(await nodes[(i + 1) % 3].get(key), { i, key })
  const perNode = nodes.map((member) => member.getStats().keys)
  t.is(
    perNode.reduce((a, b) => a + b, 0),
    KEYS.length,
  )
  t.true(perNode.filter((keys) => keys > 0).length >= 2, `keys spread over the nodes: ${perNode}`)

  const everything = await nodes[2].rangeQuery(0n, 2n ** 62n - 1n)
  t.deepEqual(everything.map((entry) => entry.key).sort(), [...KEYS].sort())
  const positions = everything.map((entry) => entry.position)
  t.deepEqual(
    positions,
    [...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
  )
  const low = positions[100]
  const high = positions[400]
  const slice = await nodes[1].rangeQuery(low, high)
  t.deepEqual(
    slice.map((entry) => entry.key),
    everything.filter((entry) => entry.position >= low && entry.position <= high).map((entry) => entry.key),
  )
  const byKey = await nodes[0].rangeQueryKeys(KEYS[10], KEYS[20])
  t.deepEqual(
    byKey.map((entry) => entry.key),
    KEYS.slice(10, 21),
  )

  t.true(await nodes[0].delete(KEYS[5]))
  for (const member of nodes) t.is(await member.get(KEYS[5]), undefined)
  t.false(await nodes[1].delete(KEYS[5]))
})

test('a warm routing cache reaches the owner without a lookup', async (t) => {
  const nodes = await threeNodeRing(t)
  await nodes[0].putMany(KEYS.map((key) => [key, key] as const))
  await Promise.all(KEYS.map((key) => nodes[1].get(key)))
  const before = nodes[1].getRoutingTableStats().overlay as { lookups: number; cacheHits: number }
  await Promise.all(KEYS.map((key) => nodes[1].get(key)))
  const after = nodes[1].getRoutingTableStats().overlay as { lookups: number; cacheHits: number }
  t.is(after.lookups, before.lookups, 'no lookups once warm')
  t.true(after.cacheHits > before.cacheHits)
})

test('a node that stops hands its entries to its successors: nothing is lost', async (t) => {
  const nodes = await threeNodeRing(t)
  await nodes[0].putMany(KEYS.map((key) => [key, key] as const))
  const leaving = nodes[1]
  t.true(leaving.getStats().keys > 0)
  await leaving.stop()
  const rest = [nodes[0], nodes[2]]
  t.is(rest[0].getStats().keys + rest[1].getStats().keys, KEYS.length)
  for (const key of KEYS) t.is(await rest[KEYS.indexOf(key) % 2].get(key), key)
  await until(() => ringIsConsistent(views(rest)))
  t.pass()
})

test('reads routed by a warm cache that still names a node that left reach the new owner', async (t) => {
  const nodes = await threeNodeRing(t)
  await nodes[0].putMany(KEYS.map((key) => [key, key] as const))
  await nodes[2].getMany(KEYS)
  await nodes[1].stop()
  // Straight away, before stabilization could tell nodes[2] anything.
  t.deepEqual(await nodes[2].getMany(KEYS), KEYS)
  for (const key of KEYS.slice(0, 50)) t.is(await nodes[2].get(key), key)
})

test('a federated round started before any stabilization still reaches a node that just joined', async (t) => {
  // No stabilization during the test: the joiner's vnodes are their successors' predecessors, and
  // no vnode names them as its successor yet.
  const first = node(null, 60)
  await first.start()
  t.teardown(() => first.stop())
  await first.putMany(KEYS.map((key) => [key, key] as const))
  const joiner = node((first.getRoutingTableStats().multiaddrs as string[])[0], 60)
  await joiner.start()
  t.teardown(() => joiner.stop())
  t.true(joiner.getStats().keys > 0, 'the joiner took over entries')

  const round = await first.retrainModel({ force: true })
  t.is(round.contributors, 2)
  t.is(joiner.learnedHash.version, round.modelVersion)
})

test('with the default 30 s stabilization, successor lists and replicas follow joins within seconds', async (t) => {
  const members: LeadNode[] = []
  t.teardown(() => Promise.all(members.map((member) => member.stop())).then(() => {}))
  const start = async (bootstrapPeer: string | null) => {
    const member = new LeadNode(
      { ip: '127.0.0.1', basePort: 0, bootstrapPeer, autoRetrain: false, replicationFactor: 3 },
      { router: chordRouter({ callTimeout: 2000 }) },
    )
    members.push(member)
    await member.start()
  }
  await start(null)
  const bootstrap = (members[0].getRoutingTableStats().multiaddrs as string[])[0]
  await start(bootstrap)
  await start(bootstrap)
  await until(() => successorListsComplete(views(members)), 10_000)
  // Three peers and three copies: every entry on every peer once the last copy has landed.
  await members[2].putMany(KEYS.map((key) => [key, key] as const))
  await until(() => members.every((member) => member.getStats().keys === KEYS.length), 10_000)
  // A graceful leave hands nothing to lose; the others still read every key.
  await members[0].stop()
  t.deepEqual(await members[1].getMany(KEYS), KEYS)
  t.deepEqual(await members[2].getMany(KEYS), KEYS)
})
