// Range results as an async iterator: the owners of a range are asked one piece at a time, as the
// consumer reads, and none further once `limit` entries were given (a piece is one peer's part).

import { InvalidArgumentError } from '../errors.js'
import type { ScannedRecord } from '../shared/data-plane.js'
import { RangeEntry } from './range-entry.js'

/** Options of `LeadNode.iterateRange` and `iterateRangeKeys`. */
export interface RangeIterationOptions {
  /** Most entries given; the owners of the rest of the range are not asked. Default: no limit. */
  limit?: number
  /** Ends the iteration: the next read rejects with the signal's reason. */
  signal?: AbortSignal
}

/** The next piece of a range: the part of [from, to] that one peer owns, starting at `from`. */
export interface RangePiece {
  /** Last position of the piece (inclusive). */
  hashMax: bigint
  /** The piece's records, in position order. */
  scan(): Promise<ScannedRecord[]>
}

/** How the iterator reaches owners: the first piece of [from, to] at its current owner. */
export type NextPiece = (from: bigint, to: bigint, signal?: AbortSignal) => Promise<RangePiece>

/** @throws InvalidArgumentError unless `limit` is a non-negative integer or Infinity */
export function checkLimit(limit: number): void {
  if (!(limit === Number.POSITIVE_INFINITY || (Number.isSafeInteger(limit) && limit >= 0)))
    throw new InvalidArgumentError(`limit must be a non-negative integer, got ${String(limit)}`)
}

/**
 * The entries of `arcs` (each [hashMin, hashMax], in order), piece by piece. Each piece is looked up
 * when the previous one is used up, so a ring that changed meanwhile is asked at its current owners.
 */
export async function* iterateArcs<V>(
  arcs: ReadonlyArray<readonly [bigint, bigint]>,
  nextPiece: NextPiece,
  { limit = Number.POSITIVE_INFINITY, signal }: RangeIterationOptions,
): AsyncGenerator<RangeEntry<V>, void, undefined> {
  let left = limit
  for (const [hashMin, hashMax] of arcs) {
    let from = hashMin
    while (left > 0) {
      signal?.throwIfAborted()
      const piece = await nextPiece(from, hashMax, signal)
      for (const record of await piece.scan()) {
        yield new RangeEntry<V>(record)
        if (--left === 0) return
      }
      if (piece.hashMax >= hashMax) break
      from = piece.hashMax + 1n
    }
  }
}
