// What the simulator measures on a built ring for one placement scheme and key set: load per peer,
// lookup hops (cold and with a warm routing cache), range-query cost, and lookups under churn.

import { ArcMap, LookupFailedError } from '../ts/chord/index.js'
import type { KeySet, PlacementScheme } from './placement.js'
import type { SimRing, SimVnodeRef, Traffic } from './ring.js'

/** A seeded source of uniform numbers in [0, 1). */
export type Random = () => number

/** Keys per physical node relative to the mean. */
export interface LoadSummary {
  keys: number
  maxOverMean: number
  p99OverMean: number
  minOverMean: number
  /** Most keys sharing one ring position (equal keys, or keys a model maps alike): no placement can split them. */
  maxKeysAtOnePosition: number
  /**
   * The max/mean no vnode placement can beat on these positions: the peer holding the fullest position
   * holds at least its keys, so `maxKeysAtOnePosition / mean`, and never below 1.
   */
  lowerBound: number
  /** Peer loads / mean, sorted ascending, at 101 evenly spaced ranks (for plots). */
  sortedLoadCurve: number[]
}

export interface HopSummary {
  lookups: number
  meanHops: number
  p99Hops: number
  /** Lookups whose owner differed from the brute-force owner (0 on a converged ring). */
  wrongOwners: number
}

export interface RangeSummary {
  /** Keys in each query. */
  rangeKeys: number
  queries: number
  meanMessages: number
  meanRoutingMessages: number
  meanPeersTouched: number
  meanOwners: number
}

export interface ChurnSummary {
  failedFraction: number
  lookups: number
  /** Share of lookups whose first answer was the position's live successor (its owner once the ring repairs). */
  firstTry: number
  /** Share that reached the live successor, retrying around each owner whose data call failed. */
  success: number
  /** Share that threw LookupFailedError (no live route) or ran out of retries. */
  failed: number
  /** Mean lookups per position, retries included. */
  meanAttempts: number
}

/**
 * Keys per peer for all of `keySet` under `scheme`, streamed in batches: each batch of positions is
 * sorted and swept against the sorted vnode ids, so 10M keys need one batch of memory.
 */
export function measureLoad(
  ring: SimRing,
  scheme: PlacementScheme,
  keySet: KeySet,
  batchSize = 1 << 20,
): LoadSummary {
  const perVnode = new Float64Array(ring.sortedIds.length)
  const fullest = new PositionRuns()
  for (let from = 0; from < keySet.keys.length; from += batchSize) {
    const positions = scheme.positions(keySet, from, Math.min(keySet.keys.length, from + batchSize)).sort()
    let vnode = 0
    for (const position of positions) {
      while (vnode < ring.sortedIds.length && ring.sortedIds[vnode] < position) vnode++
      perVnode[vnode === ring.sortedIds.length ? 0 : vnode]++
      fullest.add(position)
    }
  }
  const perPeer = new Float64Array(ring.peerCount)
  ring.vnodes.forEach((vnode, i) => {
    perPeer[vnode.self.peer] += perVnode[i]
  })
  const summary = summarizeLoad(perPeer)
  const mean = summary.keys / ring.peerCount
  return {
    ...summary,
    maxKeysAtOnePosition: fullest.max,
    lowerBound: Math.max(1, fullest.max / mean),
  }
}

/**
 * The longest run of equal values (positions, or keys) in a stream of sorted batches. A run continues
 * across a batch boundary, so the count is exact when the batches are in order (sorted keys under an
 * order-preserving scheme, or one batch); otherwise a run split between batches counts as two.
 */
export class PositionRuns {
  max = 0
  private run = 0
  private last: bigint | number | undefined

  add(position: bigint | number): void {
    this.run = position === this.last ? this.run + 1 : 1
    this.last = position
    if (this.run > this.max) this.max = this.run
  }
}

/** Max, p99 and min of peer loads over their mean, and the sorted load curve. */
export function summarizeLoad(
  perPeer: Float64Array,
): Omit<LoadSummary, 'maxKeysAtOnePosition' | 'lowerBound'> {
  const sortedLoads = perPeer.slice().sort()
  const keys = sortedLoads.reduce((sum, load) => sum + load, 0)
  const mean = keys / sortedLoads.length
  const at = (fraction: number) =>
    sortedLoads[Math.min(sortedLoads.length - 1, Math.ceil(fraction * sortedLoads.length) - 1)]
  return {
    keys,
    maxOverMean: sortedLoads[sortedLoads.length - 1] / mean,
    p99OverMean: at(0.99) / mean,
    minOverMean: sortedLoads[0] / mean,
    sortedLoadCurve: Array.from({ length: 101 }, (_, i) =>
      round(at(Math.max(i / 100, 1 / sortedLoads.length)) / mean),
    ),
  }
}

/** `count` keys of `keySet` drawn at random, with their positions under `scheme`. */
export function samplePositions(
  scheme: PlacementScheme,
  keySet: KeySet,
  count: number,
  random: Random,
): bigint[] {
  return Array.from({ length: count }, () => {
    const index = Math.floor(random() * keySet.keys.length)
    return scheme.positions(keySet, index, index + 1)[0]
  })
}

/** Cold lookups: each from a random peer with an empty routing cache, checked against the brute-force owner. */
export async function measureLookups(
  ring: SimRing,
  positions: readonly bigint[],
  random: Random,
): Promise<HopSummary> {
  const hops: number[] = []
  let wrongOwners = 0
  for (const position of positions) {
    const found = await ring.lookup(Math.floor(random() * ring.peerCount), position)
    hops.push(found.hops)
    if (found.owner.id !== ring.ownerOf(position).id) wrongOwners++
  }
  return summarizeHops(hops, wrongOwners)
}

/**
 * Lookups with a warm routing cache: each of `origins` peers first looks up `warmup` positions
 * (filling its cache as the live router does), then the measured ones.
 */
export async function measureWarmLookups(
  ring: SimRing,
  positions: readonly bigint[],
  options: { origins: number; warmup: number; random: Random },
): Promise<HopSummary & { warmupLookups: number }> {
  const { origins, warmup, random } = options
  const hops: number[] = []
  let wrongOwners = 0
  const perOrigin = Math.floor(positions.length / (origins * (warmup + 1)))
  let next = 0
  for (let o = 0; o < origins; o++) {
    const origin = Math.floor(random() * ring.peerCount)
    const cache = new ArcMap<SimVnodeRef>(ARC_CACHE_CAPACITY)
    for (let i = 0; i < perOrigin * warmup; i++) await ring.lookup(origin, positions[next++], { cache })
    for (let i = 0; i < perOrigin; i++) {
      const position = positions[next++]
      const found = await ring.lookup(origin, position, { cache })
      hops.push(found.hops)
      if (found.owner.id !== ring.ownerOf(position).id) wrongOwners++
    }
  }
  return { ...summarizeHops(hops, wrongOwners), warmupLookups: perOrigin * warmup }
}

/** The live router's routing-cache capacity (ArcMap's default). */
const ARC_CACHE_CAPACITY = new ArcMap().capacity

/**
 * Range queries of `rangeKeys` consecutive keys (in key order) from random peers. Order-preserving
 * schemes walk the arc `scheme.rangeArc(lowKey, highKey)`; hashing looks every key up and gets it
 * (one lookup and one get per key, each lookup from an empty cache).
 */
export async function measureRangeQueries(
  ring: SimRing,
  scheme: PlacementScheme,
  sortedKeySet: KeySet,
  options: { rangeKeys: number; queries: number; random: Random },
): Promise<RangeSummary> {
  const { rangeKeys, queries, random } = options
  const totals = { messages: 0, routingMessages: 0, peersTouched: 0, owners: 0 }
  const keys = sortedKeySet.keys
  for (let q = 0; q < queries; q++) {
    const origin = Math.floor(random() * ring.peerCount)
    const first = Math.floor(random() * (keys.length - rangeKeys + 1))
    const arc = scheme.rangeArc(keys[first], keys[first + rangeKeys - 1])
    const cost =
      arc === null
        ? await perKeyLookups(ring, scheme.positions(sortedKeySet, first, first + rangeKeys), origin)
        : await ring.rangeQuery(origin, [[arc.hashMin, arc.hashMax]])
    totals.messages += cost.messages
    totals.routingMessages += cost.routingMessages
    totals.peersTouched += cost.peersTouched
    totals.owners += cost.owners
  }
  return {
    rangeKeys,
    queries,
    meanMessages: totals.messages / queries,
    meanRoutingMessages: totals.routingMessages / queries,
    meanPeersTouched: totals.peersTouched / queries,
    meanOwners: totals.owners / queries,
  }
}

/** The hashing baseline of a range or box query: one lookup and one get per key. */
export async function perKeyLookups(
  ring: SimRing,
  positions: BigUint64Array,
  origin: number,
): Promise<{ messages: number; routingMessages: number; peersTouched: number; owners: number }> {
  const traffic: Traffic = { messages: 0, peers: new Set() }
  const owners = new Set<bigint>()
  let gets = 0
  for (const position of positions) {
    const { owner } = await ring.lookup(origin, position, { traffic })
    owners.add(owner.id)
    if (owner.peer !== origin) {
      gets++
      traffic.peers.add(owner.peer)
    }
  }
  return {
    messages: traffic.messages + gets,
    routingMessages: traffic.messages,
    peersTouched: traffic.peers.size,
    owners: owners.size,
  }
}

/**
 * Fails `failedFraction` of the peers at once (cumulative with earlier calls on the same ring) and
 * looks `positions` up from live peers before any repair: no stabilization, and origins do not
 * forget dead peers between lookups. When the named owner is down (its data call would fail), the
 * lookup is retried around it, at most `successorListLength` times: successor lists are the only redundancy.
 */
export async function measureChurn(
  ring: SimRing,
  positions: readonly bigint[],
  failedFraction: number,
  random: Random,
): Promise<ChurnSummary> {
  const alive = Array.from({ length: ring.peerCount }, (_, peer) => peer).filter(
    (peer) => !ring.isFailed(peer),
  )
  const toFail = Math.max(0, Math.round(failedFraction * ring.peerCount) - (ring.peerCount - alive.length))
  for (let i = 0; i < toFail; i++) {
    const pick = i + Math.floor(random() * (alive.length - i))
    ;[alive[i], alive[pick]] = [alive[pick], alive[i]]
  }
  ring.fail(alive.slice(0, toFail))
  const live = alive.slice(toFail)
  const maxAttempts = ring.vnodes[0].successorListLength
  let firstTry = 0
  let success = 0
  let attempts = 0
  for (const position of positions) {
    const origin = live[Math.floor(random() * live.length)]
    const expected = ring.ownerOf(position, true).id
    const knownDown = new Set<bigint>()
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      attempts++
      try {
        const { owner } = await ring.lookup(origin, position, { forgetUnreachable: false, avoid: knownDown })
        if (!ring.isFailed(owner.peer)) {
          if (owner.id === expected) {
            success++
            if (attempt === 1) firstTry++
          }
          break
        }
        knownDown.add(owner.id)
      } catch (err) {
        if (!(err instanceof LookupFailedError)) throw err
        break
      }
    }
  }
  const lookups = positions.length
  return {
    failedFraction,
    lookups,
    firstTry: round(firstTry / lookups),
    success: round(success / lookups),
    failed: round(1 - success / lookups),
    meanAttempts: round(attempts / lookups),
  }
}

function summarizeHops(hops: number[], wrongOwners: number): HopSummary {
  const sortedHops = hops.slice().sort((a, b) => a - b)
  return {
    lookups: hops.length,
    meanHops: round(hops.reduce((sum, h) => sum + h, 0) / Math.max(1, hops.length)),
    p99Hops: sortedHops[Math.max(0, Math.ceil(0.99 * sortedHops.length) - 1)] ?? 0,
    wrongOwners,
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000
}
