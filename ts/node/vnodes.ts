// Virtual nodes on the ring: where a peer places its vnodes, and which vnode owns a position.
// A vnode owns the arc (predecessor's id, id]; the first vnode also owns the wrap past the last.

import { InvalidArgumentError } from '../errors.js'
import type { RangeSegment, VnodeRef } from './router.js'

/** Ids of `count` vnodes spread evenly over [0, hashSpaceSize): the last one sits at the end of the ring. */
export function spreadVnodeIds(count: number, hashSpaceSize: bigint): bigint[] {
  return Array.from({ length: count }, (_, i) => (BigInt(i + 1) * hashSpaceSize) / BigInt(count) - 1n)
}

/** Checks that `position` is a valid ring position (an integer in [0, hashSpaceSize)) and returns it as a bigint. */
export function toPosition(position: bigint | number, hashSpaceSize: bigint, what = 'position'): bigint {
  if (typeof position === 'number') {
    if (!Number.isSafeInteger(position)) {
      throw new InvalidArgumentError(`${what} must be an integer (bigint or safe integer), got ${position}`)
    }
    position = BigInt(position)
  } else if (typeof position !== 'bigint') {
    throw new InvalidArgumentError(`${what} must be a bigint or a number, got ${typeof position}`)
  }
  if (position < 0n || position >= hashSpaceSize) {
    throw new InvalidArgumentError(`${what} must lie in [0, ${hashSpaceSize}), got ${position}`)
  }
  return position
}

/** A set of vnodes in ring order, answering "who owns this position" by binary search. */
export class VnodeRing {
  readonly vnodes: readonly VnodeRef[]
  readonly #ids: BigUint64Array

  constructor(vnodes: readonly VnodeRef[]) {
    if (vnodes.length === 0) throw new InvalidArgumentError('a ring needs at least one vnode')
    this.vnodes = [...vnodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    this.#ids = BigUint64Array.from(this.vnodes, (vnode) => vnode.id)
  }

  /** Index of the first vnode whose id is >= position, or the vnode count when none is. */
  #successorIndex(position: bigint): number {
    let lo = 0
    let hi = this.#ids.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.#ids[mid] < position) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** The vnode that owns `position`. */
  successor(position: bigint): VnodeRef {
    const index = this.#successorIndex(position)
    return this.vnodes[index === this.vnodes.length ? 0 : index]
  }

  /** Start of the arc a vnode owns (exclusive): its predecessor's id. */
  arcStart(vnode: VnodeRef): bigint {
    const index = this.vnodes.indexOf(vnode)
    return this.vnodes[(index + this.vnodes.length - 1) % this.vnodes.length].id
  }

  /** The pieces of [hashMin, hashMax] (hashMin <= hashMax) in ring order, one per owning vnode. */
  segments(hashMin: bigint, hashMax: bigint): RangeSegment[] {
    const segments: RangeSegment[] = []
    let index = this.#successorIndex(hashMin)
    let from = hashMin
    while (from <= hashMax) {
      if (index === this.vnodes.length) {
        segments.push({ owner: this.vnodes[0], hashMin: from, hashMax })
        break
      }
      const owner = this.vnodes[index]
      segments.push({ owner, hashMin: from, hashMax: owner.id < hashMax ? owner.id : hashMax })
      from = owner.id + 1n
      index++
    }
    return segments
  }
}
