// Routing on the live ring: positions to owning vnodes, from local vnodes, the routing cache of
// learned arcs, or an iterative lookup over the network; ranges to the owners of their pieces.

import {
  type ChordRemote,
  clockwiseDistance,
  iterativeLookup,
  LookupFailedError,
  type LookupOptions,
  type LookupResult,
  type OwnedArc,
  rangeWalk,
} from '../chord/index.js'
import { VnodeUnavailableError } from '../protocol/errors.js'
import { type NeighbourRefs, Neighbours, type NotifyAnswer, Step } from '../protocol/messages.js'
import { NotStartedError } from '../shared/errors.js'
import type { RangeSegment, RouteOptions, VnodeRef } from '../shared/router.js'
import type { LocalVnode, OverlayState } from './overlay-state.js'

/** Notifies a (possibly remote) vnode that `candidate` may be its predecessor (see the joiner). */
export type NotifyCall = (
  target: VnodeRef,
  candidate: VnodeRef,
  signal?: AbortSignal,
) => Promise<NotifyAnswer>

/** Finds the owners of positions and ranges for this peer. */
export class Routing {
  /** The calls a vnode makes on another, over the network or in process. */
  readonly remote: ChordRemote<VnodeRef>
  readonly #state: OverlayState
  #lookupsRunning = 0
  #lookupSlots: Array<() => void> = []

  constructor(state: OverlayState, notify: NotifyCall) {
    this.#state = state
    this.remote = {
      step: (target, position, avoid, callOptions) =>
        state.ringCall(target, Step, { target: target.id, position, avoid: [...avoid] }, callOptions?.signal),
      neighbours: (target, callOptions) =>
        state.ringCall(target, Neighbours, { target: target.id }, callOptions?.signal),
      notify: (target, candidate, callOptions) => notify(target, candidate, callOptions?.signal),
      // Asks the vnode itself, not only its peer: a vnode that moved away must read as gone.
      ping: async (target, callOptions) => {
        await state.ringCall(target, Neighbours, { target: target.id }, callOptions?.signal)
      },
    }
  }

  /** Lookup options that forget a vnode or peer that does not answer. */
  lookupOptions(signal?: AbortSignal): LookupOptions<VnodeRef> {
    return {
      signal,
      onUnreachable: (node, err) => this.#state.forget(node, err instanceof VnodeUnavailableError),
    }
  }

  async findSuccessor(position: bigint, options: RouteOptions = {}): Promise<VnodeRef> {
    return this.knownArc(position)?.owner ?? this.#coldLookup(position, options.signal)
  }

  async findSuccessorMany(positions: BigUint64Array, options: RouteOptions = {}): Promise<VnodeRef[]> {
    const owners: VnodeRef[] = new Array(positions.length)
    for (let i = 0; i < positions.length; i++) {
      owners[i] = this.knownArc(positions[i])?.owner ?? (await this.#coldLookup(positions[i], options.signal))
    }
    return owners
  }

  /** The arc holding `position` if a local vnode owns it or the cache knows it (counted as a hit). */
  knownArc(position: bigint, count = true): OwnedArc<VnodeRef> | undefined {
    const local = this.#state.localArc(position)
    if (local !== undefined) {
      if (count) this.#state.stats.localHits++
      return local
    }
    const cached = this.#state.cache.find(position)
    if (cached !== undefined && count) this.#state.stats.cacheHits++
    return cached
  }

  /**
   * A lookup for a routing-cache miss. Concurrent misses queue for one of `maxWorkers` slots and
   * look at the cache again when their turn comes, so a burst of misses on one arc costs one lookup.
   */
  async #coldLookup(position: bigint, signal?: AbortSignal): Promise<VnodeRef> {
    while (this.#lookupsRunning >= this.#state.config.maxWorkers) {
      await new Promise<void>((resolve) => this.#lookupSlots.push(resolve))
    }
    const known = this.knownArc(position)
    if (known !== undefined) {
      this.#lookupSlots.shift()?.()
      return known.owner
    }
    this.#lookupsRunning++
    try {
      return (await this.lookup(position, signal)).owner
    } finally {
      this.#lookupsRunning--
      this.#lookupSlots.shift()?.()
    }
  }

  /** An iterative lookup from the local vnode that precedes `position` most closely. */
  async lookup(position: bigint, signal?: AbortSignal): Promise<LookupResult<VnodeRef>> {
    const state = this.#state
    const size = state.hashSpaceSize
    let start: LocalVnode | undefined
    for (const vnode of state.vnodes.values()) {
      if (!vnode.active) continue
      if (
        start === undefined ||
        clockwiseDistance(vnode.ref.id, position, size) < clockwiseDistance(start.ref.id, position, size)
      ) {
        start = vnode
      }
    }
    const options = this.lookupOptions(signal)
    let result: LookupResult<VnodeRef>
    if (start !== undefined) result = await start.chord.lookup(this.remote, position, options)
    else if (state.handedTo !== undefined) {
      // Every vnode has left (the peer is stopping): ask the vnode that took over our last arc.
      result = await this.#lookupVia(state.handedTo, position, options)
    } else throw new NotStartedError('the overlay has no vnode on the ring')
    // A step answered by a stale successor list (before stabilization) can name one of our vnodes
    // whose arc no longer reaches `position`: vnodes joined in front of it. Go on from its predecessor.
    let named = result.owner.peerId === state.peerId ? state.vnodes.get(result.owner.id) : undefined
    for (let hop = 0; named?.active && !named.chord.owns(position) && hop < state.vnodes.size; hop++) {
      const before: VnodeRef | null = named.chord.predecessor
      if (before === null) break
      if (before.peerId === state.peerId) {
        named = state.vnodes.get(before.id)
        if (named?.active && named.chord.owns(position)) {
          result = { owner: named.ref, arcStart: named.chord.arcStart, hops: result.hops }
        }
        continue
      }
      result = await this.#lookupVia(before, position, options)
      break
    }
    state.stats.lookups++
    state.stats.lookupHops += result.hops
    if (result.owner.peerId !== state.peerId) state.cache.add(result.arcStart, result.owner)
    return result
  }

  /** An iterative lookup that starts at `via`. */
  #lookupVia(
    via: VnodeRef,
    position: bigint,
    options: LookupOptions<VnodeRef>,
  ): Promise<LookupResult<VnodeRef>> {
    return iterativeLookup(position, () => ({ kind: 'next', next: via }), this.remote.step, options)
  }

  /**
   * The owners of `[hashMin, hashMax]` in ring order: from arcs already known (local vnodes, the
   * routing cache); unknown stretches cost one lookup, then one neighbours call per 8 successors.
   */
  async coveringSegments(
    hashMin: bigint,
    hashMax: bigint,
    options: RouteOptions = {},
  ): Promise<RangeSegment[]> {
    const stats = this.#state.stats
    stats.rangeQueries++
    const segments: RangeSegment[] = []
    let cursor = hashMin
    let rounds = 0
    for (;;) {
      const walk = rangeWalk(
        cursor,
        hashMax,
        (position) => this.knownArc(position, false),
        this.#state.hashSpaceSize,
      )
      segments.push(...walk.segments)
      if (walk.unknownFrom === undefined) return segments
      if (++rounds > 4 * (segments.length + 16)) {
        throw new LookupFailedError(`could not route the range [${hashMin}, ${hashMax}]`)
      }
      cursor = walk.unknownFrom
      const previous = segments.at(-1)?.owner
      if (previous !== undefined && (await this.#learnSuccessors(previous, options.signal))) continue
      const found = await this.lookup(cursor, options.signal)
      stats.rangeRoutingMessages += found.hops
      if (this.knownArc(cursor, false) === undefined) this.#state.cache.add(found.arcStart, found.owner)
    }
  }

  /** Caches the arcs of `owner`'s successors; false when that taught nothing new. */
  async #learnSuccessors(owner: VnodeRef, signal?: AbortSignal): Promise<boolean> {
    const state = this.#state
    if (owner.peerId === state.peerId) return false
    let neighbours: NeighbourRefs
    try {
      state.stats.rangeRoutingMessages++
      neighbours = await state.ringCall(owner, Neighbours, { target: owner.id }, signal)
    } catch {
      signal?.throwIfAborted()
      return false
    }
    const before = state.cache.size
    let previous = owner.id
    for (const successor of neighbours.successors) {
      if (successor.peerId !== state.peerId && successor.id !== owner.id) state.cache.add(previous, successor)
      previous = successor.id
    }
    return state.cache.size > before
  }
}
