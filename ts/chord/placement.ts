// Where vnodes go so that every peer carries its share of the keys: ids for a joining peer, and a
// few vnode moves after a rollout. Pure and transport-free, driven by a profile of where keys lie.

import { InvalidArgumentError } from '../errors.js'
import { partitionPoint } from '../shared/partition-point.js'
import { advance, checkHashSpaceSize, checkPosition, clockwiseDistance, inOpenArc } from './ring.js'

/** A vnode on the ring: it owns the arc `(predecessor's id, id]` for its peer. */
export interface PlacedVnode {
  readonly id: bigint
  readonly peer: string
}

/** One vnode move: the vnode `from` of `peer` leaves and rejoins at `to`. */
export interface VnodeMove {
  readonly peer: string
  readonly from: bigint
  readonly to: bigint
}

/**
 * Where the keys lie on the ring: sorted positions, each standing for `keysPerPosition` keys: every
 * key's, every k-th of each vnode's sorted positions (weight k: exact to k keys per arc), or a
 * random sample's. Under a learned hash positions are near-uniform, but not exactly: duplicates
 * share a position and the model has its error, so placement reads the load off positions rather
 * than assuming it from arc lengths.
 */
export class LoadProfile {
  readonly hashSpaceSize: bigint
  readonly keysPerPosition: number
  readonly #positions: BigUint64Array

  private constructor(sortedPositions: BigUint64Array, hashSpaceSize: bigint, keysPerPosition: number) {
    this.#positions = sortedPositions
    this.hashSpaceSize = hashSpaceSize
    this.keysPerPosition = keysPerPosition
  }

  /**
   * A profile of `positions` (any order; copied), each worth `keysPerPosition` keys.
   * @throws InvalidArgumentError on a position outside the ring or a weight that is not positive
   */
  static fromPositions(
    positions: BigUint64Array | readonly bigint[],
    hashSpaceSize: bigint,
    keysPerPosition = 1,
  ): LoadProfile {
    checkHashSpaceSize(hashSpaceSize)
    if (!(Number.isFinite(keysPerPosition) && keysPerPosition > 0)) {
      throw new InvalidArgumentError(`keysPerPosition must be a positive number, got ${keysPerPosition}`)
    }
    const sorted = BigUint64Array.from(positions).sort()
    if (sorted.length > 0) checkPosition(sorted[sorted.length - 1], hashSpaceSize)
    return new LoadProfile(sorted, hashSpaceSize, keysPerPosition)
  }

  /** Keys on the whole ring. */
  get total(): number {
    return this.#positions.length * this.keysPerPosition
  }

  /** Keys on the arc `(from, to]`, wrapping past zero when `from >= to` (equal ends: the whole ring). */
  arcLoad(from: bigint, to: bigint): number {
    const below = (position: bigint) => this.#countAtMost(position)
    const count = from < to ? below(to) - below(from) : this.#positions.length - below(from) + below(to)
    return count * this.keysPerPosition
  }

  /**
   * The position `x` on the arc `(from, to]` whose arc `(from, x]` holds about `load` keys (rounded
   * to whole sample positions); `to` when the arc holds no more. A position shared by many keys is
   * never split: `(from, x]` holds all of them or none.
   */
  positionAfter(from: bigint, to: bigint, load: number): bigint {
    const positions = this.#positions
    const n = positions.length
    const steps = Math.round(load / this.keysPerPosition)
    if (steps <= 0) return from === to ? advance(from, 1n, this.hashSpaceSize) : from
    const start = this.#countAtMost(from)
    const available = Math.round(this.arcLoad(from, to) / this.keysPerPosition)
    if (steps >= available) return to
    return positions[(start + steps - 1) % n]
  }

  /**
   * The last sample position on the open arc `(from, to)`, `from` when there is none: where to cut
   * so that `(from, x]` stops short of the keys at `to`.
   */
  positionBefore(from: bigint, to: bigint): bigint {
    const positions = this.#positions
    const n = positions.length
    if (n === 0) return from
    const below = this.#countAtMost((to - 1n + this.hashSpaceSize) % this.hashSpaceSize)
    const candidate = positions[(below - 1 + n) % n]
    return inOpenArc(candidate, from, to) ? candidate : from
  }

  /** Number of sample positions `<= position`. */
  #countAtMost(position: bigint): number {
    return countAtMost(this.#positions, position)
  }
}

/** Number of entries `<= position` in an ascending array. */
function countAtMost(sorted: ArrayLike<bigint>, position: bigint): number {
  return partitionPoint(sorted.length, (i) => sorted[i] <= position)
}

/** The vnodes sorted by id, each with the arc it owns: `(previous id, id]`. */
function arcsOf(ring: readonly PlacedVnode[]): Array<PlacedVnode & { from: bigint }> {
  const sorted = [...ring].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  return sorted.map((vnode, i) => ({ ...vnode, from: sorted.at(i - 1)?.id ?? vnode.id }))
}

/** Keys each peer carries: the sum of its vnodes' arcs. */
export function peerLoads(ring: readonly PlacedVnode[], profile: LoadProfile): Map<string, number> {
  const loads = new Map<string, number>()
  for (const arc of arcsOf(ring)) {
    loads.set(arc.peer, (loads.get(arc.peer) ?? 0) + profile.arcLoad(arc.from, arc.id))
  }
  return loads
}

/** Largest over mean load per peer: 1 is perfect balance. An empty ring or profile gives 1. */
export function imbalance(ring: readonly PlacedVnode[], profile: LoadProfile): number {
  const loads = [...peerLoads(ring, profile).values()]
  const mean = loads.reduce((sum, load) => sum + load, 0) / loads.length
  return loads.length === 0 || mean === 0 ? 1 : Math.max(...loads) / mean
}

/** How good a placement is: the heaviest peer's load first, then the spread of all loads. */
export function score(loads: Map<string, number>): [number, number] {
  let max = 0
  let squares = 0
  for (const load of loads.values()) {
    max = Math.max(max, load)
    squares += load * load
  }
  return [max, squares]
}

function better(a: [number, number], b: [number, number]): boolean {
  const tolerance = 1e-9 * (Math.abs(b[0]) + 1)
  return a[0] < b[0] - tolerance || (a[0] <= b[0] + tolerance && a[1] < b[1] - tolerance * b[0])
}

/**
 * Candidate ids inside the arc `(from, to]` that hand over the loads in `amounts`, without reusing a
 * taken id: each at the sample position where the amount falls. Keys sharing a position are never
 * split: with `shortOfPiles`, also a cut just before that position.
 */
function cuts(
  profile: LoadProfile,
  from: bigint,
  to: bigint,
  amounts: number[],
  taken: Set<bigint>,
  shortOfPiles = false,
): bigint[] {
  const ids = new Set<bigint>()
  const add = (id: bigint) => {
    if (id !== to && id !== from && !taken.has(id)) ids.add(id)
  }
  for (const amount of amounts) {
    if (!(amount > 0)) continue
    const id = profile.positionAfter(from, to, amount)
    add(id)
    if (shortOfPiles) add(profile.positionBefore(from, id))
  }
  return [...ids]
}

/** Options of {@link chooseVnodeIds} and {@link planRebalance}. */
export interface PlacementOptions {
  /** Arcs considered per step, heaviest first. Default 8. */
  candidateArcs?: number
}

/**
 * Ids for the `count` vnodes of `peer`, joining `ring` (which holds none of its vnodes): one at a
 * time, each cuts the arc that best lowers the heaviest peer's load (then the spread), at a sample
 * position of `profile`, taking the share that brings the arc's owner or the new peer to the mean.
 * An empty ring gets ids at the profile's quantiles (evenly spaced ids when the profile is empty).
 * @throws InvalidArgumentError when `peer` already has vnodes on `ring` or `count` is not positive
 */
export function chooseVnodeIds(
  ring: readonly PlacedVnode[],
  profile: LoadProfile,
  peer: string,
  count: number,
  options: PlacementOptions = {},
): bigint[] {
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new InvalidArgumentError(`count must be a positive integer, got ${count}`)
  }
  if (ring.some((vnode) => vnode.peer === peer)) {
    throw new InvalidArgumentError(`peer ${peer} already has vnodes on the ring`)
  }
  const h = profile.hashSpaceSize
  if (ring.length === 0) return firstIds(profile, count)
  const candidateArcs = options.candidateArcs ?? 8
  const placed: PlacedVnode[] = [...ring]
  const ids: bigint[] = []
  const peers = new Set(ring.map((vnode) => vnode.peer)).size + 1
  const mean = profile.total / peers
  for (let k = 0; k < count; k++) {
    const loads = peerLoads(placed, profile)
    const mine = loads.get(peer) ?? 0
    const taken = new Set(placed.map((vnode) => vnode.id))
    const arcs = arcsOf(placed)
      .map((arc) => ({ ...arc, load: profile.arcLoad(arc.from, arc.id) }))
      .filter((arc) => arc.peer !== peer)
      .sort((a, b) => b.load - a.load)
      .slice(0, candidateArcs)
    let best: { id: bigint; score: [number, number] } | null = null
    const want = (mean - mine) / (count - k)
    for (const arc of arcs) {
      const owner = loads.get(arc.peer) ?? 0
      const amounts = [want, mean - mine, owner - mean, arc.load / 2].map((a) => Math.min(a, arc.load))
      for (const id of cuts(profile, arc.from, arc.id, amounts, taken)) {
        const trial = peerLoads([...placed, { id, peer }], profile)
        const s = score(trial)
        if (best === null || better(s, best.score)) best = { id, score: s }
      }
    }
    // No cut helps (an empty profile, or every arc one shared position): halve the longest arc.
    const id = best?.id ?? longestArcMiddle(placed, h, taken)
    placed.push({ id, peer })
    ids.push(id)
  }
  return ids
}

/** `count` ids at the profile's quantiles, or evenly spaced when it is empty. */
function firstIds(profile: LoadProfile, count: number): bigint[] {
  const h = profile.hashSpaceSize
  const ids = new Set<bigint>()
  for (let i = 1; i <= count; i++) {
    let id =
      profile.total === 0
        ? (BigInt(i) * h) / BigInt(count) - 1n
        : profile.positionAfter(h - 1n, h - 1n, (i * profile.total) / count)
    while (ids.has(id)) id = advance(id, 1n, h)
    ids.add(id)
  }
  return [...ids]
}

function longestArcMiddle(ring: readonly PlacedVnode[], h: bigint, taken: Set<bigint>): bigint {
  let best = { length: -1n, middle: 0n }
  for (const arc of arcsOf(ring)) {
    const length = arc.from === arc.id ? h : clockwiseDistance(arc.from, arc.id, h)
    if (length > best.length) best = { length, middle: advance(arc.from, length / 2n, h) }
  }
  let id = best.middle
  while (taken.has(id)) id = advance(id, 1n, h)
  return id
}

/** What {@link planRebalance} proposes: the moves, in order, and the ring they lead to. */
export interface RebalancePlan {
  readonly moves: VnodeMove[]
  readonly ring: PlacedVnode[]
  /** Largest over mean load per peer before and after the moves. */
  readonly before: number
  readonly after: number
}

/** Options of {@link planRebalance}. */
export interface RebalanceOptions extends PlacementOptions {
  /**
   * Stop once the largest load per peer is at most this times the mean. Default 1.05: a margin
   * under a 1.1 bound for a profile that is a subsample of the keys.
   */
  target?: number
  /** Most moves proposed. Default: the number of vnodes. */
  maxMoves?: number
}

/**
 * A few vnode moves that bring the load per peer to at most `target` times the mean, for a ring
 * whose keys moved (a rollout) or whose peers changed. Greedy: each move is the one that most lowers
 * the heaviest peer's load (then the spread) among
 * - sliding a boundary of the heaviest peer: its vnode moves back (its successor, another peer's,
 *   takes the cut) or its predecessor of another peer moves forward (takes the cut);
 * - relocating a vnode of a light peer into an arc of the heaviest peer (its own arc goes to its
 *   successor);
 * each cut where the loads of the two peers involved meet the mean, or halve the difference.
 * Stops at the target, after `maxMoves`, or when no move helps.
 */
export function planRebalance(
  ring: readonly PlacedVnode[],
  profile: LoadProfile,
  options: RebalanceOptions = {},
): RebalancePlan {
  const target = options.target ?? 1.05
  const maxMoves = options.maxMoves ?? ring.length
  const candidateArcs = options.candidateArcs ?? 8
  let current: PlacedVnode[] = [...ring]
  const moves: VnodeMove[] = []
  const before = imbalance(current, profile)
  const peers = new Set(ring.map((vnode) => vnode.peer)).size
  const mean = profile.total / Math.max(peers, 1)
  while (moves.length < maxMoves && imbalance(current, profile) > target) {
    const loads = peerLoads(current, profile)
    const base = score(loads)
    const heaviest = [...loads.entries()].reduce((a, b) => (b[1] > a[1] ? b : a))[0]
    const arcs = arcsOf(current).map((arc) => ({ ...arc, load: profile.arcLoad(arc.from, arc.id) }))
    const taken = new Set(current.map((vnode) => vnode.id))
    const candidates: VnodeMove[] = []
    const amounts = (giver: number, receiver: number, arcLoad: number) =>
      [giver - mean, mean - receiver, (giver - receiver) / 2].map((a) => Math.min(a, arcLoad))
    for (let i = 0; i < arcs.length; i++) {
      const arc = arcs[i]
      if (arc.peer !== heaviest) continue
      const next = arcs[(i + 1) % arcs.length]
      const previous = arcs.at(i - 1) ?? arc
      const heavy = loads.get(heaviest) ?? 0
      // Slide back: the successor (another peer) takes (to, arc.id]; this vnode keeps (from, to].
      if (next.peer !== heaviest) {
        const keep = amounts(heavy, loads.get(next.peer) ?? 0, arc.load).map((give) => arc.load - give)
        for (const to of cuts(profile, arc.from, arc.id, keep, taken, true)) {
          candidates.push({ peer: arc.peer, from: arc.id, to })
        }
        // Or all of it: the vnode stays, owning an empty arc just past its predecessor.
        const empty = advance(arc.from, 1n, profile.hashSpaceSize)
        if (keep.includes(0) && empty !== arc.id && !taken.has(empty)) {
          candidates.push({ peer: arc.peer, from: arc.id, to: empty })
        }
      }
      // Slide forward: the predecessor (another peer) takes (arc.from, to].
      if (previous.peer !== heaviest && previous.id !== arc.id) {
        const give = amounts(heavy, loads.get(previous.peer) ?? 0, arc.load)
        for (const to of cuts(profile, arc.from, arc.id, give, taken, true)) {
          candidates.push({ peer: previous.peer, from: previous.id, to })
        }
      }
    }
    // Relocate a vnode of one of the lightest peers into one of the heaviest peer's heaviest arcs.
    const light = [...loads.entries()].sort((a, b) => a[1] - b[1]).slice(0, 2)
    const heavyArcs = arcs
      .filter((arc) => arc.peer === heaviest)
      .sort((a, b) => b.load - a.load)
      .slice(0, candidateArcs)
    for (const [peer, load] of light) {
      for (const mover of arcs.filter((arc) => arc.peer === peer)) {
        for (const arc of heavyArcs) {
          const give = amounts(loads.get(heaviest) ?? 0, load - mover.load, arc.load)
          for (const to of cuts(profile, arc.from, arc.id, give, taken, true)) {
            candidates.push({ peer, from: mover.id, to })
          }
        }
      }
    }
    const scorer = new MoveScorer(arcs, loads, profile)
    let best: { move: VnodeMove; score: [number, number] } | null = null
    for (const move of candidates) {
      const s = scorer.scoreAfter(move)
      if (better(s, best?.score ?? base)) best = { move, score: s }
    }
    if (best === null) break
    const { from, to } = best.move
    moves.push(best.move)
    current = current.map((vnode) => (vnode.id === from ? { id: to, peer: vnode.peer } : vnode))
  }
  return { moves, ring: current, before, after: imbalance(current, profile) }
}

/**
 * Scores of single vnode moves on one ring, without recomputing every arc: a move changes only the
 * arcs of the vnodes after its old and its new place (and the moved vnode's own).
 */
export class MoveScorer {
  readonly #ids: bigint[]
  readonly #peers: string[]
  readonly #arcLoads: number[]
  readonly #loads: Map<string, number>
  readonly #profile: LoadProfile
  /** The heaviest peers, enough to know the largest load of those a move leaves alone. */
  readonly #top: Array<[string, number]>
  readonly #squares: number

  /** `arcs`: the ring sorted by id, with each vnode's arc and load (as `arcsOf` and `arcLoad` give). */
  constructor(
    arcs: ReadonlyArray<PlacedVnode & { load: number }>,
    loads: Map<string, number>,
    profile: LoadProfile,
  ) {
    this.#ids = arcs.map((arc) => arc.id)
    this.#peers = arcs.map((arc) => arc.peer)
    this.#arcLoads = arcs.map((arc) => arc.load)
    this.#loads = loads
    this.#profile = profile
    this.#top = [...loads.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4)
    this.#squares = [...loads.values()].reduce((sum, load) => sum + load * load, 0)
  }

  /**
   * `score` of the loads after `move` (its `from` is on the ring, its `to` is not): the largest load
   * per peer, then the sum of their squares.
   */
  scoreAfter(move: VnodeMove): [number, number] {
    const { from, to } = move
    const n = this.#ids.length
    const moved = this.#indexOf(from)
    if (n < 3 || moved < 0) throw new InvalidArgumentError(`vnode ${from} is not on a ring of 3 or more`)
    const changed = new Map<string, number>()
    const shift = (peer: string, amount: number) =>
      changed.set(peer, (changed.get(peer) ?? this.#loads.get(peer) ?? 0) + amount)
    // The id after or before `position` on the ring after the move (`position` itself excluded).
    const after = (position: bigint): bigint => {
      let index = this.#firstAbove(position)
      if (this.#ids[index] === from) index = (index + 1) % n
      const next = this.#ids[index]
      return inOpenArc(to, position, next) ? to : next
    }
    const before = (position: bigint): bigint => {
      let index = (this.#firstAbove(position - 1n) - 1 + n) % n
      if (this.#ids[index] === from) index = (index - 1 + n) % n
      const previous = this.#ids[index]
      return inOpenArc(to, previous, position) ? to : previous
    }
    shift(move.peer, -this.#arcLoads[moved])
    const affected = new Set<bigint>([after(from), to, after(to)])
    for (const id of affected) {
      const load = this.#profile.arcLoad(before(id), id)
      if (id === to) shift(move.peer, load)
      else {
        const index = this.#indexOf(id)
        shift(this.#peers[index], load - this.#arcLoads[index])
      }
    }
    let max = 0
    for (const [peer, load] of this.#top) {
      if (!changed.has(peer)) {
        max = load
        break
      }
    }
    let squares = this.#squares
    for (const [peer, load] of changed) {
      const old = this.#loads.get(peer) ?? 0
      squares += load * load - old * old
      max = Math.max(max, load)
    }
    return [max, squares]
  }

  /** Index of the first id above `position`, wrapping to 0. */
  #firstAbove(position: bigint): number {
    return countAtMost(this.#ids, position) % this.#ids.length
  }

  #indexOf(id: bigint): number {
    const index = this.#firstAbove(id - 1n)
    return this.#ids[index] === id ? index : -1
  }
}
