// The entries this peer stores, in ring order: a table of entries (columns by id, hashed by key),
// an ordered index of ids for position scans, tombstones of deleted keys, and the values (packed in
// memory, or in LMDB). Every entry carries a version; entries arriving from peers replace a key's
// entry only when newer. The node's DataPlane.

import { InvalidArgumentError } from '../errors.js'
import type { DataPlane, ScanFilter, ScannedRecord, StoredRecord } from '../shared/data-plane.js'
import { ValueTooLargeError } from '../shared/errors.js'
import {
  checkNodeKey,
  compareAnyKeys,
  compareKeys,
  compareUtf8,
  KeyMap,
  keyFamily,
  type NodeKey,
  ownKey,
} from '../shared/keys.js'
import { compareStamps, HybridClock, type Stamp, versionTime } from '../shared/stamp.js'
import { EntryTable } from '../storage/entry-table.js'
import { RingIndex } from '../storage/ring-index.js'
import { ValueArena } from '../storage/value-arena.js'
import type { PlacedEntry, StoredEntry, Tombstone, ValueStore } from '../storage/value-store.js'
import type { LearnedHash } from './learned-hash.js'
import { RangeEntry } from './range-entry.js'
import { deserializeValue } from './value-codec.js'
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

/**
 * The versions of a batch of records: one stamp each, or, for new values written here, the first
 * of consecutive versions (record i gets the first plus i): no stamp object per record.
 */
type BatchStamps = readonly Stamp[] | number

const EMPTY = new Uint8Array(0)

/** A prediction of the current model next to the true scaled rank of the key. */
export interface PredictionProbe {
  encoded: number
  predicted: bigint
  /** The key's rank scaled to the hash space (a double: errors are only ever compared as fractions). */
  actual: number
}

/** What `decode` answers for a key that is not stored. */
export const ABSENT: unique symbol = Symbol('absent')

/** `compareAnyKeys`, with the common case of two strings (keys the key code could not tell apart) first. */
function compareTied(a: NodeKey, b: NodeKey): number {
  return typeof a === 'string' && typeof b === 'string' ? compareUtf8(a, b) : compareAnyKeys(a, b)
}

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
  readonly #entries = new EntryTable()
  /** The values, when the value store keeps none (it is volatile). */
  readonly #arena: ValueArena | null
  /** With a durable value store: entries whose values are not durable yet, by id. */
  readonly #pending = new Map<number, StoredEntry>()
  readonly #tombstones = new KeyMap<Tombstone>()
  #tombstoneCount = 0
  readonly #index: RingIndex
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
    this.#arena = init.values.volatile === true ? new ValueArena() : null
    const learnedHash = init.learnedHash
    const entries = this.#entries
    this.#index = new RingIndex((a, b) => compareTied(entries.keyOf(a), entries.keyOf(b)), {
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
    const ids = Array.from(this.#index.ids())
    const encoded = this.#learnedHash.encodeMany(ids.map((id) => this.#entries.keyOf(id)))
    for (let i = 0; i < ids.length; i++) this.#entries.setEncoded(ids[i], encoded[i])
    this.#loadIndex(ids)
    if (this.#tombstoneCount === 0) return
    const tombstones = [...this.#tombstones.values()]
    const recoded = this.#learnedHash.encodeMany(tombstones.map((tombstone) => tombstone.key))
    for (let i = 0; i < tombstones.length; i++) tombstones[i].encoded = recoded[i]
  }

  /** Fills the index with `ids`, sorted here into ring order: by encoded key (so by position under any model), ties broken by the keys themselves. */
  #loadIndex(ids: number[]): void {
    const entries = this.#entries
    ids.sort(
      (a, b) =>
        entries.encodedOf(a) - entries.encodedOf(b) || compareAnyKeys(entries.keyOf(a), entries.keyOf(b)),
    )
    this.#index.load(
      ids,
      ids.map((id) => entries.encodedOf(id)),
    )
  }

  /** Up to `limit` stored keys, evenly spread over the ring order (all of them when they fit). */
  sampleKeys(limit: number): NodeKey[] {
    const ids = this.#index.ids()
    const step = Math.max(1, ids.length / limit)
    return Array.from({ length: Math.min(limit, ids.length) }, (_, i) =>
      this.#entries.keyOf(ids[Math.floor(i * step)]),
    )
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
    const ids: number[] = []
    for (const { key, encoded, size, version, origin, deleted } of this.#values.restore()) {
      this.#clock.observe(version)
      if (deleted) {
        this.#addTombstone({ key, encoded, version, origin })
        continue
      }
      const id = this.#entries.add(key, encoded)
      this.#entries.setStamp(id, version, origin)
      this.#entries.setSize(id, size)
      this.#bytes += size
      ids.push(id)
    }
    this.#loadIndex(ids)
  }

  async close(): Promise<void> {
    await this.#values.close()
    this.#entries.clear()
    this.#arena?.clear()
    this.#pending.clear()
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
    return this.#entries.find(key) >= 0
  }

  /** The version of what this store holds for `key` (a value or a tombstone), if anything. */
  stampOf(key: NodeKey): Stamp | undefined {
    const id = this.#entries.find(key)
    if (id >= 0) return this.#stampAt(id)
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

  #checkRecords(records: readonly StoredRecord[]): void {
    for (let i = 0; i < records.length; i++) {
      try {
        this.#checkRecord(records[i], 'record')
      } catch {
        // Checked again to name the record: its index is formatted only when something is wrong.
        this.#checkRecord(records[i], `records[${i}]`)
      }
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

  /** Stores records as new writes (versions made here, consecutive: no stamp object per record). */
  async putMany(records: readonly StoredRecord[]): Promise<void> {
    this.#checkRecords(records)
    // Versions made here are newer than every version held: no comparison needed.
    const firstVersion = this.#clock.nextMany(records.length)
    await this.#apply(
      records,
      firstVersion,
      this.#learnedHash.encodeMany(records.map((record) => record.key)),
      true,
    )
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
    this.#checkRecords(records)
    const newer: Array<StampedRecord & { position?: bigint }> = []
    for (const record of records as ScannedRecord[]) {
      const stamp = record.stamp ?? this.newStamp(false)
      this.#clock.observe(stamp.version)
      const held = this.stampOf(record.key)
      if (held !== undefined && compareStamps(stamp, held) <= 0) continue
      newer.push({ key: record.key, value: record.value, stamp, position: record.position })
    }
    if (newer.length === 0) return []
    await this.#apply(
      newer,
      newer.map((record) => record.stamp),
      this.#learnedHash.encodeMany(newer.map((record) => record.key)),
      counted,
    )
    return newer as ScannedRecord[]
  }

  /**
   * Stores checked records and tombstones; the index changes at once, the promise resolves when
   * they are durable. `counted` false: entries moved by a migration (see `merge`).
   */
  #apply(
    records: readonly StoredRecord[],
    stamps: BatchStamps,
    encoded: Float64Array,
    counted: boolean,
  ): Promise<void> {
    const entries = this.#entries
    const updates: number[] = []
    const values: Uint8Array[] = []
    const deletes: Tombstone[] = []
    const fresh: number[] = []
    const given = typeof stamps === 'number' ? null : stamps
    const firstVersion = typeof stamps === 'number' ? stamps : 0
    for (let i = 0; i < records.length; i++) {
      const { key, value } = records[i]
      const stamp = given === null ? null : given[i]
      if (counted) this.#lastWrites?.set(key, ++this.#writes)
      let id = entries.find(key)
      if (stamp?.deleted === true) {
        const held = id >= 0 ? this.#forget(id).key : ownKey(key)
        const tombstone = { key: held, encoded: encoded[i], version: stamp.version, origin: stamp.origin }
        this.#addTombstone(tombstone)
        deletes.push(tombstone)
        continue
      }
      if (this.#tombstoneCount > 0) this.#dropTombstone(key)
      if (id < 0) {
        id = entries.add(ownKey(key), encoded[i])
        fresh.push(id)
      }
      if (stamp === null) entries.setStamp(id, firstVersion + i, this.origin)
      else entries.setStamp(id, stamp.version, stamp.origin)
      const size = entries.sizeOf(id)
      this.#arena?.delete(id, size)
      this.#bytes += value.length - size
      entries.setSize(id, value.length)
      updates.push(id)
      values.push(value)
    }
    if (fresh.length > 0) {
      const freshEncoded = new Float64Array(fresh.length)
      for (let j = 0; j < fresh.length; j++) freshEncoded[j] = entries.encodedOf(fresh[j])
      const model = this.#learnedHash.model
      if (fresh.length === 1) this.#index.insert(fresh[0], freshEncoded[0], model.predict(freshEncoded[0]))
      else this.#index.insertMany(fresh, freshEncoded, model.predictMany(freshEncoded))
      if (counted) this.#onNewKeys(freshEncoded)
    }
    const written = this.#writeValues(updates, values)
    if (deletes.length === 0) return written
    return Promise.all([written, this.#values.writeTombstones(deletes)]).then(() => {})
  }

  /** Stores the values of entries: in the arena at once, or in the value store (readable at once, durable later). */
  #writeValues(ids: readonly number[], values: readonly Uint8Array[]): Promise<void> {
    const arena = this.#arena
    if (arena !== null) {
      for (let i = 0; i < ids.length; i++) arena.set(ids[i], values[i])
      arena.compactIfWasteful((id) => this.#entries.sizeOf(id))
      return Promise.resolve()
    }
    const updates = ids.map((id, i) => {
      const entry = this.#entryAt(id)
      this.#pending.set(id, entry)
      return [entry, values[i]] as const
    })
    return this.#values.write(updates).finally(() => {
      for (let i = 0; i < ids.length; i++)
        if (this.#pending.get(ids[i]) === updates[i][0]) this.#pending.delete(ids[i])
    })
  }

  /** Entry `id` as the value store's record of it. */
  #entryAt(id: number): StoredEntry {
    const entries = this.#entries
    return {
      key: entries.keyOf(id),
      encoded: entries.encodedOf(id),
      size: entries.sizeOf(id),
      version: entries.versionOf(id),
      origin: entries.originOf(id),
      value: undefined,
    }
  }

  #stampAt(id: number): Stamp {
    return { version: this.#entries.versionOf(id), origin: this.#entries.originOf(id), deleted: false }
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
    const id = this.#entries.find(key)
    return id < 0 ? undefined : this.#readValue(id)
  }

  async getMany(keys: readonly NodeKey[]): Promise<Array<Uint8Array | undefined>> {
    const dims = this.#learnedHash.dims
    for (const key of keys) checkNodeKey(key, dims)
    const found = new Array<Uint8Array | undefined>(keys.length)
    for (let i = 0; i < keys.length; i++) {
      const id = this.#entries.find(keys[i])
      found[i] = id < 0 ? undefined : this.#readValue(id)
    }
    return found
  }

  /** The decoded value of `key`, or ABSENT. */
  decode(key: NodeKey): unknown {
    checkNodeKey(key, this.#learnedHash.dims)
    const id = this.#entries.find(key)
    return id < 0 ? ABSENT : this.#decodeValue(id)
  }

  /** The decoded values of `keys` (undefined where absent) and how many were present. */
  decodeMany(keys: readonly NodeKey[]): { values: unknown[]; hits: number } {
    const dims = this.#learnedHash.dims
    for (const key of keys) checkNodeKey(key, dims)
    const values = new Array<unknown>(keys.length).fill(undefined)
    let hits = 0
    for (let i = 0; i < keys.length; i++) {
      const id = this.#entries.find(keys[i])
      const value = id < 0 ? ABSENT : this.#decodeValue(id)
      if (value === ABSENT) continue
      values[i] = value
      hits++
    }
    return { values, hits }
  }

  /**
   * Entry `id`'s value decoded straight from where it is kept (no view of the bytes is made), or
   * ABSENT when a durable store has lost it (as `get` answers undefined then).
   */
  #decodeValue(id: number): unknown {
    const arena = this.#arena
    if (arena === null) {
      const bytes = this.#readValue(id)
      return bytes === undefined ? ABSENT : deserializeValue(bytes)
    }
    const offset = arena.offsetOf(id)
    return deserializeValue(arena.bytesOf(id) as Uint8Array, offset, offset + this.#entries.sizeOf(id))
  }

  /**
   * `scan` as range entries whose values are decoded when first read, straight from the arena
   * (whose bytes never change): no copy or view of a value is made unless it is read.
   */
  scanEntries<V>(hashMin: bigint, hashMax: bigint, filter: ScanFilter = {}): Array<RangeEntry<V>> {
    const arena = this.#arena
    if (arena === null)
      return this.scanSync(hashMin, hashMax, filter).map((record) => new RangeEntry<V>(record))
    const keep = this.#filterOf(filter)
    const entries = this.#entries
    const found: Array<RangeEntry<V>> = []
    this.#index.scan(hashMin, hashMax, (id, position) => {
      if (keep !== null && !keep(id)) return
      const value = arena.bytesOf(id)
      if (value === undefined) throw new Error('value of a stored key is missing from the memory store')
      const offset = arena.offsetOf(id)
      found.push(
        new RangeEntry<V>({ key: entries.keyOf(id), value, position }, offset, offset + entries.sizeOf(id)),
      )
    })
    return found
  }

  /** The value of entry `id`, wherever it is kept. */
  #readValue(id: number): Uint8Array | undefined {
    if (this.#arena !== null) return this.#arena.get(id, this.#entries.sizeOf(id))
    return this.#values.read(this.#pending.get(id) ?? this.#entryAt(id))
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
    const removed: PlacedEntry[] = []
    const held = keys.map((key) => {
      const id = this.#entries.find(key)
      if (id < 0) return false
      removed.push(this.#forget(id))
      return true
    })
    await this.#removeValues(removed)
    return held
  }

  /** Drops entry `id` from the table, the index and the arena; returns its key and encoded key. */
  #forget(id: number): PlacedEntry {
    const entries = this.#entries
    const placed = { key: entries.keyOf(id), encoded: entries.encodedOf(id) }
    this.#index.remove(id, placed.encoded)
    this.#bytes -= entries.sizeOf(id)
    this.#arena?.delete(id, entries.sizeOf(id))
    this.#pending.delete(id)
    entries.remove(id)
    return placed
  }

  /** Removes forgotten entries' records from a durable value store. */
  async #removeValues(removed: readonly PlacedEntry[]): Promise<void> {
    if (removed.length > 0 && this.#arena === null) await this.#values.remove(removed)
  }

  async scan(hashMin: bigint, hashMax: bigint, filter: ScanFilter = {}): Promise<ScannedRecord[]> {
    return this.scanSync(hashMin, hashMax, filter)
  }

  /** `scan`, without the promise (for callers on this peer). */
  scanSync(hashMin: bigint, hashMax: bigint, filter: ScanFilter = {}): ScannedRecord[] {
    const keep = this.#filterOf(filter)
    const entries = this.#entries
    const found: ScannedRecord[] = []
    this.#index.scan(hashMin, hashMax, (id, position) => {
      if (keep === null || keep(id)) found.push({ key: entries.keyOf(id), value: this.#read(id), position })
    })
    return found
  }

  #read(id: number): Uint8Array {
    const value = this.#readValue(id)
    if (value === undefined)
      throw new Error(`value of a stored key is missing from the ${this.#values.kind} store`)
    return value
  }

  /** The test of `filter` on entry ids; null when it keeps every entry. */
  #filterOf({ keyRange, box }: ScanFilter): ((id: number) => boolean) | null {
    const entries = this.#entries
    if (box !== undefined)
      return (id) => {
        const key = entries.keyOf(id)
        return Array.isArray(key) && insideBox(key, box)
      }
    if (keyRange === undefined) return null
    const family = keyFamily(keyRange.min)
    const low = this.#learnedHash.encode(keyRange.min)
    const high = this.#learnedHash.encode(keyRange.max)
    return (id) => {
      const key = entries.keyOf(id)
      if (keyFamily(key) !== family) return false
      // Encoding preserves order within a family: only keys that share a bound's encoding need comparing.
      const encoded = entries.encodedOf(id)
      if (encoded < low || encoded > high) return false
      if (encoded === low && compareKeys(key, keyRange.min) < 0) return false
      return encoded !== high || compareKeys(key, keyRange.max) <= 0
    }
  }

  /**
   * Records and tombstones whose position lies in [hashMin, hashMax], with their versions, in
   * position order: what moves to another peer (hand-overs, replication, repair).
   */
  scanStamped(hashMin: bigint, hashMax: bigint): ScannedRecord[] {
    const found: ScannedRecord[] = []
    this.#index.scan(hashMin, hashMax, (id, position) => {
      found.push(this.#stamped(id, position))
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
    this.#index.scan(hashMin, hashMax, (id, position) => {
      visit(this.#entries.keyOf(id), position, this.#stampAt(id))
    })
    if (this.#tombstoneCount === 0) return
    for (const { key, position, stamp } of this.#placedTombstones((at) => at >= hashMin && at <= hashMax))
      visit(key, position, stamp as Stamp)
  }

  #stamped(id: number, position: bigint): ScannedRecord {
    return { key: this.#entries.keyOf(id), value: this.#read(id), position, stamp: this.#stampAt(id) }
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
    const taken: number[] = []
    const records: ScannedRecord[] = []
    this.#index.scan(hashMin, hashMax, (id, position) => {
      taken.push(id)
      records.push(this.#stamped(id, position))
    })
    await this.#removeValues(taken.map((id) => this.#forget(id)))
    return records
  }

  /** Keys and value bytes stored in [hashMin, hashMax]. */
  measure(hashMin: bigint, hashMax: bigint): { keys: number; bytes: number } {
    let keys = 0
    let bytes = 0
    this.#index.scan(hashMin, hashMax, (id) => {
      keys++
      bytes += this.#entries.sizeOf(id)
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
    return this.#index.atRanks(ranks).map(({ id, position }, i) => ({
      encoded: this.#entries.encodedOf(id),
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
    this.#index.scan(0n, this.#learnedHash.options.hashSpaceSize - 1n, (id) => {
      keys.push(this.#entries.keyOf(id))
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
    this.#index.scan(from, this.#learnedHash.options.hashSpaceSize - 1n, (id, position) => {
      if (records.length >= limit && position !== last) {
        next = position
        return false
      }
      if (!owns(position)) {
        records.push(this.#stamped(id, position))
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
    const removed: PlacedEntry[] = []
    for (const { key, position } of records) {
      const id = this.#entries.find(key)
      if (id < 0 || (this.#lastWrites?.get(key) ?? 0) > since) continue
      if (owns(position) || this.#retains(position)) continue
      removed.push(this.#forget(id))
    }
    await this.#removeValues(removed)
  }

  /**
   * Removes the copies of records handed to another owner, except those whose position under the
   * current model `owns` says is this peer's (one of its vnodes took that part of the arc back, or
   * a new model placed it here). By key, not by arc: the arc may hold other entries by now.
   */
  async removeCopies(records: readonly StoredRecord[], owns: (position: bigint) => boolean): Promise<void> {
    const ids: number[] = []
    for (const { key } of records) {
      const id = this.#entries.find(key)
      if (id >= 0) ids.push(id)
    }
    if (ids.length === 0) return
    const positions = this.#learnedHash.model.predictMany(
      Float64Array.from(ids, (id) => this.#entries.encodedOf(id)),
    )
    const removed = ids.filter((_, i) => !owns(positions[i]) && !this.#retains(positions[i]))
    await this.#removeValues(removed.map((id) => this.#forget(id)))
  }

  /**
   * Brings every entry's cached position up to the current model version, a batch at a time,
   * yielding to the event loop between batches so that reads and writes keep flowing.
   */
  async reposition(): Promise<void> {
    await this.#index.refresh(() => new Promise<void>((resolve) => setImmediate(resolve)), REPOSITION_BATCH)
  }
}
