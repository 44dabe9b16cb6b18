// Messages cut to fit a frame: a Get answer carries the values of a prefix of its keys, a scan page
// ends where its bytes do (even inside one position), a hand-over's entries travel in parts.

import type { ScannedRecord } from '../shared/data-plane.js'
import type { NodeKey } from '../shared/keys.js'

/** Estimated wire bytes of one value in an answer beyond its bytes (msgpack header, slot). */
const VALUE_OVERHEAD = 16

/** The payload an answer may carry on a stream of `maxFrameSize`: half a frame, the rest is slack. */
export function answerBudget(maxFrameSize: number): number {
  return Math.floor(maxFrameSize / 2)
}

/**
 * The longest prefix of `values` whose bytes fit `budget`, and never less than one value (a value
 * fits a frame by itself: see `checkChordRouterOptions`). `values` itself when all of it fits.
 */
export function valuesWithin<T extends Uint8Array | undefined>(values: T[], budget: number): T[] {
  let bytes = 0
  for (let i = 0; i < values.length; i++) {
    bytes += (values[i]?.byteLength ?? 0) + VALUE_OVERHEAD
    if (bytes > budget && i > 0) return values.slice(0, i)
  }
  return values
}

/** A page of scanned records and where the next page starts. */
export interface RecordPage {
  records: ScannedRecord[]
  /** Position the next page starts at; null when this page ends the range. */
  resumeFrom: bigint | null
  /** Set when the page ends inside one position: the next page skips that position's keys up to here. */
  resumeAfter: NodeKey | null
}

/** Estimated wire bytes of a record beyond its value. */
const RECORD_OVERHEAD = 32

/** Wire bytes of a record, estimated. */
export function recordBytes(record: ScannedRecord): number {
  return record.value.byteLength + RECORD_OVERHEAD
}

/** The longest prefix of `records` whose bytes fit `budget`, never fewer than one record. */
export function recordsWithin(records: ScannedRecord[], budget: number): ScannedRecord[] {
  let bytes = 0
  let cut = 0
  while (cut < records.length && (cut === 0 || bytes + recordBytes(records[cut]) <= budget))
    bytes += recordBytes(records[cut++])
  return cut === records.length ? records : records.slice(0, cut)
}

/** `records` cut into consecutive parts of at most `budget` bytes each (or one record); at least one part. */
export function partsWithin(records: ScannedRecord[], budget: number): ScannedRecord[][] {
  const parts: ScannedRecord[][] = [[]]
  let bytes = 0
  for (const record of records) {
    const size = recordBytes(record)
    let part = parts[parts.length - 1]
    if (part.length > 0 && bytes + size > budget) {
      part = []
      parts.push(part)
      bytes = 0
    }
    part.push(record)
    bytes += size
  }
  return parts
}

/**
 * Cuts records (in ring order) to at most `budget` bytes, and never fewer than one record. The cut
 * may fall between two records of one position: keys that share an encoded value share a position,
 * and any number of them may have large values. `next` is where the range goes on after `records`.
 */
export function pageOf(records: ScannedRecord[], budget: number, next: bigint | null): RecordPage {
  const cut = recordsWithin(records, budget).length
  if (cut === records.length) return { records, resumeFrom: next, resumeAfter: null }
  const last = records[cut - 1]
  const inside = records[cut].position === last.position
  return {
    records: records.slice(0, cut),
    resumeFrom: records[cut].position,
    resumeAfter: inside ? last.key : null,
  }
}

/**
 * The records after `after` at position `from` (those before it were sent in an earlier page), in
 * the ring order `compare` gives within a position; records are in ring order.
 */
export function recordsAfter(
  records: ScannedRecord[],
  from: bigint,
  after: NodeKey | null | undefined,
  compare: (a: NodeKey, b: NodeKey) => number,
): ScannedRecord[] {
  if (after === null || after === undefined) return records
  let skip = 0
  while (skip < records.length && records[skip].position === from && compare(records[skip].key, after) <= 0)
    skip++
  return skip === 0 ? records : records.slice(skip)
}
