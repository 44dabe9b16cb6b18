// Where a node's values live: the entry records shared by the ordered index and the value stores,
// and the ValueStore interface that the memory and LMDB implementations fulfil.

import type { NodeKey } from '../shared/keys.js'

/** A key and its place in ring order: what a store needs to find the key's record. */
export interface PlacedEntry {
  readonly key: NodeKey
  /**
   * The model's input for the key; ring order is the order of `encoded` under every model version
   * that shares a key code. A model with another key code encodes byte keys anew (the store does).
   */
  encoded: number
}

/** A deleted key, kept (with the delete's version) so that an older copy never brings it back. */
export interface Tombstone extends PlacedEntry {
  version: number
  origin: number
}

/** One stored key: its identity, its place in ring order, its version and its value (or where to read it). */
export interface StoredEntry extends Tombstone {
  /** Serialized value size in bytes. */
  size: number
  /** The serialized value while it is held in memory (always for the memory store, until committed for LMDB). */
  value: Uint8Array | undefined
}

/** An entry (or a tombstone) found in a durable store when it opens. */
export interface RestoredEntry {
  key: NodeKey
  encoded: number
  size: number
  version: number
  origin: number
  deleted: boolean
}

/** Persistence of values (and of the node's small metadata, such as its model). */
export interface ValueStore {
  /** 'memory' or 'lmdb'. */
  readonly kind: string
  /**
   * True when values vanish with the process: the LocalStore then keeps them in its own memory
   * (packed, not on entry objects) and calls only the metadata methods and `open`/`close`.
   */
  readonly volatile?: boolean
  open(): Promise<void>
  close(): Promise<void>
  /** Entries and tombstones written by an earlier run, in ring order. */
  restore(): RestoredEntry[]
  /** The serialized value of a stored entry. */
  read(entry: StoredEntry): Uint8Array | undefined
  /** Stores values of entries (new or updated); resolves once they are durable. Readable at once. */
  write(updates: ReadonlyArray<readonly [StoredEntry, Uint8Array]>): Promise<void>
  /** Records deletes (replacing any value of their keys); resolves once they are durable. */
  writeTombstones(tombstones: readonly Tombstone[]): Promise<void>
  /** Drops the records of keys (values or tombstones); resolves once that is durable. */
  remove(entries: readonly PlacedEntry[]): Promise<void>
  readMeta(name: string): Uint8Array | undefined
  writeMeta(name: string, value: Uint8Array): Promise<void>
}
