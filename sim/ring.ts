// A simulated Chord ring of thousands of vnodes in one process, driving the real ts/chord code
// (ChordVnode join/stabilize/fixFingers/step, iterativeLookup, ArcMap, rangeWalk) through a counting remote.

import {
  ArcMap,
  type ChordRemote,
  ChordVnode,
  clockwiseDistance,
  iterativeLookup,
  type LookupStep,
  type OwnedArc,
  rangeWalk,
} from '../ts/chord/index.js'
import { partitionPoint } from '../ts/shared/partition-point.js'

/** A simulated vnode: its ring position and the physical node (peer) that runs it. */
export interface SimVnodeRef {
  readonly id: bigint
  readonly peer: number
}

/** Thrown by the simulated transport for a call to a vnode whose peer has failed. */
export class SimulatedPeerDownError extends Error {}

/** What one operation cost on the wire: request/response pairs and the distinct peers they reached. */
export interface Traffic {
  messages: number
  peers: Set<number>
}

export interface SimLookupOptions {
  /** The origin's routing cache: consulted first, taught the answer. */
  cache?: ArcMap<SimVnodeRef>
  /** Where the lookup's messages are counted. */
  traffic?: Traffic
  /** Whether the origin drops peers found down from its routing state (the live router does). Default true. */
  forgetUnreachable?: boolean
  /** Vnode ids known to be down (e.g. an owner whose data call failed): every step routes around them. */
  avoid?: ReadonlySet<bigint>
}

/** Cost and outcome of one lookup. */
export interface SimLookup {
  owner: SimVnodeRef
  hops: number
}

/** Cost of one range query: routing and scan messages, and the distinct peers contacted. */
export interface SimRangeQuery {
  messages: number
  routingMessages: number
  scanMessages: number
  peersTouched: number
  owners: number
}

/** How the ring was built: the real protocol steps run and whether the result is the converged ring. */
export interface BuildReport {
  joins: number
  stabilizeCalls: number
  fingerLookups: number
  converged: boolean
}

export interface SimRingOptions {
  hashSpaceSize: bigint
  /** Ring positions of every vnode, grouped by peer: `vnodeIds[peer][i]`. All distinct. */
  vnodeIds: readonly (readonly bigint[])[]
  successorListLength?: number
}

/**
 * Peers × vnodes on one ring. `build()` runs the real join, stabilize and fix-fingers of every
 * vnode; during the build, lookups are answered by an oracle (the exact successor among the joined
 * vnodes) instead of multi-hop routing, so it installs the protocol's fixed point in seconds. After
 * the build, every lookup and range walk routes hop by hop through the vnodes' own `step`.
 */
export class SimRing {
  readonly hashSpaceSize: bigint
  readonly peerCount: number
  /** Every vnode sorted by id. */
  readonly vnodes: readonly ChordVnode<SimVnodeRef>[]
  /** The sorted ids, for brute-force ownership. */
  readonly sortedIds: BigUint64Array
  readonly #byId = new Map<bigint, ChordVnode<SimVnodeRef>>()
  readonly #byPeer: ChordVnode<SimVnodeRef>[][]
  readonly #failed = new Set<number>()
  #oracle: ((position: bigint) => ChordVnode<SimVnodeRef>) | null = null
  #traffic: Traffic | null = null
  readonly #remote: ChordRemote<SimVnodeRef>

  constructor(options: SimRingOptions) {
    this.hashSpaceSize = options.hashSpaceSize
    this.peerCount = options.vnodeIds.length
    this.#byPeer = options.vnodeIds.map((ids, peer) =>
      ids.map(
        (id) =>
          new ChordVnode<SimVnodeRef>(
            { id, peer },
            { hashSpaceSize: options.hashSpaceSize, successorListLength: options.successorListLength },
          ),
      ),
    )
    for (const vnode of this.#byPeer.flat()) this.#byId.set(vnode.self.id, vnode)
    if (this.#byId.size !== this.#byPeer.flat().length) throw new RangeError('vnode ids must be distinct')
    this.vnodes = [...this.#byId.values()].sort((a, b) => (a.self.id < b.self.id ? -1 : 1))
    this.sortedIds = BigUint64Array.from(this.vnodes, (vnode) => vnode.self.id)
    this.#remote = {
      step: async (target, position, avoid) => {
        const vnode = this.#reach(target)
        return this.#oracle === null ? vnode.step(position, avoid) : this.#oracleStep(position)
      },
      neighbours: async (target) => this.#reach(target).neighbours(),
      notify: async (target, candidate) => this.#reach(target).notify(candidate),
      ping: async (target) => {
        this.#reach(target)
      },
    }
  }

  /** Joins every vnode (peer after peer), stabilizing as Chord does, then fixes every finger table. */
  async build(): Promise<BuildReport> {
    const joined: bigint[] = []
    const joinedSuccessor = (position: bigint) => {
      const index = firstAtOrAfter(joined, position)
      return this.#byId.get(joined[index === joined.length ? 0 : index]) as ChordVnode<SimVnodeRef>
    }
    this.#oracle = joinedSuccessor
    let stabilizeCalls = 0
    const stabilize = async (vnode: ChordVnode<SimVnodeRef>) => {
      stabilizeCalls++
      await vnode.stabilize(this.#remote)
    }
    const first = this.#byPeer.flat()[0]
    for (const vnode of this.#byPeer.flat()) {
      if (joined.length > 0) {
        await vnode.join(this.#remote, first.self)
        // The vnode just before the newcomer learns of it at its next stabilize.
        const before = this.#byId.get(vnode.arcStart) as ChordVnode<SimVnodeRef>
        await stabilize(before)
      }
      joined.splice(firstAtOrAfter(joined, vnode.self.id), 0, vnode.self.id)
    }
    // Two passes against ring order carry full successor lists backwards around the ring.
    for (let pass = 0; pass < 2; pass++) {
      for (let i = this.vnodes.length - 1; i >= 0; i--) await stabilize(this.vnodes[i])
    }
    let fingerLookups = 0
    this.#oracle = (position) => {
      fingerLookups++
      return joinedSuccessor(position)
    }
    for (const vnode of this.vnodes) await vnode.fixFingers(this.#remote)
    this.#oracle = null
    return { joins: this.vnodes.length - 1, stabilizeCalls, fingerLookups, converged: this.isConverged() }
  }

  /** Whether every vnode's predecessor, arc and successor list match the sorted ids exactly. */
  isConverged(): boolean {
    const count = this.vnodes.length
    return this.vnodes.every((vnode, i) => {
      const expectedSuccessors = Math.min(vnode.successorListLength, count - 1)
      return (
        vnode.arcStart === this.vnodes.at(i - 1)?.self.id &&
        vnode.successors.length === expectedSuccessors &&
        vnode.successors.every((node, k) => node.id === this.vnodes[(i + 1 + k) % count].self.id)
      )
    })
  }

  /** The vnodes of a peer. */
  vnodesOf(peer: number): readonly ChordVnode<SimVnodeRef>[] {
    return this.#byPeer[peer]
  }

  /** Brute force: the vnode owning `position` (first id at or after it, wrapping), among live peers when `liveOnly`. */
  ownerOf(position: bigint, liveOnly = false): SimVnodeRef {
    let index = firstAtOrAfter(this.sortedIds, position)
    for (let scanned = 0; scanned < this.vnodes.length; scanned++, index++) {
      const vnode = this.vnodes[index % this.vnodes.length]
      if (!liveOnly || !this.#failed.has(vnode.self.peer)) return vnode.self
    }
    throw new RangeError('every peer has failed')
  }

  /** Peers fail at once (crash, no handover): their vnodes stop answering, nobody repairs yet. */
  fail(peers: Iterable<number>): void {
    for (const peer of peers) this.#failed.add(peer)
  }

  /** Every failed peer comes back with the routing state it had (measurements that forget nothing can reuse the ring). */
  recoverAll(): void {
    this.#failed.clear()
  }

  isFailed(peer: number): boolean {
    return this.#failed.has(peer)
  }

  /**
   * Looks `position` up from peer `origin` as the live router does: local vnodes and the routing
   * `cache` first (no message), otherwise an iterative lookup from the local vnode closest before it,
   * whose answer is cached. Unreachable peers are forgotten by the origin's vnodes unless told not to.
   * @throws LookupFailedError when no live route remains
   */
  async lookup(origin: number, position: bigint, options: SimLookupOptions = {}): Promise<SimLookup> {
    const { cache, traffic, forgetUnreachable = true, avoid = new Set<bigint>() } = options
    const known = this.#knownArc(origin, position, cache)
    if (known !== undefined) return { owner: known.owner, hops: 0 }
    const local = this.#byPeer[origin]
    let start = local[0]
    for (const vnode of local) {
      if (
        clockwiseDistance(vnode.self.id, position, this.hashSpaceSize) <
        clockwiseDistance(start.self.id, position, this.hashSpaceSize)
      ) {
        start = vnode
      }
    }
    this.#traffic = traffic ?? null
    try {
      const withKnownDown = (avoided: ReadonlySet<bigint>) =>
        avoid.size === 0 ? avoided : new Set([...avoided, ...avoid])
      const found = await iterativeLookup(
        position,
        (avoided) => start.step(position, withKnownDown(avoided)),
        (target, at, avoided) => this.#remote.step(target, at, withKnownDown(avoided)),
        {
          onUnreachable: (gone) => {
            if (forgetUnreachable) for (const vnode of local) vnode.forget((node) => node.peer === gone.peer)
          },
        },
      )
      if (found.owner.peer !== origin) cache?.add(found.arcStart, found.owner)
      return { owner: found.owner, hops: found.hops }
    } finally {
      this.#traffic = null
    }
  }

  /**
   * A range query from `origin` over the arcs `[low, high]` (one, or several for a box query) as the
   * live router runs it (coveringSegments): each is walked over known arcs; an unknown stretch costs a
   * neighbours call to the last owner (its successor list names up to 8 arcs) or, failing that, a
   * lookup; then one scan message per owning vnode of another peer. Starts from an empty routing cache.
   */
  async rangeQuery(origin: number, arcs: ReadonlyArray<readonly [bigint, bigint]>): Promise<SimRangeQuery> {
    const cache = new ArcMap<SimVnodeRef>()
    const traffic: Traffic = { messages: 0, peers: new Set() }
    const owners: SimVnodeRef[] = []
    for (const [low, high] of arcs) {
      let cursor = low
      for (;;) {
        const walk = rangeWalk(cursor, high, (at) => this.#knownArc(origin, at, cache), this.hashSpaceSize)
        for (const segment of walk.segments) owners.push(segment.owner)
        if (walk.unknownFrom === undefined) break
        cursor = walk.unknownFrom
        const previous = walk.segments.at(-1)?.owner
        if (
          previous !== undefined &&
          previous.peer !== origin &&
          (await this.#learnSuccessors(previous, cache, traffic))
        ) {
          continue
        }
        await this.lookup(origin, cursor, { cache, traffic })
      }
    }
    const routingMessages = traffic.messages
    const remoteOwners = owners.filter((owner) => owner.peer !== origin)
    for (const owner of remoteOwners) traffic.peers.add(owner.peer)
    return {
      messages: routingMessages + remoteOwners.length,
      routingMessages,
      scanMessages: remoteOwners.length,
      peersTouched: traffic.peers.size,
      owners: owners.length,
    }
  }

  /** Caches the arcs of `owner`'s successors (one neighbours call); false when that taught nothing new. */
  async #learnSuccessors(owner: SimVnodeRef, cache: ArcMap<SimVnodeRef>, traffic: Traffic): Promise<boolean> {
    const before = cache.size
    this.#traffic = traffic
    try {
      const { successors } = await this.#remote.neighbours(owner)
      let arcStart = owner.id
      for (const successor of successors) {
        cache.add(arcStart, successor)
        arcStart = successor.id
      }
    } catch {
      return false
    } finally {
      this.#traffic = null
    }
    return cache.size > before
  }

  #knownArc(
    origin: number,
    position: bigint,
    cache?: ArcMap<SimVnodeRef>,
  ): OwnedArc<SimVnodeRef> | undefined {
    for (const vnode of this.#byPeer[origin]) {
      if (vnode.owns(position)) return { start: vnode.arcStart, owner: vnode.self }
    }
    return cache?.find(position)
  }

  #reach(target: SimVnodeRef): ChordVnode<SimVnodeRef> {
    if (this.#traffic !== null) {
      this.#traffic.messages++
      this.#traffic.peers.add(target.peer)
    }
    const vnode = this.#byId.get(target.id)
    if (vnode === undefined || this.#failed.has(target.peer)) {
      throw new SimulatedPeerDownError(`peer ${target.peer} is down`)
    }
    return vnode
  }

  #oracleStep(position: bigint): LookupStep<SimVnodeRef> {
    const owner = (this.#oracle as (position: bigint) => ChordVnode<SimVnodeRef>)(position)
    return { kind: 'owner', owner: owner.self, arcStart: owner.arcStart }
  }
}

/** Index of the first id >= position in ascending `ids` (their length when none is). */
export function firstAtOrAfter(ids: ArrayLike<bigint>, position: bigint): number {
  return partitionPoint(ids.length, (i) => ids[i] < position)
}
