// Chord routing logic in one process: rings of 1-200 vnodes built by joins and stabilization,
// checked against the sorted list of ids (ownership, successors, lookups, range walks, failures).

import test from 'ava'
import {
  ArcMap,
  advance,
  type ChordRemote,
  ChordVnode,
  clockwiseDistance,
  fingerStart,
  inHalfOpenArc,
  inOpenArc,
  inRange,
  JoinFailedError,
  type NodeRef,
  rangeWalk,
} from '../ts/chord/index.js'
import { seededRandom } from './helpers/datasets.js'

const SIZE = 2n ** 62n

function randomPosition(random: () => number, size = SIZE): bigint {
  return (BigInt(Math.floor(random() * 2 ** 31)) * size) / 2n ** 31n + BigInt(Math.floor(random() * 1000))
}

/** A ring of vnodes calling each other directly; `dead` vnodes throw like an unreachable peer. */
class Ring {
  readonly vnodes = new Map<bigint, ChordVnode<NodeRef>>()
  readonly dead = new Set<bigint>()
  messages = 0
  readonly remote: ChordRemote<NodeRef> = {
    step: async (target, position, avoid) => this.#reach(target).step(position, avoid),
    neighbours: async (target) => this.#reach(target).neighbours(),
    notify: async (target, candidate) => this.#reach(target).notify(candidate),
    ping: async (target) => {
      this.#reach(target)
    },
  }

  #reach(target: NodeRef): ChordVnode<NodeRef> {
    this.messages++
    const vnode = this.vnodes.get(target.id)
    if (vnode === undefined || this.dead.has(target.id)) throw new Error(`vnode ${target.id} is unreachable`)
    return vnode
  }

  alive(): ChordVnode<NodeRef>[] {
    return [...this.vnodes.values()].filter((vnode) => !this.dead.has(vnode.self.id))
  }

  sortedAliveIds(): bigint[] {
    return this.alive()
      .map((vnode) => vnode.self.id)
      .sort((a, b) => (a < b ? -1 : 1))
  }

  async add(id: bigint): Promise<void> {
    const vnode = new ChordVnode<NodeRef>({ id }, { hashSpaceSize: SIZE })
    const via = this.alive()[0]
    this.vnodes.set(id, vnode)
    if (via === undefined) return
    for (let attempt = 0; ; attempt++) {
      try {
        await vnode.join(this.remote, via.self)
        return
      } catch (err) {
        if (!(err instanceof JoinFailedError) || attempt > 5) throw err
        await this.stabilizeRound()
      }
    }
  }

  async stabilizeRound(): Promise<void> {
    for (const vnode of this.alive()) await vnode.checkPredecessor(this.remote)
    for (const vnode of this.alive()) await vnode.stabilize(this.remote)
  }

  async fixFingers(): Promise<void> {
    for (const vnode of this.alive()) await vnode.fixFingers(this.remote)
  }

  consistent(): boolean {
    const ids = this.sortedAliveIds()
    return ids.every((id, i) => {
      const vnode = this.vnodes.get(id) as ChordVnode<NodeRef>
      return (
        vnode.successor.id === ids[(i + 1) % ids.length] &&
        vnode.predecessor?.id === ids.at(i - 1) &&
        vnode.arcStart === ids.at(i - 1)
      )
    })
  }

  async stabilizeUntilConsistent(maxRounds = 60): Promise<number> {
    for (let round = 0; round < maxRounds; round++) {
      if (this.consistent()) return round
      await this.stabilizeRound()
    }
    throw new Error('ring did not stabilize')
  }

  /** Brute force: the first alive id at or after the position, wrapping. */
  owner(position: bigint): bigint {
    const ids = this.sortedAliveIds()
    return ids.find((id) => id >= position) ?? ids[0]
  }
}

async function buildRing(count: number, seed: number): Promise<Ring> {
  const random = seededRandom(seed)
  const ring = new Ring()
  for (let i = 0; i < count; i++) {
    await ring.add(randomPosition(random))
    await ring.stabilizeRound()
  }
  await ring.stabilizeUntilConsistent()
  for (let round = 0; round < 8; round++) await ring.stabilizeRound()
  await ring.fixFingers()
  return ring
}

test('arcs wrap past zero and coinciding ends cover the ring', (t) => {
  t.true(inHalfOpenArc(5n, 3n, 5n))
  t.false(inHalfOpenArc(3n, 3n, 5n))
  t.true(inHalfOpenArc(1n, 90n, 2n))
  t.true(inHalfOpenArc(95n, 90n, 2n))
  t.false(inHalfOpenArc(50n, 90n, 2n))
  t.true(inHalfOpenArc(7n, 4n, 4n))
  t.true(inOpenArc(7n, 4n, 4n))
  t.false(inOpenArc(4n, 4n, 4n))
  t.false(inOpenArc(2n, 90n, 2n))
  t.true(inRange(0n, 90n, 2n))
  t.true(inRange(2n, 2n, 2n))
  t.false(inRange(50n, 90n, 2n))
  t.is(clockwiseDistance(90n, 2n, 100n), 12n)
  t.is(advance(99n, 3n, 100n), 2n)
  t.is(fingerStart(SIZE - 1n, 0, SIZE), 0n)
  t.is(fingerStart(0n, 61, SIZE), 2n ** 61n)
})

test('a lone vnode owns the whole ring and answers every lookup itself', async (t) => {
  const ring = await buildRing(1, 1)
  const [vnode] = ring.alive()
  t.true(vnode.owns(0n) && vnode.owns(SIZE - 1n))
  t.deepEqual(await vnode.lookup(ring.remote, 12345n), {
    owner: vnode.self,
    arcStart: vnode.self.id,
    hops: 0,
  })
})

for (const count of [2, 3, 10, 50, 200]) {
  test(`a ring of ${count} vnodes built by joins: consistent, partitioned, lookups correct`, async (t) => {
    const ring = await buildRing(count, count)
    t.true(ring.consistent())
    const random = seededRandom(1000 + count)
    const vnodes = ring.alive()
    let hops = 0
    const lookups = 200
    for (let i = 0; i < lookups; i++) {
      const position = randomPosition(random)
      const owners = vnodes.filter((vnode) => vnode.owns(position))
      t.is(owners.length, 1, 'each position is owned by exactly one vnode')
      t.is(owners[0].self.id, ring.owner(position))
      const from = vnodes[Math.floor(random() * vnodes.length)]
      const result = await from.lookup(ring.remote, position)
      t.is(result.owner.id, ring.owner(position))
      hops += result.hops
    }
    const meanHops = hops / lookups
    t.true(meanHops <= Math.max(1, Math.log2(count)), `mean hops ${meanHops} for ${count} vnodes`)
    for (const vnode of vnodes) t.is(vnode.successors.length, Math.min(count - 1, 8) || 1)
  })
}

test('vnodes joining into the same arc before any stabilization all find their place', async (t) => {
  const ring = new Ring()
  await ring.add(1000n)
  await ring.add(5000n)
  for (const id of [4000n, 2000n, 3000n, 4500n, 1500n]) await ring.add(id)
  await ring.stabilizeUntilConsistent()
  t.true(ring.consistent())
})

test('notify hands over the sub-arc the new predecessor now owns', (t) => {
  const vnode = new ChordVnode<NodeRef>({ id: 100n }, { hashSpaceSize: 1000n })
  t.deepEqual(vnode.notify({ id: 40n }).handedOver, { from: 100n, to: 40n })
  t.deepEqual(vnode.notify({ id: 70n }).handedOver, { from: 40n, to: 70n })
  t.false(vnode.notify({ id: 50n }).accepted)
  const repeat = vnode.notify({ id: 70n })
  t.true(repeat.accepted)
  t.is(repeat.handedOver, null)
  t.true(vnode.owns(100n) && vnode.owns(71n) && !vnode.owns(70n))
})

test('a join whose notify answer was lost succeeds when the successor answers the repeat alike', async (t) => {
  const ring = new Ring()
  for (const id of [1000n, 5000n, 9000n]) await ring.add(id)
  await ring.stabilizeUntilConsistent()
  // The successor accepts the joiner, but the answer never arrives; a repeat gets the first outcome
  // again (what the router's pending hand-over does).
  const delivered = new Map<bigint, Awaited<ReturnType<ChordRemote<NodeRef>['notify']>>>()
  let lost = 0
  const lossy: ChordRemote<NodeRef> = {
    ...ring.remote,
    notify: async (target, candidate) => {
      const first = delivered.get(candidate.id)
      if (first !== undefined) return first
      const outcome = await ring.remote.notify(target, candidate)
      if (outcome.accepted && lost++ === 0) {
        delivered.set(candidate.id, outcome)
        throw new Error('the answer was lost')
      }
      return outcome
    },
  }
  const joiner = new ChordVnode<NodeRef>({ id: 3000n }, { hashSpaceSize: SIZE })
  ring.vnodes.set(3000n, joiner)
  await t.throwsAsync(joiner.join(lossy, { id: 1000n }), { message: 'the answer was lost' })
  await joiner.join(lossy, { id: 1000n })
  t.is(joiner.predecessor?.id, 1000n)
  t.is(joiner.arcStart, 1000n)
  t.is(joiner.successor.id, 5000n)
  await ring.stabilizeUntilConsistent()
  t.true(ring.consistent())
})

test('a joiner whose acceptance is still on its way takes no arc from the predecessor that found it', async (t) => {
  const ring = new Ring()
  for (const id of [1000n, 5000n, 9000n]) await ring.add(id)
  await ring.stabilizeUntilConsistent()
  // The successor accepts the joiner; before its answer (with the entries) arrives, the
  // predecessor's stabilization sees the joiner and notifies it.
  const joiner = new ChordVnode<NodeRef>({ id: 3000n }, { hashSpaceSize: SIZE })
  ring.vnodes.set(3000n, joiner)
  const predecessor = ring.vnodes.get(1000n) as ChordVnode<NodeRef>
  let early: ReturnType<ChordVnode<NodeRef>['notify']> | undefined
  let onRingMeanwhile: boolean | undefined
  const slow: ChordRemote<NodeRef> = {
    ...ring.remote,
    notify: async (target, candidate) => {
      const outcome = await ring.remote.notify(target, candidate)
      if (candidate.id === 3000n) {
        await predecessor.stabilize(ring.remote)
        early = joiner.notify(predecessor.self)
        onRingMeanwhile = joiner.onRing
      }
      return outcome
    },
  }
  await joiner.join(slow, { id: 1000n })
  t.false(onRingMeanwhile)
  t.is(early?.accepted, false)
  t.is(early?.handedOver, null)
  t.true(joiner.onRing)
  t.is(joiner.arcStart, 1000n)
  await ring.stabilizeUntilConsistent()
  t.true(ring.consistent())
})

test('a vnode cannot join at an id another vnode has', async (t) => {
  const ring = new Ring()
  for (const id of [1000n, 5000n]) await ring.add(id)
  await ring.stabilizeUntilConsistent()
  const twin = new ChordVnode<NodeRef>({ id: 5000n }, { hashSpaceSize: SIZE })
  await t.throwsAsync(twin.join(ring.remote, { id: 1000n }), { instanceOf: JoinFailedError })
  const other = new ChordVnode<NodeRef>({ id: 1000n }, { hashSpaceSize: SIZE })
  await t.throwsAsync(other.join(ring.remote, { id: 5000n }), { instanceOf: JoinFailedError })
})

test('after a fifth of the vnodes fail, the survivors re-stabilize and lookups stay correct', async (t) => {
  const ring = await buildRing(60, 7)
  const random = seededRandom(8)
  for (const vnode of ring.alive()) if (random() < 0.2) ring.dead.add(vnode.self.id)
  await ring.stabilizeUntilConsistent()
  await ring.fixFingers()
  const vnodes = ring.alive()
  for (let i = 0; i < 100; i++) {
    const position = randomPosition(random)
    t.is(vnodes.filter((vnode) => vnode.owns(position)).length, 1)
    const result = await vnodes[i % vnodes.length].lookup(ring.remote, position)
    t.is(result.owner.id, ring.owner(position))
  }
})

test('an arc does not grow past a predecessor that only missed a ping', async (t) => {
  const ring = await buildRing(8, 13)
  const ids = ring.sortedAliveIds()
  const [before, predecessor, vnode] = [ids[2], ids[3], ids[4]].map(
    (id) => ring.vnodes.get(id) as ChordVnode<NodeRef>,
  )
  // A timeout makes the peer forget its predecessor; a vnode further back (its successor list
  // stale) notifies: accepting would claim the arc the predecessor still holds.
  vnode.forget((node) => node.id === predecessor.self.id)
  t.is(vnode.predecessor, null)
  const refused = vnode.notify(before.self)
  t.false(refused.accepted)
  t.is(refused.previousPredecessor?.id, predecessor.self.id)
  t.is(vnode.arcStart, predecessor.self.id)
  await vnode.checkPredecessor(ring.remote)
  t.is(vnode.predecessor?.id, predecessor.self.id, 'the predecessor answered: restored')

  // Really gone: the second failed ping settles it and the arc may grow.
  ring.dead.add(predecessor.self.id)
  await vnode.checkPredecessor(ring.remote)
  t.false(vnode.notify(before.self).accepted)
  await vnode.checkPredecessor(ring.remote)
  t.true(vnode.notify(before.self).accepted)
  t.is(vnode.arcStart, before.self.id)
})
test('lookups route around failed vnodes before the ring repairs itself', async (t) => {
  const ring = await buildRing(40, 9)
  const random = seededRandom(10)
  for (const vnode of ring.alive()) if (random() < 0.1) ring.dead.add(vnode.self.id)
  const vnodes = ring.alive()
  let correct = 0
  for (let i = 0; i < 100; i++) {
    const position = randomPosition(random)
    const result = await vnodes[i % vnodes.length].lookup(ring.remote, position).catch(() => undefined)
    if (result !== undefined && !ring.dead.has(result.owner.id)) correct++
  }
  t.true(correct >= 80, `${correct}/100 lookups reached a live node`)
})

test('a vnode joining where a dead vnode was never owns positions another vnode owns', async (t) => {
  const ring = new Ring()
  for (const id of [1000n, 5000n, 9000n]) await ring.add(id)
  await ring.stabilizeUntilConsistent()
  ring.dead.add(5000n)
  const [first, , last] = [1000n, 5000n, 9000n].map((id) => ring.vnodes.get(id) as ChordVnode<NodeRef>)
  // 9000 settles that 5000 is gone and 1000 skips it, but 1000 has not notified 9000 yet.
  await last.checkPredecessor(ring.remote)
  await last.checkPredecessor(ring.remote)
  first.forget((node) => node.id === 5000n)
  const joiner = new ChordVnode<NodeRef>({ id: 3000n }, { hashSpaceSize: SIZE })
  ring.vnodes.set(3000n, joiner)
  await joiner.join(ring.remote, last.self)
  t.is(joiner.successor.id, 9000n)
  const owners = (position: bigint) => ring.alive().filter((vnode) => vnode.owns(position)).length
  for (const position of [500n, 2000n, 3000n, 4000n, 9500n])
    t.true(owners(position) <= 1, `owners of ${position}`)
  await ring.stabilizeUntilConsistent()
  for (const position of [500n, 2000n, 3000n, 4000n, 9500n]) t.is(owners(position), 1)
  t.is(joiner.arcStart, 1000n)
})

test('graceful leave: the successor takes the arc, the predecessor skips the leaver', async (t) => {
  const ring = await buildRing(12, 11)
  const ids = ring.sortedAliveIds()
  const leaving = ring.vnodes.get(ids[5]) as ChordVnode<NodeRef>
  const successor = ring.vnodes.get(ids[6]) as ChordVnode<NodeRef>
  const predecessor = ring.vnodes.get(ids[4]) as ChordVnode<NodeRef>
  successor.predecessorLeft(leaving.self, leaving.predecessor, leaving.arcStart)
  predecessor.successorLeft(leaving.self, leaving.successors)
  ring.dead.add(leaving.self.id)
  t.true(ring.consistent())
  t.true(successor.owns(ids[5]))
})

test('the last two vnodes: when one leaves the other owns the ring again', async (t) => {
  const ring = await buildRing(2, 12)
  const [a, b] = ring.alive()
  b.predecessorLeft(a.self, a.predecessor, a.arcStart)
  b.successorLeft(a.self, a.successors)
  t.is(b.successor.id, b.self.id)
  t.true(b.owns(0n) && b.owns(SIZE - 1n))
})

test('an arc map finds owners and evicts arcs a newer one contradicts', (t) => {
  const ring = ArcMap.ofRing([{ id: 300n }, { id: 100n }, { id: 700n }])
  t.is(ring.find(50n)?.owner.id, 100n)
  t.is(ring.find(100n)?.owner.id, 100n)
  t.is(ring.find(101n)?.owner.id, 300n)
  t.is(ring.find(800n)?.owner.id, 100n)
  t.is(ring.find(800n)?.start, 700n)
  const cache = new ArcMap<NodeRef>()
  t.is(cache.find(5n), undefined)
  cache.add(100n, { id: 300n })
  cache.add(300n, { id: 700n })
  t.is(cache.find(200n)?.owner.id, 300n)
  t.is(cache.find(50n), undefined)
  cache.add(200n, { id: 300n })
  t.is(cache.find(150n), undefined, 'the shrunk arc replaced the old one')
  cache.add(250n, { id: 260n })
  t.is(cache.find(300n), undefined, 'an arc that overlaps a newer one is dropped')
  t.is(cache.find(500n)?.owner.id, 700n)
  cache.removeWhere((owner) => owner.id === 700n)
  t.is(cache.size, 1)
})

test('the range walk visits exactly the owners of a range, in ring order, wrapping', (t) => {
  const size = 10_000n
  const random = seededRandom(13)
  const ids = Array.from({ length: 30 }, () => BigInt(Math.floor(random() * 10_000)))
  const unique = [...new Set(ids)].sort((a, b) => (a < b ? -1 : 1))
  const ring = ArcMap.ofRing(unique.map((id) => ({ id })))
  const owner = (p: bigint) => unique.find((id) => id >= p) ?? unique[0]
  for (let i = 0; i < 300; i++) {
    const low = BigInt(Math.floor(random() * 10_000))
    const high = BigInt(Math.floor(random() * 10_000))
    const walk = rangeWalk(low, high, (p) => ring.find(p), size)
    t.is(walk.unknownFrom, undefined)
    const covered: bigint[] = []
    for (const segment of walk.segments) {
      t.is(owner(segment.hashMin), segment.owner.id)
      t.is(owner(segment.hashMax), segment.owner.id)
      covered.push(clockwiseDistance(segment.hashMin, segment.hashMax, size) + 1n)
    }
    t.is(
      covered.reduce((a, b) => a + b, 0n),
      clockwiseDistance(low, high, size) + 1n,
    )
    for (let s = 1; s < walk.segments.length; s++) {
      t.is(walk.segments[s].hashMin, advance(walk.segments[s - 1].hashMax, 1n, size))
    }
  }
  const whole = rangeWalk(5n, 4n, (p) => ring.find(p), size)
  t.is(whole.segments.length, unique.length + 1, 'a full-ring range revisits the first owner once')
  const partial = new ArcMap<NodeRef>()
  partial.add(unique[0], { id: unique[1] })
  const gap = rangeWalk(unique[0] + 1n, unique[3], (p) => partial.find(p), size)
  t.is(gap.segments.length, 1)
  t.is(gap.unknownFrom, unique[1] + 1n)
})
