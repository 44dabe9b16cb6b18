// The local data-plane operations of a node, by key and by ring position, on serialized values.
// LeadNode calls them on its own store; the overlay calls them when serving a remote peer.

import type { NodeKey } from './keys.js'
import type { Stamp } from './stamp.js'

/** A key with its serialized value (the form values are stored in and cross the wire in). */
export interface StoredRecord {
  key: NodeKey
  value: Uint8Array
}

/** A stored record with its ring position under the store's current model version. */
export interface ScannedRecord extends StoredRecord {
  position: bigint
  /**
   * Which write of the key this is, when the record moves between peers (hand-overs, migration,
   * replication, repair). A tombstone (`stamp.deleted`) has an empty value.
   */
  stamp?: Stamp
}

/** Exact filters applied while scanning an arc, so that only matching records leave the store. */
export interface ScanFilter {
  /** Keep keys `k` of the bounds' family with `min <= k <= max`. */
  keyRange?: { min: NodeKey; max: NodeKey }
  /** Keep point keys inside the box (inclusive in every dimension). */
  box?: { min: readonly number[]; max: readonly number[] }
}

/**
 * Operations on the entries a peer stores. Positions are read under `modelVersion`;
 * a scan's bounds are inclusive and never wrap (callers split a wrapping range in two).
 * Keyed operations may be given the keys' positions when the caller already predicted them (a
 * remote plane sends those instead of predicting again); the local store ignores them.
 */
export interface DataPlane {
  /** Version of the learned model that places this store's entries. */
  readonly modelVersion: number
  put(record: StoredRecord, position?: bigint): Promise<void>
  putMany(records: readonly StoredRecord[], positions?: ArrayLike<bigint>): Promise<void>
  /** The serialized value, or undefined when the key is absent. */
  get(key: NodeKey, position?: bigint): Promise<Uint8Array | undefined>
  getMany(keys: readonly NodeKey[], positions?: ArrayLike<bigint>): Promise<Array<Uint8Array | undefined>>
  /** True when the key was present. */
  delete(key: NodeKey, position?: bigint): Promise<boolean>
  deleteMany(keys: readonly NodeKey[], positions?: ArrayLike<bigint>): Promise<boolean[]>
  /** Records whose position lies in [hashMin, hashMax], in position order, passing `filter`. */
  scan(hashMin: bigint, hashMax: bigint, filter?: ScanFilter): Promise<ScannedRecord[]>
  /** Removes and returns the records whose position lies in [hashMin, hashMax] (hand-off to a new owner). */
  extract(hashMin: bigint, hashMax: bigint): Promise<ScannedRecord[]>
}
