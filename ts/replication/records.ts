// Sizes of stamped records on the wire, and their split into messages that fit a byte budget.

import type { ScannedRecord } from '../shared/data-plane.js'

/** Approximate bytes of a record in a message: its value and room for key, position and version. */
export function recordBytes(record: ScannedRecord): number {
  return record.value.byteLength + 32
}

/** Splits records into messages of about `budget` bytes (a record larger than that goes alone). */
export function chunks(records: readonly ScannedRecord[], budget: number): ScannedRecord[][] {
  const out: ScannedRecord[][] = []
  let current: ScannedRecord[] = []
  let bytes = 0
  for (const record of records) {
    if (current.length > 0 && bytes + recordBytes(record) > budget) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(record)
    bytes += recordBytes(record)
  }
  if (current.length > 0) out.push(current)
  return out
}
