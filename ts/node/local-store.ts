// The entries this peer stores, in ring order: a map for exact lookups by key, an ordered index
// for position scans, tombstones of deleted keys, and a value store (memory or LMDB). Every entry
// carries a version; entries arriving from peers replace a key's entry only when newer. The node's DataPlane.

import { InvalidArgumentError } from '../errors.js'
import { RingIndex } from '../storage/ring-index.js'
import { compareStamps, HybridClock, type Stamp, versionTime } from '../storage/stamp.js'
import type { StoredEntry, Tombstone, ValueStore } from '../storage/value-store.js'
import type { DataPlane, ScanFilter, ScannedRecord, StoredRecord } from './data-plane.js'
import { ValueTooLargeError } from './errors.js'
import { checkNodeKey, compareAnyKeys, compareKeys, KeyMap, keyFamily, type NodeKey, ownKey } from './keys.js'
import type { LearnedHash } from './learned-hash.js'
import { checkStorableKey } from './write-batch.js'

export interface LocalStoreInit {
  learnedHash: LearnedHash
  values: ValueStore
  maxValueBytes: number
  maxKeyBytes: number
  /** Called with the encoded form of keys that were not stored before. */
  onNewKeys?: (encoded: Float64Array) => void
}

/** A record to store with its version: a value, or a tombstone (`stamp.deleted`). */
interface StampedRecord {
  key: NodeKey
  value: Uint8Array
  stamp: Stamp
}

const EMPTY = new Uint8Array(0)

/** A prediction of the current model next to the true scaled rank of the key. */
export interface PredictionProbe {
  encoded: number
  predicted: bigint
  /** The key's rank scaled to the hash space (a double: errors are only ever compared as fractions). */
  actual: number
}

/** Ring order: by encoded key (so by position under any model), ties broken by the keys themselves. */
function compareEntries(a: { encoded: number; key: NodeKey }, b: { encoded: number; key: NodeKey }): number {
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
  readonly #tombstones = new KeyMap<Tombstone>()
  #tombstoneCount = 0
  readonly #index: RingIndex<StoredEntry>
  readonly #clock = new HybridClock()
  /** Tag of this peer in the versions it makes (see `originOf`). */
  origin = 0
  /** Positions whose entries this peer keeps even when it does not own them (it is one of their replicas). */
  #retains: (position: bigint) => boolean = () => false
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
   * the index (the order of byte keys against numbers changes with the code). Tombstones too: they
   * are placed by their codes, and a tombstone left at its old place would never match its
   * replicas' digests. Synchronous, so no operation sees a half-encoded index.
   */
  #recode(): void {
    const entries = this.#index.entries()
    const encoded = this.#learnedHash.encodeMany(entries.map((entry) => entry.key))
    for (let i = 0; i < entries.length; i++) entries[i].encoded = encoded[i]
    entries.sort(compareEntries)
    this.#index.load(entries)
    if (this.#tombstoneCount === 0) return
    const tombstones = [...this.#tombstones.values()]
    const recoded = this.#learnedHash.encodeMany(tombstones.map((tombstone) => tombstone.key))
    for (let i = 0; i < tombstones.length; i++) tombstones[i].encoded = recoded[i]
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

  /** Number of tombstones kept for deleted keys. */
  get tombstones(): number {
    return this.#tombstoneCount
  }

  /** Total size of the stored (serialized) values. */
  get bytes(): number {
    return this.#bytes
  }

  /** Opens the value store and loads the entries it already holds (in ring order). */
  async open(): Promise<void> {
    await this.#values.open()
    const entries: StoredEntry[] = []
    for (const { key, encoded, size, version, origin, deleted } of this.#values.restore()) {
      this.#clock.observe(version)
      if (deleted) this.#addTombstone({ key, encoded, version, origin })
      else entries.push({ key, encoded, size, version, origin, value: undefined })
    }
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
    this.#tombstones.clear()
    this.#tombstoneCount = 0
    this.#index.clear()
    this.#bytes = 0
  }

  /** Makes removals of copies keep the entries at positions `retains` accepts (replicas of this peer). */
  retainCopies(retains: (position: bigint) => boolean): void {
    this.#retains = retains
  }

  /** A new version, later than every one this store has made or seen. */
  newStamp(deleted: boolean): Stamp {
    return { version: this.#clock.next(), origin: this.origin, deleted }
  }

  /** Whether a value is stored under `key`. */
  has(key: NodeKey): boolean {
    return this.#entries.get(key) !== undefined
  }

  /** The version of what this store holds for `key` (a value or a tombstone), if anything. */
  stampOf(key: NodeKey): Stamp | undefined {
    const entry = this.#entries.get(key)
    if (entry !== undefined) return { version: entry.version, origin: entry.origin, deleted: false }
    const tombstone = this.#tombstones.get(key)
    return tombstone === undefined
      ? undefined
      : { version: tombstone.version, origin: tombstone.origin, deleted: true }
  }

  #storable(key: NodeKey): boolean {
    try {
      checkStorableKey(key, this.#learnedHash.dims, this.#maxKeyBytes, 'key')
      return true
    } catch {
      return false
    }
  }

  #checkRecord(record: StoredRecord, at: string): void {
    if (typeof record !== 'object' || record === null)
      throw new InvalidArgumentError(`${at} must be a record`)
    checkStorableKey(record.key, this.#learnedHash.dims, this.#maxKeyBytes, `${at} key`)
    if (!(record.value instanceof Uint8Array))
      throw new InvalidArgumentError(`${at} value must be a Uint8Array`)
    if (record.value.length > this.#maxValueBytes) {
      throw new ValueTooLargeError(record.value.length, this.#maxValueBytes)
    }
  }

  async put(record: StoredRecord): Promise<void> {
    await this.putMany([record])
  }

  /** Stores records as new writes (versions made here). */
  async putMany(records: readonly StoredRecord[]): Promise<void> {
    await this.write(records.map((record) => ({ ...record, position: 0n })))
  }

  /** Stores placed records as new writes and returns them with the versions made here (for replicas). */
  write(records: readonly ScannedRecord[]): Promise<ScannedRecord[]> {
    return this.merge(
      records.map(({ key, value, position }) => ({ key, value, position, stamp: this.newStamp(false) })),
    )
  }

  /** Deletes placed keys as new writes: whether each held a value, and the tombstones made (for replicas). */
  async erase(keys: ReadonlyArray<{ key: NodeKey; position: bigint }>): Promise<{
    present: boolean[]
    tombstones: ScannedRecord[]
  }> {
    const dims = this.#learnedHash.dims
    for (const { key } of keys) checkNodeKey(key, dims)
    const present = keys.map(({ key }) => this.has(key))
    // A key too long to store was never stored: its delete needs no tombstone.
    const tombstones = keys
      .filter(({ key }) => this.#storable(key))
      .map(({ key, position }) => ({ key, value: EMPTY, position, stamp: this.newStamp(true) }))
    await this.merge(tombstones)
    return { present, tombstones }
  }

  /**
   * Stores the records that are newer than what this store holds for their keys (last writer
   * wins; a record without a stamp is a new write) and returns them. `counted` false: entries
   * moved by a migration, which are neither new to the ring nor writes a migration must keep.
   */
  async merge(
    records: readonly StoredRecord[] | readonly ScannedRecord[],
    counted = true,
  ): Promise<ScannedRecord[]> {
    for (let i = 0; i < records.length; i++) this.#checkRecord(records[i], `records[${i}]`)
    const newer: Array<StampedRecord & { position?: bigint }> = []
    for (const record of records as ScannedRecord[]) {
      const stamp = record.stamp ?? this.newStamp(false)
      this.#clock.observe(stamp.version)
      const held = this.stampOf(record.key)
      if (held !== undefined && compareStamps(stamp, held) <= 0) continue
      newer.push({ key: record.key, value: record.value, stamp, position: record.position })
    }
    if (newer.length === 0) return []
    await this.#apply(newer, this.#learnedHash.encodeMany(newer.map((record) => record.key)), counted)
    return newer as ScannedRecord[]
  }

  /**
   * Stores checked records and tombstones; the index changes at once, the promise resolves when
   * they are durable. `counted` false: entries moved by a migration (see `merge`).
   */
  #apply(records: readonly StampedRecord[], encoded: Float64Array, counted: boolean): Promise<void> {
    const updates: Array<readonly [StoredEntry, Uint8Array]> = []
    const deletes: Tombstone[] = []
    const fresh: StoredEntry[] = []
    for (let i = 0; i < records.length; i++) {
      const { key, value, stamp } = records[i]
      if (counted) this.#lastWrites?.set(key, ++this.#writes)
      let entry = this.#entries.get(key)
      if (stamp.deleted) {
        if (entry !== undefined) this.#forget(entry)
        const tombstone = { key: entry?.key ?? ownKey(key), encoded: encoded[i], ...stamp }
        this.#addTombstone(tombstone)
        deletes.push(tombstone)
        continue
      }
      this.#dropTombstone(key)
      if (entry === undefined) {
        const owned = ownKey(key)
        entry = { key: owned, encoded: encoded[i], size: 0, version: 0, origin: 0, value: undefined }
        this.#entries.set(owned, entry)
        fresh.push(entry)
      }
      entry.version = stamp.version
      entry.origin = stamp.origin
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
      if (counted) this.#onNewKeys(freshEncoded)
    }
    if (deletes.length === 0) return this.#values.write(updates)
    return Promise.all([this.#values.write(updates), this.#values.writeTombstones(deletes)]).then(() => {})
  }

  #addTombstone(tombstone: Tombstone): void {
    if (this.#tombstones.get(tombstone.key) === undefined) this.#tombstoneCount++
    this.#tombstones.set(tombstone.key, tombstone)
  }

  #dropTombstone(key: NodeKey): void {
    if (this.#tombstones.delete(key)) this.#tombstoneCount--
  }

  /** Forgets tombstones of deletes made more than `ageMs` ago (past the repair horizon). */
  async purgeTombstones(ageMs: number): Promise<number> {
    const horizon = Date.now() - ageMs
    const expired = [...this.#tombstones.values()].filter(
      (tombstone) => versionTime(tombstone.version) < horizon,
    )
    for (const tombstone of expired) this.#dropTombstone(tombstone.key)
    if (expired.length > 0) await this.#values.remove(expired)
    return expired.length
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

  /** Deletes keys as new writes (tombstones versioned here); whether each held a value. */
  async deleteMany(keys: readonly NodeKey[]): Promise<boolean[]> {
    return (await this.erase(keys.map((key) => ({ key, position: 0n })))).present
  }

  /**
   * Drops the copies of keys this store holds for another owner, without a tombstone (not a
   * write: the owner has recorded the delete). Whether each held a value.
   */
  async discard(keys: readonly NodeKey[]): Promise<boolean[]> {
    const removed: StoredEntry[] = []
    const held = keys.map((key) => {
      const entry = this.#entries.get(key)
      if (entry === undefined) return false
      this.#forget(entry)
      removed.push(entry)
      return true
    })
    if (removed.length > 0) await this.#values.remove(removed)
    return held
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

  /**
   * Records and tombstones whose position lies in [hashMin, hashMax], with their versions, in
   * position order: what moves to another peer (hand-overs, replication, repair).
   */
  scanStamped(hashMin: bigint, hashMax: bigint): ScannedRecord[] {
    const found: ScannedRecord[] = []
    this.#index.scan(hashMin, hashMax, (entry, position) => {
      found.push(this.#stamped(entry, position))
    })
    if (this.#tombstoneCount === 0) return found
    const deleted = this.#placedTombstones((position) => position >= hashMin && position <= hashMax)
    if (deleted.length === 0) return found
    return [...found, ...deleted].sort((a, b) =>
      a.position < b.position ? -1 : a.position > b.position ? 1 : compareAnyKeys(a.key, b.key),
    )
  }

  /** Calls `visit` with the key, position and version of every entry and tombstone in [hashMin, hashMax]. */
  forEachStamp(
    hashMin: bigint,
    hashMax: bigint,
    visit: (key: NodeKey, position: bigint, stamp: Stamp) => void,
  ): void {
    this.#index.scan(hashMin, hashMax, (entry, position) => {
      visit(entry.key, position, { version: entry.version, origin: entry.origin, deleted: false })
    })
    if (this.#tombstoneCount === 0) return
    for (const { key, position, stamp } of this.#placedTombstones((at) => at >= hashMin && at <= hashMax))
      visit(key, position, stamp as Stamp)
  }

  #stamped(entry: StoredEntry, position: bigint): ScannedRecord {
    const stamp = { version: entry.version, origin: entry.origin, deleted: false }
    return { key: entry.key, value: this.#read(entry), position, stamp }
  }

  /** Tombstones at positions `keep` accepts, as records. */
  #placedTombstones(keep: (position: bigint) => boolean): ScannedRecord[] {
    const tombstones = [...this.#tombstones.values()]
    const positions = this.#learnedHash.model.predictMany(
      Float64Array.from(tombstones, (tombstone) => tombstone.encoded),
    )
    const records: ScannedRecord[] = []
    for (let i = 0; i < tombstones.length; i++) {
      if (!keep(positions[i])) continue
      const { key, version, origin } = tombstones[i]
      records.push({ key, value: EMPTY, position: positions[i], stamp: { version, origin, deleted: true } })
    }
    return records
  }

  async extract(hashMin: bigint, hashMax: bigint): Promise<ScannedRecord[]> {
    const taken: StoredEntry[] = []
    const records: ScannedRecord[] = []
    this.#index.scan(hashMin, hashMax, (entry, position) => {
      taken.push(entry)
      records.push(this.#stamped(entry, position))
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

  /** Every stored key (not the deleted ones), in ring order. */
  keys(): NodeKey[] {
    const keys: NodeKey[] = []
    this.#index.scan(0n, this.#learnedHash.options.hashSpaceSize - 1n, (entry) => {
      keys.push(entry.key)
    })
    return keys
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
        records.push(this.#stamped(entry, position))
        last = position
      }
    })
    // Tombstones go with the last batch, so that a delete reaches the key's new owner too.
    if (next === null && this.#tombstoneCount > 0)
      records.push(...this.#placedTombstones((position) => !owns(position)))
    return { records, next }
  }

  /**
   * Stores entries handed over by their previous owner, except keys written or deleted here since
   * tracking began and older versions than those held. Returns the records stored.
   */
  async putUntouched(records: readonly ScannedRecord[]): Promise<ScannedRecord[]> {
    const written = this.#lastWrites
    const fresh =
      written === null ? records : records.filter((record) => written.get(record.key) === undefined)
    // A migration is not a client write: it must not shadow a later one.
    return this.merge(fresh, false)
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
      if (entry === undefined || (this.#lastWrites?.get(key) ?? 0) > since) continue
      if (owns(position) || this.#retains(position)) continue
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
    const removed = entries.filter((_, i) => !owns(positions[i]) && !this.#retains(positions[i]))
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
