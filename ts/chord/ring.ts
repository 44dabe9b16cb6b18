// Arithmetic on the Chord ring: positions are bigints in [0, hashSpaceSize), arcs wrap past zero.
// Pure functions with no notion of nodes or transport, shared by the live overlay and the simulator.

import { createHash } from 'node:crypto'
import { InvalidArgumentError } from '../errors.js'

/**
 * Whether `position` lies on the half-open arc `(from, to]`, walking clockwise from `from`.
 * An arc whose ends coincide covers the whole ring (a lone node owns everything).
 */
export function inHalfOpenArc(position: bigint, from: bigint, to: bigint): boolean {
  if (from < to) return from < position && position <= to
  if (from > to) return position > from || position <= to
  return true
}

/**
 * Whether `position` lies strictly inside the arc `(from, to)`, walking clockwise from `from`.
 * With coinciding ends this is every position except that end.
 */
export function inOpenArc(position: bigint, from: bigint, to: bigint): boolean {
  if (from < to) return from < position && position < to
  if (from > to) return position > from || position < to
  return position !== from
}

/** Whether `position` lies in the inclusive range `[low, high]`; `low > high` wraps past zero. */
export function inRange(position: bigint, low: bigint, high: bigint): boolean {
  return low <= high ? low <= position && position <= high : position >= low || position <= high
}

/** Steps walked clockwise from `from` to reach `to` (0 when they coincide). */
export function clockwiseDistance(from: bigint, to: bigint, hashSpaceSize: bigint): bigint {
  const distance = (to - from) % hashSpaceSize
  return distance < 0n ? distance + hashSpaceSize : distance
}

/** `position + steps` on the ring. */
export function advance(position: bigint, steps: bigint, hashSpaceSize: bigint): bigint {
  return (((position + steps) % hashSpaceSize) + hashSpaceSize) % hashSpaceSize
}

/**
 * The inclusive range `[low, high]` (`low > high` wraps past zero) as at most two ranges that do
 * not wrap, in ring order from `low`.
 */
export function unwrappedRanges(low: bigint, high: bigint, hashSpaceSize: bigint): Array<[bigint, bigint]> {
  return low <= high
    ? [[low, high]]
    : [
        [low, hashSpaceSize - 1n],
        [0n, high],
      ]
}

/** The arc `(from, to]` as inclusive ranges that do not wrap (an arc whose ends coincide is the whole ring). */
export function arcRanges(from: bigint, to: bigint, hashSpaceSize: bigint): Array<[bigint, bigint]> {
  return unwrappedRanges(advance(from, 1n, hashSpaceSize), to, hashSpaceSize)
}

/** Where vnode `index` of a peer sits: a hash of the peer id and the index, so peers spread evenly. */
export function vnodePosition(peerId: string, index: number, hashSpaceSize: bigint): bigint {
  return createHash('sha256').update(`${peerId}/${index}`).digest().readBigUInt64BE(0) % hashSpaceSize
}

/** Number of fingers a vnode keeps: one per power of two below the size of the ring. */
export function fingerCount(hashSpaceSize: bigint): number {
  return (hashSpaceSize - 1n).toString(2).length
}

/** Start of finger `index`: the position `2^index` steps clockwise from `id`. */
export function fingerStart(id: bigint, index: number, hashSpaceSize: bigint): bigint {
  return advance(id, 1n << BigInt(index), hashSpaceSize)
}

/**
 * Checks that a hash space can carry a ring: a bigint of at least 2 that fits in 64 bits
 * (positions cross the wire as 64-bit integers).
 * @throws InvalidArgumentError naming the field
 */
export function checkHashSpaceSize(hashSpaceSize: bigint): void {
  if (typeof hashSpaceSize !== 'bigint' || hashSpaceSize < 2n || hashSpaceSize > 2n ** 64n) {
    throw new InvalidArgumentError(
      `hashSpaceSize must be a bigint in [2, 2^64], got ${String(hashSpaceSize)}`,
    )
  }
}

/**
 * Checks that `position` is a bigint in `[0, hashSpaceSize)`.
 * @throws InvalidArgumentError naming `field`
 */
export function checkPosition(position: bigint, hashSpaceSize: bigint, field = 'position'): void {
  if (typeof position !== 'bigint' || position < 0n || position >= hashSpaceSize) {
    throw new InvalidArgumentError(
      `${field} must be a bigint in [0, ${hashSpaceSize}), got ${String(position)}`,
    )
  }
}
