// Positions on the ring of a node without a network: where its vnodes sit, and checked positions.

import { InvalidArgumentError } from '../errors.js'

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
