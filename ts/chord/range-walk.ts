// The range walk: split a position range (possibly wrapping past zero) into per-owner segments.
// Used with a full ring view by the simulator and with learned arcs by the live range query.

import type { RangeSegment } from '../shared/router.js'
import type { OwnedArc } from './arcs.js'
import type { NodeRef } from './lookup.js'
import { advance, clockwiseDistance } from './ring.js'

/** Segments in ring order from `low`, and where the walk stopped when an arc was unknown. */
export interface RangeWalk<R extends NodeRef> {
  segments: RangeSegment<R>[]
  /** First position of `[low, high]` whose owner `arcAt` did not know; absent when complete. */
  unknownFrom?: bigint
}

/**
 * Walks `[low, high]` (inclusive; `low > high` wraps past zero) clockwise, one owning arc at a
 * time, as far as `arcAt` knows the arcs.
 */
export function rangeWalk<R extends NodeRef>(
  low: bigint,
  high: bigint,
  arcAt: (position: bigint) => OwnedArc<R> | undefined,
  hashSpaceSize: bigint,
): RangeWalk<R> {
  const segments: RangeSegment<R>[] = []
  let cursor = low
  for (;;) {
    const arc = arcAt(cursor)
    if (arc === undefined) return { segments, unknownFrom: cursor }
    const remaining = clockwiseDistance(cursor, high, hashSpaceSize)
    if (remaining <= clockwiseDistance(cursor, arc.owner.id, hashSpaceSize)) {
      segments.push({ owner: arc.owner, hashMin: cursor, hashMax: high })
      return { segments }
    }
    segments.push({ owner: arc.owner, hashMin: cursor, hashMax: arc.owner.id })
    cursor = advance(arc.owner.id, 1n, hashSpaceSize)
  }
}
