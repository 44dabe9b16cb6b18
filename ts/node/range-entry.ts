// An entry returned by a range query. Its value is decoded on first access: a query that reads
// only keys and positions (counting, paging, routing) never pays for decoding values.

import type { ScannedRecord } from '../shared/data-plane.js'
import type { NodeKey } from '../shared/keys.js'
import { deserializeValue } from './value-codec.js'

/** A key, its ring position and its value (decoded when first read, then kept). */
export class RangeEntry<V = unknown> {
  readonly key: NodeKey
  readonly position: bigint
  #bytes: Uint8Array | undefined
  #start: number
  #end: number
  #value: V | undefined

  /** The serialized value is `record.value[start..end)` (all of it by default). */
  constructor(record: ScannedRecord, start = 0, end = record.value.length) {
    this.key = record.key
    this.position = record.position
    this.#bytes = record.value
    this.#start = start
    this.#end = end
  }

  get value(): V {
    if (this.#bytes !== undefined) {
      this.#value = deserializeValue(this.#bytes, this.#start, this.#end) as V
      this.#bytes = undefined
    }
    return this.#value as V
  }

  /** A plain `{ key, value, position }` object (for logging, JSON with a bigint replacer, deep equality). */
  toJSON(): { key: NodeKey; value: V; position: bigint } {
    return { key: this.key, value: this.value, position: this.position }
  }
}
