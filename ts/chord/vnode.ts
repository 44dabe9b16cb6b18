// One Chord vnode's routing state (predecessor, successor list, fingers) and its state transitions.
// Transport-free: remote vnodes are reached through an injected ChordRemote, live or simulated.

import { JoinFailedError } from './errors.js'
import {
  iterativeLookup,
  type LookupOptions,
  type LookupResult,
  type LookupStep,
  type NodeRef,
} from './lookup.js'
import { clockwiseDistance, fingerCount, fingerStart, inHalfOpenArc, inOpenArc } from './ring.js'

/** What a vnode tells others about its neighbourhood (answer to get_predecessor / get_successor_list). */
export interface Neighbours<R extends NodeRef> {
  predecessor: R | null
  /** The vnode owns `(arcStart, id]`; kept when the predecessor is lost, until a new one notifies. */
  arcStart: bigint
  successors: R[]
}

/** A vnode's answer to notify: whether the candidate is now its predecessor, and what was before. */
export interface NotifyOutcome<R extends NodeRef> {
  accepted: boolean
  previousPredecessor: R | null
  previousArcStart: bigint
}

/** An arc `(from, to]` whose entries move from one vnode to another. */
export interface Arc {
  from: bigint
  to: bigint
}

/** The calls one vnode makes on another; the transport (or a simulator) implements them. */
export interface ChordRemote<R extends NodeRef> {
  step(
    target: R,
    position: bigint,
    avoid: ReadonlySet<bigint>,
    options?: { signal?: AbortSignal },
  ): Promise<LookupStep<R>>
  neighbours(target: R, options?: { signal?: AbortSignal }): Promise<Neighbours<R>>
  notify(target: R, candidate: R, options?: { signal?: AbortSignal }): Promise<NotifyOutcome<R>>
  ping(target: R, options?: { signal?: AbortSignal }): Promise<void>
}

export interface ChordVnodeOptions {
  hashSpaceSize: bigint
  /** Successors remembered for fault tolerance. Default 8. */
  successorListLength?: number
}

export const DEFAULT_SUCCESSOR_LIST_LENGTH = 8
const JOIN_ATTEMPTS = 8

/**
 * A vnode on the ring. It starts alone (its own successor and predecessor, owning the whole ring);
 * `join` places it on an existing ring, `stabilize`/`fixFingers`/`checkPredecessor` keep it there.
 */
export class ChordVnode<R extends NodeRef> {
  readonly self: R
  readonly hashSpaceSize: bigint
  readonly successorListLength: number
  #predecessor: R | null
  /**
   * A predecessor that stopped answering (a timeout is not a death), until a second ping settles
   * it: while it may be alive, our arc must not grow past its id, or we would claim entries it holds.
   */
  #lostPredecessor: R | null = null
  #arcStart: bigint
  #successors: R[]
  readonly #fingers: (R | undefined)[]
  /**
   * False from the start of a join until its successor's acceptance reaches us. Meanwhile the ring
   * may already route to us, but our state is still that of a lone ring owning every position.
   */
  #onRing = true

  constructor(self: R, options: ChordVnodeOptions) {
    this.self = self
    this.hashSpaceSize = options.hashSpaceSize
    this.successorListLength = options.successorListLength ?? DEFAULT_SUCCESSOR_LIST_LENGTH
    this.#predecessor = self
    this.#arcStart = self.id
    this.#successors = [self]
    this.#fingers = new Array(fingerCount(options.hashSpaceSize)).fill(undefined)
  }

  get predecessor(): R | null {
    return this.#predecessor
  }

  /** Whether this vnode's state describes its place on the ring (not so while a join is under way). */
  get onRing(): boolean {
    return this.#onRing
  }

  /** The predecessor, or one that missed a ping and is not yet known to be gone. */
  get lastKnownPredecessor(): R | null {
    return this.#predecessor ?? this.#lostPredecessor
  }

  /** Exclusive start of the owned arc `(arcStart, self.id]`. */
  get arcStart(): bigint {
    return this.#arcStart
  }

  get successor(): R {
    return this.#successors[0]
  }

  get successors(): readonly R[] {
    return this.#successors
  }

  get fingers(): readonly (R | undefined)[] {
    return this.#fingers
  }

  /** Whether this vnode owns `position`, i.e. it lies in `(arcStart, self.id]`. */
  owns(position: bigint): boolean {
    return inHalfOpenArc(position, this.#arcStart, this.self.id)
  }

  neighbours(): Neighbours<R> {
    return { predecessor: this.#predecessor, arcStart: this.#arcStart, successors: [...this.#successors] }
  }

  /** One step of a lookup: the owner if this vnode knows it, otherwise the closest preceding node. */
  step(position: bigint, avoid: ReadonlySet<bigint> = new Set()): LookupStep<R> {
    if (this.owns(position)) return { kind: 'owner', owner: this.self, arcStart: this.#arcStart }
    const successor = this.#successors.find((node) => !avoid.has(node.id)) ?? this.self
    if (inHalfOpenArc(position, this.self.id, successor.id)) {
      return { kind: 'owner', owner: successor, arcStart: this.self.id }
    }
    const next = this.closestPrecedingNode(position, avoid)
    if (next.id === this.self.id) return { kind: 'owner', owner: successor, arcStart: this.self.id }
    return { kind: 'next', next }
  }

  /** The known node closest before `position` (fingers, successors, predecessor), or self. */
  closestPrecedingNode(position: bigint, avoid: ReadonlySet<bigint> = new Set()): R {
    let best = this.self
    let bestDistance = 0n
    for (const node of this.#knownNodes()) {
      if (avoid.has(node.id) || !inOpenArc(node.id, this.self.id, position)) continue
      const distance = clockwiseDistance(this.self.id, node.id, this.hashSpaceSize)
      if (distance > bestDistance) {
        best = node
        bestDistance = distance
      }
    }
    return best
  }

  /**
   * The known node (other than self) at or after `position` with the shortest clockwise distance:
   * where a request for a position this vnode does not own should go next.
   */
  bestGuessOwner(position: bigint): R {
    let best = this.#successors[0]
    let bestDistance = clockwiseDistance(position, best.id, this.hashSpaceSize)
    for (const node of this.#knownNodes()) {
      if (node.id === this.self.id) continue
      const distance = clockwiseDistance(position, node.id, this.hashSpaceSize)
      if (distance < bestDistance || best.id === this.self.id) {
        best = node
        bestDistance = distance
      }
    }
    return best
  }

  /**
   * Chord's notify: `candidate` thinks it might be our predecessor. When accepted and the candidate
   * falls inside our arc, `handedOver` is the sub-arc whose entries now belong to it. A lost
   * predecessor (see checkPredecessor) still bounds the candidates, and answers as the previous one.
   */
  notify(candidate: R): NotifyOutcome<R> & { handedOver: Arc | null } {
    const previousPredecessor = this.lastKnownPredecessor
    const previousArcStart = this.#arcStart
    const unchanged = { previousPredecessor, previousArcStart, handedOver: null }
    if (!this.#onRing)
      return { accepted: false, previousPredecessor: null, previousArcStart, handedOver: null }
    if (candidate.id === this.self.id) return { accepted: false, ...unchanged }
    if (previousPredecessor?.id === candidate.id) {
      this.#predecessor = candidate
      this.#lostPredecessor = null
      return { accepted: true, ...unchanged }
    }
    if (previousPredecessor !== null && !inOpenArc(candidate.id, previousPredecessor.id, this.self.id)) {
      return { accepted: false, ...unchanged }
    }
    const handedOver = inOpenArc(candidate.id, previousArcStart, this.self.id)
      ? { from: previousArcStart, to: candidate.id }
      : null
    this.#predecessor = candidate
    this.#lostPredecessor = null
    this.#arcStart = candidate.id
    if (this.#successors[0].id === this.self.id) this.#successors = [candidate]
    return { accepted: true, previousPredecessor, previousArcStart, handedOver }
  }

  /** Drops every node `isGone` matches from the successor list, the fingers and the predecessor. */
  forget(isGone: (node: R) => boolean): void {
    const successors = this.#successors.filter((node) => node.id === this.self.id || !isGone(node))
    this.#successors = successors.length > 0 ? successors : [this.self]
    for (let i = 0; i < this.#fingers.length; i++) {
      const finger = this.#fingers[i]
      if (finger !== undefined && isGone(finger)) this.#fingers[i] = undefined
    }
    if (this.#predecessor !== null && this.#predecessor.id !== this.self.id && isGone(this.#predecessor)) {
      this.#losePredecessor()
    }
  }

  /** Looks `position` up starting from this vnode's own routing state. */
  lookup(remote: ChordRemote<R>, position: bigint, options: LookupOptions<R> = {}): Promise<LookupResult<R>> {
    return iterativeLookup(
      position,
      (avoid) => this.step(position, avoid),
      (target, at, avoid, callOptions) => remote.step(target, at, avoid, callOptions),
      options,
    )
  }

  /**
   * Places this (alone) vnode on the ring that `via` belongs to: finds its successor, notifies it
   * and adopts the predecessor the successor had. The successor hands its entries of our arc over
   * in its notify answer (the transport's business), and answers a notify repeated after a lost
   * answer the same way.
   * @throws JoinFailedError when the id is taken or the successor refused (retry after stabilization)
   */
  async join(
    remote: ChordRemote<R>,
    via: R,
    options: LookupOptions<R> = {},
  ): Promise<{ successor: R; hops: number }> {
    this.#onRing = false
    const found = await iterativeLookup(
      this.self.id,
      () => ({ kind: 'next', next: via }),
      (target, at, avoid, callOptions) => remote.step(target, at, avoid, callOptions),
      options,
    )
    let successor = found.owner
    if (successor.id === this.self.id) {
      // Our id is on the ring: an earlier attempt was accepted and its answer lost, or another vnode
      // has it. The vnode after it tells which (and hands the arc over again in the first case).
      const next = await iterativeLookup(
        (this.self.id + 1n) % this.hashSpaceSize,
        () => ({ kind: 'next', next: via }),
        (target, at, avoid, callOptions) => remote.step(target, at, avoid, callOptions),
        options,
      )
      if (next.owner.id === this.self.id) {
        throw new JoinFailedError(`position ${this.self.id} is already taken on the ring`)
      }
      successor = next.owner
    }
    for (let attempt = 0; ; attempt++) {
      const outcome = await remote.notify(successor, this.self, options)
      if (outcome.accepted && outcome.previousPredecessor?.id === this.self.id) {
        // Already its predecessor, and no hand-over of ours to repeat: another vnode has this id.
        throw new JoinFailedError(`position ${this.self.id} is already taken on the ring`)
      }
      if (outcome.accepted) {
        this.#predecessor = outcome.previousPredecessor
        // Before the successor's old arc (a dead predecessor's lay between): we own only our id
        // until our predecessor's notify extends the arc, rather than wrap round the whole ring.
        this.#arcStart = inOpenArc(this.self.id, outcome.previousArcStart, successor.id)
          ? outcome.previousArcStart
          : (this.self.id - 1n + this.hashSpaceSize) % this.hashSpaceSize
        this.#onRing = true
        break
      }
      // Another vnode joined between us and `successor` since the lookup: its predecessor is closer.
      const closer = outcome.previousPredecessor
      if (closer === null || closer.id === this.self.id || attempt >= JOIN_ATTEMPTS) {
        throw new JoinFailedError(`vnode ${successor.id} did not accept ${this.self.id} as its predecessor`)
      }
      successor = closer
    }
    this.#successors = [successor]
    // Accepted: we are on the ring and own our arc. A failure to read the successor's list now
    // must not undo that (stabilization fills the list in a moment).
    try {
      const neighbours = await remote.neighbours(successor, options)
      this.#adoptSuccessors(successor, neighbours.successors)
    } catch {
      options.signal?.throwIfAborted()
    }
    return { successor, hops: found.hops }
  }

  /**
   * Chord's stabilize: skip dead successors, adopt a node that slipped in between, refresh the
   * successor list from the successor's, and notify the successor.
   */
  async stabilize(remote: ChordRemote<R>, options: { signal?: AbortSignal } = {}): Promise<void> {
    let successor = this.#successors[0]
    let neighbours: Neighbours<R>
    for (;;) {
      successor = this.#successors[0]
      if (successor.id === this.self.id) {
        neighbours = this.neighbours()
        break
      }
      try {
        neighbours = await remote.neighbours(successor, options)
        break
      } catch {
        options.signal?.throwIfAborted()
        this.forget((node) => node.id === successor.id)
      }
    }
    const between = neighbours.predecessor
    if (between !== null && inOpenArc(between.id, this.self.id, successor.id)) {
      try {
        neighbours = await remote.neighbours(between, options)
        successor = between
      } catch {
        options.signal?.throwIfAborted()
      }
    }
    this.#adoptSuccessors(successor, neighbours.successors)
    if (successor.id === this.self.id) return
    try {
      await remote.notify(successor, this.self, options)
    } catch {
      options.signal?.throwIfAborted()
    }
  }

  /**
   * Refreshes every finger. Consecutive fingers usually share an owner, so only the distinct
   * owners cost a lookup: O(log N) lookups per round.
   */
  async fixFingers(remote: ChordRemote<R>, options: LookupOptions<R> = {}): Promise<void> {
    let previous = this.#successors[0]
    for (let index = 0; index < this.#fingers.length; index++) {
      const start = fingerStart(this.self.id, index, this.hashSpaceSize)
      if (!inHalfOpenArc(start, this.self.id, previous.id)) {
        try {
          previous = (await this.lookup(remote, start, options)).owner
        } catch {
          options.signal?.throwIfAborted()
          return
        }
      }
      this.#fingers[index] = previous
    }
  }

  /**
   * Chord's check-predecessor: forget a predecessor that does not answer (the arc start stays).
   * A lost one is pinged again a round later: if it answers it is our predecessor again, else it
   * is gone and a notify from before our arc may take its place (and its arc).
   */
  async checkPredecessor(remote: ChordRemote<R>, options: { signal?: AbortSignal } = {}): Promise<void> {
    const predecessor = this.lastKnownPredecessor
    if (predecessor === null || predecessor.id === this.self.id) return
    let alive = true
    try {
      await remote.ping(predecessor, options)
    } catch {
      options.signal?.throwIfAborted()
      alive = false
    }
    if (this.#predecessor?.id === predecessor.id) {
      if (!alive) this.#losePredecessor()
    } else if (this.#predecessor === null && this.#lostPredecessor?.id === predecessor.id) {
      this.#lostPredecessor = null
      if (alive && this.#arcStart === predecessor.id) this.#predecessor = predecessor
    }
  }

  #losePredecessor(): void {
    this.#lostPredecessor = this.#predecessor
    this.#predecessor = null
  }

  /**
   * Our predecessor `leaving` left gracefully and handed us its arc: its own predecessor and arc
   * start become ours. Ignored when `leaving` is not our predecessor.
   */
  predecessorLeft(leaving: R, predecessor: R | null, arcStart: bigint): void {
    if (this.#arcStart !== leaving.id) return
    this.#predecessor = predecessor?.id === leaving.id ? null : predecessor
    this.#lostPredecessor = null
    this.#arcStart = arcStart === leaving.id ? this.self.id : arcStart
    if (this.#predecessor === null && this.#arcStart === this.self.id) this.#predecessor = this.self
    this.forget((node) => node.id === leaving.id)
  }

  /** A vnode we may point at left gracefully; splice its successors into our list. */
  successorLeft(leaving: R, successorsOfLeaving: readonly R[]): void {
    const wasSuccessor = this.#successors[0].id === leaving.id
    this.forget((node) => node.id === leaving.id)
    if (wasSuccessor) {
      const next = successorsOfLeaving.find((node) => node.id !== leaving.id) ?? this.self
      this.#adoptSuccessors(next, [...successorsOfLeaving, ...this.#successors])
    }
  }

  #adoptSuccessors(successor: R, successorsOfSuccessor: readonly R[]): void {
    const list = [successor]
    for (const node of successorsOfSuccessor) {
      if (list.length >= this.successorListLength || node.id === this.self.id) break
      if (!list.some((known) => known.id === node.id)) list.push(node)
    }
    this.#successors = list
  }

  *#knownNodes(): Iterable<R> {
    for (const finger of this.#fingers) if (finger !== undefined) yield finger
    yield* this.#successors
    if (this.#predecessor !== null) yield this.#predecessor
  }
}
