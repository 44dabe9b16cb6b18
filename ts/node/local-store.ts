// The entries this peer stores, in ring order: a map for exact lookups by key, an ordered index
// for position scans, and a value store (memory or LMDB). It is the node's DataPlane.

import { InvalidArgumentError, InvalidKeyError } from '../errors.js'
import { RingIndex } from '../storage/ring-index.js'
import type { StoredEntry, ValueStore } from '../storage/value-store.js'
import type { DataPlane, ScanFilter, ScannedRecord, StoredRecord } from './data-plane.js'
import { ValueTooLargeError } from './errors.js'
import {
  checkNodeKey,
  compareAnyKeys,
  compareKeys,
  KeyMap,
  keyByteLength,
  keyFamily,
  type NodeKey,
  ownKey,
} from './keys.js'
import type { LearnedHash } from './learned-hash.js'

export interface LocalStoreInit {
  learnedHash: LearnedHash
  values: ValueStore
  maxValueBytes: number
  maxKeyBytes: number
  /** Called with the encoded form of keys that were not stored before. */
  onNewKeys?: (encoded: Float64Array) => void
}

/** A prediction of the current model next to the true scaled rank of the key. */
export interface PredictionProbe {
  encoded: number
  predicted: bigint
  /** The key's rank scaled to the hash space (a double: errors are only ever compared as fractions). */
  actual: number
}

/** Ring order: by encoded key (so by position under any model), ties broken by the keys themselves. */
function compareEntries(a: StoredEntry, b: StoredEntry): number {
  return a.encoded - b.encoded || compareAnyKeys(a.key, b.key)
}

const compareTiedEntries = (a: StoredEntry, b: StoredEntry): number => compareAnyKeys(a.key, b.key)

/** Entries scanned between two yields to the event loop when re-positioning after a retrain. */
const REPOSITION_BATCH = 4096

function insideBox(point: readonly number[], box: NonNullable<ScanFilter['box']>): boolean {
  for (let d = 0; d < point.length; d++) if (point[d] < box.min[d] || point[d] > box.max[d]) return false
  return true
}

/** This peer's entries. All methods are safe to call while a retrain swaps the model. */
export class LocalStore implements DataPlane {
  readonly #learnedHash: LearnedHash
  readonly #values: ValueStore
  readonly #maxValueBytes: number
  readonly #maxKeyBytes: number
  readonly #onNewKeys: (encoded: Float64Array) => void
  readonly #entries = new KeyMap<StoredEntry>()
  readonly #index: RingIndex<StoredEntry>
  #bytes = 0
  /** While a model rollout moves entries: the write number of every key written or deleted since. */
  #lastWrites: KeyMap<number> | null = null
  #writes = 0

  constructor(init: LocalStoreInit) {
    this.#learnedHash = init.learnedHash
    this.#values = init.values
    this.#maxValueBytes = init.maxValueBytes
    this.#maxKeyBytes = init.maxKeyBytes
    this.#onNewKeys = init.onNewKeys ?? (() => {})
    const learnedHash = init.learnedHash
    this.#index = new RingIndex<StoredEntry>(compareTiedEntries, {
      version: () => learnedHash.version,
      place: (keys, out) => learnedHash.model.predictMany(keys, out),
    })
    learnedHash.onKeyCodeChange(() => this.#recode())
  }

  /**
   * Encodes every key again under the model just installed, whose key code differs, and re-sorts
   * the index (the order of byte keys against numbers changes with the code). Synchronous, so
   * no operation sees a half-encoded index.
   */
  #recode(): void {
    const entries = this.#index.entries()
    const encoded = this.#learnedHash.encodeMany(entries.map((entry) => entry.key))
    for (let i = 0; i < entries.length; i++) entries[i].encoded = encoded[i]
    entries.sort(compareEntries)
    this.#index.load(entries)
  }

  /** Up to `limit` stored keys, evenly spread over the ring order (all of them when they fit). */
  sampleKeys(limit: number): NodeKey[] {
    const entries = this.#index.entries()
    if (entries.length <= limit) return entries.map((entry) => entry.key)
    const step = entries.length / limit
    return Array.from({ length: limit }, (_, i) => entries[Math.floor(i * step)].key)
  }

  get modelVersion(): number {
    return this.#learnedHash.version
  }

  /** Number of stored keys. */
  get size(): number {
    return this.#index.size
  }

  /** Total size of the stored (serialized) values. */
  get bytes(): number {
    return this.#bytes
  }

  /** Opens the value store and loads the entries it already holds (in ring order). */
  async open(): Promise<void> {
    await this.#values.open()
    const restored = this.#values.restore()
    const entries = restored.map(
      ({ key, encoded, size }): StoredEntry => ({ key, encoded, size, value: undefined }),
    )
    entries.sort(compareEntries)
    for (const entry of entries) {
      this.#entries.set(entry.key, entry)
      this.#bytes += entry.size
    }
    this.#index.load(entries)
  }

  async close(): Promise<void> {
    await this.#values.close()
    this.#entries.clear()
    this.#index.clear()
    this.#bytes = 0
  }

  #checkRecord(record: StoredRecord, at: string): void {
    if (typeof record !== 'object' || record === null)
      throw new InvalidArgumentError(`${at} must be a record`)
    checkNodeKey(record.key, this.#learnedHash.dims)
    if (keyByteLength(record.key) > this.#maxKeyBytes) {
      throw new InvalidKeyError(`${at} key is longer than maxKeyBytes (${this.#maxKeyBytes} bytes)`)
    }
    if (!(record.value instanceof Uint8Array))
      throw new InvalidArgumentError(`${at} value must be a Uint8Array`)
    if (record.value.length > this.#maxValueBytes) {
      throw new ValueTooLargeError(record.value.length, this.#maxValueBytes)
    }
  }

  async put(record: StoredRecord): Promise<void> {
    this.#checkRecord(record, 'record')
    await this.#apply([record], Float64Array.of(this.#learnedHash.encode(record.key)))
  }

  async putMany(records: readonly StoredRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i++) this.#checkRecord(records[i], `records[${i}]`)
    await this.#apply(records, this.#learnedHash.encodeMany(records.map((record) => record.key)))
  }

  /**
   * Stores checked records; the index changes at once, the promise resolves when the values are
   * durable. `fromClient` false: entries handed over by a peer, which are not new to the ring.
   */
  #apply(records: readonly StoredRecord[], encoded: Float64Array, fromClient = true): Promise<void> {
    const updates: Array<readonly [StoredEntry, Uint8Array]> = []
    const fresh: StoredEntry[] = []
    for (let i = 0; i < records.length; i++) {
      const { key, value } = records[i]
      this.#lastWrites?.set(key, ++this.#writes)
      let entry = this.#entries.get(key)
      if (entry === undefined) {
        const owned = ownKey(key)
        entry = { key: owned, encoded: encoded[i], size: 0, value: undefined }
        this.#entries.set(owned, entry)
        fresh.push(entry)
      }
      this.#bytes += value.length - entry.size
      entry.size = value.length
      updates.push([entry, value])
    }
    if (fresh.length > 0) {
      const freshEncoded = new Float64Array(fresh.length)
      for (let j = 0; j < fresh.length; j++) freshEncoded[j] = fresh[j].encoded
      const model = this.#learnedHash.model
      if (fresh.length === 1) this.#index.insert(fresh[0], model.predict(freshEncoded[0]))
      else {
        const positions = model.predictMany(freshEncoded)
        for (let j = 0; j < fresh.length; j++) this.#index.insert(fresh[j], positions[j])
      }
      if (fromClient) this.#onNewKeys(freshEncoded)
    }
    return this.#values.write(updates)
  }

  async get(key: NodeKey): Promise<Uint8Array | undefined> {
    checkNodeKey(key, this.#learnedHash.dims)
    const entry = this.#entries.get(key)
    return entry === undefined ? undefined : this.#values.read(entry)
  }

  async getMany(keys: readonly NodeKey[]): Promise<Array<Uint8Array | undefined>> {
    const dims = this.#learnedHash.dims
    for (const key of keys) checkNodeKey(key, dims)
    return keys.map((key) => {
      const entry = this.#entries.get(key)
      return entry === undefined ? undefined : this.#values.read(entry)
    })
  }

  async delete(key: NodeKey): Promise<boolean> {
    const [deleted] = await this.deleteMany([key])
    return deleted
  }

  async deleteMany(keys: readonly NodeKey[]): Promise<boolean[]> {
    const dims = this.#learnedHash.dims
    for (const key of keys) checkNodeKey(key, dims)
    const removed: StoredEntry[] = []
    const deleted = keys.map((key) => {
      this.#lastWrites?.set(key, ++this.#writes)
      const entry = this.#entries.get(key)
      if (entry === undefined) return false
      this.#forget(entry)
      removed.push(entry)
      return true
    })
    if (removed.length > 0) await this.#values.remove(removed)
    return deleted
  }

  #forget(entry: StoredEntry): void {
    this.#entries.delete(entry.key)
    this.#index.remove(entry)
    this.#bytes -= entry.size
  }

  async scan(hashMin: bigint, hashMax: bigint, filter: ScanFilter = {}): Promise<ScannedRecord[]> {
    return this.scanSync(hashMin, hashMax, filter)
  }

  /** `scan`, without the promise (for callers on this peer). */
  scanSync(hashMin: bigint, hashMax: bigint, filter: ScanFilter = {}): ScannedRecord[] {
    const keep = this.#filterOf(filter)
    const found: ScannedRecord[] = []
    this.#index.scan(hashMin, hashMax, (entry, position) => {
      if (keep(entry)) found.push({ key: entry.key, value: this.#read(entry), position })
    })
    return found
  }

  #read(entry: StoredEntry): Uint8Array {
    const value = this.#values.read(entry)
    if (value === undefined)
      throw new Error(`value of a stored key is missing from the ${this.#values.kind} store`)
    return value
  }

  #filterOf({ keyRange, box }: ScanFilter): (entry: StoredEntry) => boolean {
    if (box !== undefined) return (entry) => Array.isArray(entry.key) && insideBox(entry.key, box)
    if (keyRange === undefined) return () => true
    const family = keyFamily(keyRange.min)
    const low = this.#learnedHash.encode(keyRange.min)
    const high = this.#learnedHash.encode(keyRange.max)
    return (entry) => {
      if (keyFamily(entry.key) !== family) return false
      // Encoding preserves order within a family: only keys that share a bound's encoding need comparing.
      if (entry.encoded < low || entry.encoded > high) return false
      if (entry.encoded === low && compareKeys(entry.key, keyRange.min) < 0) return false
      return entry.encoded !== high || compareKeys(entry.key, keyRange.max) <= 0
    }
  }

  async extract(hashMin: bigint, hashMax: bigint): Promise<ScannedRecord[]> {
    const taken: StoredEntry[] = []
    const records: ScannedRecord[] = []
    this.#index.scan(hashMin, hashMax, (entry, position) => {
      taken.push(entry)
      records.push({ key: entry.key, value: this.#read(entry), position })
    })
    for (const entry of taken) this.#forget(entry)
    if (taken.length > 0) await this.#values.remove(taken)
    return records
  }

  /** Keys and value bytes stored in [hashMin, hashMax]. */
  measure(hashMin: bigint, hashMax: bigint): { keys: number; bytes: number } {
    let keys = 0
    let bytes = 0
    this.#index.scan(hashMin, hashMax, (entry) => {
      keys++
      bytes += entry.size
    })
    return { keys, bytes }
  }

  /**
   * The current model's prediction for `count` stored keys spread evenly over the ring order,
   * next to each key's true position (its rank scaled to the hash space).
   */
  probePredictions(count: number, random: () => number = Math.random): PredictionProbe[] {
    const size = this.#index.size
    if (size === 0) return []
    const step = size / Math.min(count, size)
    const offset = random() * step
    const ranks = Array.from({ length: Math.min(count, size) }, (_, i) =>
      Math.min(size - 1, Math.floor(offset + i * step)),
    )
    const positionsPerRank = Number(this.#learnedHash.options.hashSpaceSize) / size
    return this.#index.atRanks(ranks).map(({ entry, position }, i) => ({
      encoded: entry.encoded,
      predicted: position,
      actual: ranks[i] * positionsPerRank,
    }))
  }

  /** Every `stride`-th stored position (the middle one of each stride), in ring order. */
  samplePositions(stride: number): bigint[] {
    const ranks: number[] = []
    for (let rank = Math.floor(stride / 2); rank < this.#index.size; rank += stride) ranks.push(rank)
    return this.#index.atRanks(ranks).map((placed) => placed.position)
  }

  /** The encoded form of every stored key, in ring order. */
  encodedKeys(): Float64Array {
    return this.#index.encodedKeys()
  }

  // --- migration after a model rollout ------------------------------------------------------

  /**
   * Starts remembering which keys are written or deleted, so that entries arriving from their
   * previous owner never overwrite a newer write or bring a deleted key back.
   */
  trackWrites(): void {
    this.#lastWrites ??= new KeyMap<number>()
  }

  /** Ends write tracking (every peer has finished migrating). */
  stopTrackingWrites(): void {
    this.#lastWrites = null
  }

  /** The number of the latest write, to pass to `removeMigrated` later. */
  get writeCount(): number {
    return this.#writes
  }

  /**
   * Up to about `limit` records from position `from` on that `owns` says this peer no longer owns,
   * and where to continue (null at the end of the ring). Records of one position are never split.
   */
  misplaced(
    from: bigint,
    limit: number,
    owns: (position: bigint) => boolean,
  ): { records: ScannedRecord[]; next: bigint | null } {
    const records: ScannedRecord[] = []
    let next: bigint | null = null
    let last = -1n
    this.#index.scan(from, this.#learnedHash.options.hashSpaceSize - 1n, (entry, position) => {
      if (records.length >= limit && position !== last) {
        next = position
        return false
      }
      if (!owns(position)) {
        records.push({ key: entry.key, value: this.#read(entry), position })
        last = position
      }
    })
    return { records, next }
  }

  /**
   * Stores entries handed over by their previous owner, except keys written or deleted here since
   * tracking began (those are newer). Returns how many were stored.
   */
  async putUntouched(records: readonly ScannedRecord[]): Promise<number> {
    const written = this.#lastWrites
    const fresh =
      written === null ? records : records.filter((record) => written.get(record.key) === undefined)
    for (let i = 0; i < fresh.length; i++) this.#checkRecord(fresh[i], `records[${i}]`)
    if (fresh.length === 0) return 0
    // A hand-over is not a client write: it must not shadow a later one. (#apply is synchronous
    // up to its durable write, so only these records go untracked.)
    this.#lastWrites = null
    let durable: Promise<void>
    try {
      durable = this.#apply(fresh, this.#learnedHash.encodeMany(fresh.map((record) => record.key)), false)
    } finally {
      this.#lastWrites = written
    }
    await durable
    return fresh.length
  }

  /**
   * Removes records its new owner has acknowledged, except keys written since `writeCount` was
   * `since` (a hand-over from a leaving neighbour may have brought them back here meanwhile) and
   * those `owns` says are this peer's again (an arc taken over while they were on their way: the
   * owner that acknowledged them may be this peer).
   */
  async removeMigrated(
    records: readonly ScannedRecord[],
    since: number,
    owns: (position: bigint) => boolean,
  ): Promise<void> {
    const removed: StoredEntry[] = []
    for (const { key, position } of records) {
      const entry = this.#entries.get(key)
      if (entry === undefined || (this.#lastWrites?.get(key) ?? 0) > since || owns(position)) continue
      this.#forget(entry)
      removed.push(entry)
    }
    if (removed.length > 0) await this.#values.remove(removed)
  }

  /**
   * Removes the copies of records handed to another owner, except those whose position under the
   * current model `owns` says is this peer's (one of its vnodes took that part of the arc back, or
   * a new model placed it here). By key, not by arc: the arc may hold other entries by now.
   */
  async removeCopies(records: readonly StoredRecord[], owns: (position: bigint) => boolean): Promise<void> {
    const entries: StoredEntry[] = []
    for (const { key } of records) {
      const entry = this.#entries.get(key)
      if (entry !== undefined) entries.push(entry)
    }
    if (entries.length === 0) return
    const positions = this.#learnedHash.model.predictMany(
      Float64Array.from(entries, (entry) => entry.encoded),
    )
    const removed = entries.filter((_, i) => !owns(positions[i]))
    for (const entry of removed) this.#forget(entry)
    if (removed.length > 0) await this.#values.remove(removed)
  }

  /**
   * Brings every entry's cached position up to the current model version, a batch at a time,
   * yielding to the event loop between batches so that reads and writes keep flowing.
   */
  async reposition(): Promise<void> {
    await this.#index.refresh(() => new Promise<void>((resolve) => setImmediate(resolve)), REPOSITION_BATCH)
  }
}
