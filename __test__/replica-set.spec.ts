// Replica sets and write quorums without a network: which peers hold a position (the owner and the
// next distinct peers, wrapping round the ring), and when a write with failing replicas is acknowledged.

import test from 'ava'
import type { HintInit } from '../ts/replication/hints.js'
import { distinctPeers, ReplicaMap } from '../ts/replication/replica-set.js'
import { Replicator } from '../ts/replication/replicator.js'
import { QuorumNotReachedError } from '../ts/shared/errors.js'
import type { VnodeRef } from '../ts/shared/router.js'

const vnode = (peerId: string, id: bigint): VnodeRef => ({ peerId, vnodeId: 0, id, multiaddrs: [] })

// Ring order: a@10 a@20 b@30 a@40 c@50 b@60 d@70
const RING = [
  vnode('a', 10n),
  vnode('a', 20n),
  vnode('b', 30n),
  vnode('a', 40n),
  vnode('c', 50n),
  vnode('b', 60n),
  vnode('d', 70n),
]

const peersOf = (vnodes: VnodeRef[]) => vnodes.map((replica) => replica.peerId)

test('the replicas of a position are its owner and the next distinct peers, wrapping round the ring', (t) => {
  const map = new ReplicaMap([...RING].reverse(), 3)
  t.deepEqual(peersOf(map.replicasOf(15n)), ['a', 'b', 'c'], 'vnodes of the owner peer are skipped')
  t.deepEqual(peersOf(map.replicasOf(55n)), ['b', 'd', 'a'])
  t.deepEqual(peersOf(map.replicasOf(65n)), ['d', 'a', 'b'], 'the list wraps past the last vnode')
  t.deepEqual(peersOf(map.replicasOf(75n)), ['a', 'b', 'c'], 'past the last vnode the first one owns')
  t.deepEqual(map.replicasOf(30n)[0].id, 30n, 'a vnode owns its own id')
  t.true(map.holds('c', 15n))
  t.false(map.holds('d', 15n))
  t.deepEqual(
    peersOf(new ReplicaMap(RING, 9).replicasOf(0n)),
    ['a', 'b', 'c', 'd'],
    'at most every peer once',
  )
  t.deepEqual(peersOf(distinctPeers(RING, 2, 'a')), ['b', 'c'], 'this peer is never its own replica')
})

test('the segments of a range name the replicas of each piece and cover it exactly', (t) => {
  const map = new ReplicaMap(RING, 2)
  const segments = map.segments(15n, 65n)
  t.deepEqual(
    segments.map(({ hashMin, hashMax, replicas }) => [hashMin, hashMax, ...peersOf(replicas)]),
    [
      [15n, 20n, 'a', 'b'],
      [21n, 30n, 'b', 'a'],
      [31n, 40n, 'a', 'c'],
      [41n, 50n, 'c', 'b'],
      [51n, 60n, 'b', 'd'],
      [61n, 65n, 'd', 'a'],
    ],
  )
  t.deepEqual(
    map.segments(71n, 99n).map(({ hashMin, hashMax }) => [hashMin, hashMax]),
    [[71n, 99n]],
  )
})

/** A replicator whose sends to the peers in `failing` fail (a fault-injecting transport). */
function replicator(
  writeQuorum: number,
  failing: Set<string>,
  hints?: Partial<HintInit>,
): { replicator: Replicator; sent: string[] } {
  const sent: string[] = []
  return {
    sent,
    replicator: new Replicator({
      writeQuorum,
      hints,
      send: async (replica) => {
        await new Promise((resolve) => setTimeout(resolve, 1))
        if (failing.has(replica.peerId)) throw new Error(`${replica.peerId} is down`)
        sent.push(replica.peerId)
      },
    }),
  }
}

const records = [{ key: 'k', value: new Uint8Array(1), position: 1n }]

test('a write is acknowledged once the write quorum stored it, the owner included', async (t) => {
  const replicas = [vnode('b', 1n), vnode('c', 2n)]
  await t.notThrowsAsync(replicator(2, new Set(['b'])).replicator.replicate([{ replicas, records }]))
  await t.throwsAsync(replicator(2, new Set(['b', 'c'])).replicator.replicate([{ replicas, records }]), {
    instanceOf: QuorumNotReachedError,
  })
  await t.throwsAsync(replicator(3, new Set(['c'])).replicator.replicate([{ replicas, records }]), {
    instanceOf: QuorumNotReachedError,
  })
  const all = replicator(3, new Set())
  await all.replicator.replicate([{ replicas, records }])
  t.deepEqual(all.sent.sort(), ['b', 'c'])
  t.is(all.replicator.stats.replicatedRecords, 2)
  // A ring with fewer peers than the quorum asks for every replica there is, and no more.
  await t.notThrowsAsync(
    replicator(3, new Set()).replicator.replicate([{ replicas: [vnode('b', 1n)], records }]),
  )
  await t.notThrowsAsync(replicator(2, new Set()).replicator.replicate([{ replicas: [], records }]))
})

test('records of groups that share a replica travel to it in one message', async (t) => {
  const { replicator: sending, sent } = replicator(2, new Set())
  const other = [{ key: 'l', value: new Uint8Array(1), position: 5n }]
  await sending.replicate([
    { replicas: [vnode('b', 1n), vnode('c', 2n)], records },
    { replicas: [vnode('c', 2n), vnode('d', 3n)], records: other },
  ])
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.deepEqual(sent.sort(), ['b', 'c', 'd'])
  t.is(sending.stats.replicatedRecords, 4)
})

test('a replica that was down gets the writes it missed when it answers again (hinted hand-off)', async (t) => {
  const down = new Set(['c'])
  const { replicator: sending, sent } = replicator(2, down)
  const replicas = [vnode('b', 1n), vnode('c', 2n)]
  await sending.replicate([{ replicas, records }])
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.like(sending.stats, { failedSends: 1, hints: { held: 1, replicas: 1, delivered: 0 } })
  await sending.deliverHints(AbortSignal.timeout(1000))
  t.like(sending.stats.hints, { held: 1, delivered: 0 }, 'kept while the replica does not answer')
  down.clear()
  await sending.deliverHints(AbortSignal.timeout(1000))
  t.like(sending.stats.hints, { held: 0, heldBytes: 0, replicas: 0, delivered: 1, dropped: 0 })
  t.deepEqual(sent.sort(), ['b', 'c'])
})

test('hints are bounded in bytes and in age', async (t) => {
  const big = [{ key: 'k', value: new Uint8Array(1000), position: 1n }]
  const replicas = [vnode('b', 1n), vnode('c', 2n)]
  const bySize = replicator(2, new Set(['c']), { maxBytes: 1500 }).replicator
  await bySize.replicate([{ replicas, records: big }])
  await bySize.replicate([{ replicas, records: big }])
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.like(bySize.stats.hints, { held: 1, dropped: 1 }, 'the oldest hint makes room for the newest')
  const byAge = replicator(2, new Set(['c']), { maxAgeMs: 0 }).replicator
  await byAge.replicate([{ replicas, records }])
  await new Promise((resolve) => setTimeout(resolve, 20))
  await byAge.deliverHints(AbortSignal.timeout(1000))
  t.like(byAge.stats.hints, { held: 0, replicas: 0, dropped: 1 })
})
