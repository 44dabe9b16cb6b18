// Who owns which arc: a sorted view of arcs `(start, owner.id]` answering "whose arc holds p?".
// Serves as a full ring view (built from every vnode) and as a routing cache of learned arcs.

import { partitionPoint } from '../shared/partition-point.js'
import type { NodeRef } from './lookup.js'
import { inHalfOpenArc } from './ring.js'

/** The arc `(start, owner.id]` and the vnode owning it. */
export interface OwnedArc<R extends NodeRef> {
  readonly start: bigint
  readonly owner: R
}

/**
 * Arcs sorted by their end. Overlapping arcs cannot coexist: adding one evicts any stale arc it
 * overlaps, so the view stays a set of disjoint arcs. Past `capacity` arcs it starts over.
 */
export class ArcMap<R extends NodeRef> {
  readonly capacity: number
  #arcs: OwnedArc<R>[] = []

  constructor(capacity = 16_384) {
    this.capacity = capacity
  }

  /** The full ring view of vnodes whose ids are all known: each owns the arc from the one before. */
  static ofRing<R extends NodeRef>(vnodes: readonly R[]): ArcMap<R> {
    const sorted = [...vnodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    const map = new ArcMap<R>(Math.max(sorted.length, 1))
    map.#arcs = sorted.map((owner, i) => ({ start: sorted.at(i - 1)?.id ?? owner.id, owner }))
    return map
  }

  get size(): number {
    return this.#arcs.length
  }

  arcs(): readonly OwnedArc<R>[] {
    return this.#arcs
  }

  /** The arc holding `position`, if known. */
  find(position: bigint): OwnedArc<R> | undefined {
    if (this.#arcs.length === 0) return undefined
    const candidate = this.#arcs[this.#firstEndingAtOrAfter(position) % this.#arcs.length]
    return inHalfOpenArc(position, candidate.start, candidate.owner.id) ? candidate : undefined
  }

  /** Records that `owner` owns `(start, owner.id]`, evicting arcs that contradict it. */
  add(start: bigint, owner: R): void {
    const at = this.#firstEndingAtOrAfter(owner.id)
    const existing = this.#arcs[at]
    if (existing?.owner.id === owner.id && existing.start === start) return
    this.#arcs = this.#arcs.filter((arc) => !overlaps(arc, start, owner.id))
    if (this.#arcs.length >= this.capacity) this.#arcs = []
    this.#arcs.splice(this.#firstEndingAtOrAfter(owner.id), 0, { start, owner })
  }

  /** Forgets every arc whose owner `isGone` matches. */
  removeWhere(isGone: (owner: R) => boolean): void {
    this.#arcs = this.#arcs.filter((arc) => !isGone(arc.owner))
  }

  #firstEndingAtOrAfter(position: bigint): number {
    const arcs = this.#arcs
    return partitionPoint(arcs.length, (i) => arcs[i].owner.id < position)
  }
}

function overlaps<R extends NodeRef>(arc: OwnedArc<R>, start: bigint, end: bigint): boolean {
  return inHalfOpenArc(end, arc.start, arc.owner.id) || inHalfOpenArc(arc.owner.id, start, end)
}
