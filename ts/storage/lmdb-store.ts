// A durable value store on LMDB: each value is stored under its ring-order key (the encoded key as
// a sortable 8-byte prefix, then the canonical key bytes), so the database itself is in ring order.
// A record is a header (tombstone flag, version, origin) followed by the serialized value.
// Byte keys are stored under their fixed text code, which no model changes.

import { type Database, open, type RootDatabase } from 'lmdb'
import { encodeKey } from '../learned/keys.js'
import { NotStartedError } from '../shared/errors.js'
import { decodeKeyBytes, encodeKeyBytes } from '../shared/keys.js'
import { dataDirFailure, prepareDataDir } from './data-dir.js'
import type { PlacedEntry, RestoredEntry, StoredEntry, Tombstone, ValueStore } from './value-store.js'

/** Version of the record layout below, part of a data directory's configuration. */
export const ENTRY_FORMAT_VERSION = 2

const SIGN_BIT = 0x80
/** Bytes before the value: a flags byte, the version (a double) and the origin (a uint32). */
const HEADER_BYTES = 13
const TOMBSTONE_FLAG = 1

/** The stored form of a value (or of a tombstone, without one) with its version. */
function record(stamp: Tombstone, value: Uint8Array | null): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + (value?.length ?? 0))
  out[0] = value === null ? TOMBSTONE_FLAG : 0
  out.writeDoubleBE(stamp.version, 1)
  out.writeUInt32BE(stamp.origin, 9)
  if (value !== null) out.set(value, HEADER_BYTES)
  return out
}

/** 8 bytes whose unsigned byte order is the numeric order of `value` (a finite double). */
function sortableDouble(value: number, out: Buffer): void {
  out.writeDoubleBE(value === 0 ? 0 : value, 0)
  if (out[0] & SIGN_BIT) for (let i = 0; i < 8; i++) out[i] = ~out[i] & 0xff
  else out[0] |= SIGN_BIT
}

function readSortableDouble(bytes: Buffer): number {
  const copy = Buffer.from(bytes.subarray(0, 8))
  if (copy[0] & SIGN_BIT) copy[0] &= ~SIGN_BIT & 0xff
  else for (let i = 0; i < 8; i++) copy[i] = ~copy[i] & 0xff
  return copy.readDoubleBE(0)
}

/**
 * The LMDB key of an entry: byte keys by the fixed text code (a model's key code would move them),
 * other keys by their encoding (which key codes leave alone).
 */
export function storageKey(entry: { key: PlacedEntry['key']; encoded: number }): Buffer {
  const { key } = entry
  const keyBytes = encodeKeyBytes(key)
  const out = Buffer.allocUnsafe(8 + keyBytes.length)
  sortableDouble(typeof key === 'string' || key instanceof Uint8Array ? encodeKey(key) : entry.encoded, out)
  out.set(keyBytes, 8)
  return out
}

/**
 * Stores values in an LMDB environment in `path`; writes are batched into transactions by lmdb-js.
 * A write resolves once committed (a crash of the process keeps it: LMDB's overlapping sync flushes
 * it to disk right after); with `durability` 'power', once flushed to disk too.
 */
export class LmdbValueStore implements ValueStore {
  readonly kind = 'lmdb'
  readonly #path: string
  readonly #flushEachWrite: boolean
  #root: RootDatabase | undefined
  #entries: Database<Uint8Array, Buffer> | undefined
  #meta: Database<Buffer, string> | undefined

  constructor(path: string, durability: 'process' | 'power' = 'process') {
    this.#path = path
    this.#flushEachWrite = durability === 'power'
  }

  /** Waits, with durability 'power', until the writes committed so far are on disk. */
  async #durable(): Promise<void> {
    if (this.#flushEachWrite) await this.#root?.flushed
  }

  /** @throws StartFailedError (dataDir) when the directory cannot be used */
  async open(): Promise<void> {
    prepareDataDir(this.#path)
    try {
      this.#root = open({ path: this.#path, maxDbs: 4 })
    } catch (err) {
      throw dataDirFailure(this.#path, err)
    }
    this.#entries = this.#root.openDB<Buffer, Buffer>({
      name: 'entries',
      keyEncoding: 'binary',
      encoding: 'binary',
    })
    this.#meta = this.#root.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' })
  }

  async close(): Promise<void> {
    await this.#root?.close()
    this.#root = undefined
    this.#entries = undefined
    this.#meta = undefined
  }

  #db(): Database<Uint8Array, Buffer> {
    if (this.#entries === undefined) throw new NotStartedError('the LMDB store is closed')
    return this.#entries
  }

  restore(): RestoredEntry[] {
    const restored: RestoredEntry[] = []
    for (const { key, value: bytes } of this.#db().getRange()) {
      const value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      restored.push({
        key: decodeKeyBytes(key.subarray(8)),
        encoded: readSortableDouble(key),
        size: value.length - HEADER_BYTES,
        version: value.readDoubleBE(1),
        origin: value.readUInt32BE(9),
        deleted: (value[0] & TOMBSTONE_FLAG) !== 0,
      })
    }
    return restored
  }

  read(entry: StoredEntry): Uint8Array | undefined {
    return entry.value ?? this.#db().getBinary(storageKey(entry))?.subarray(HEADER_BYTES)
  }

  async write(updates: ReadonlyArray<readonly [StoredEntry, Uint8Array]>): Promise<void> {
    const db = this.#db()
    for (const [entry, value] of updates) entry.value = value
    await db.batch(() => {
      for (const [entry, value] of updates) db.put(storageKey(entry), record(entry, value))
    })
    await this.#durable()
    for (const [entry, value] of updates) if (entry.value === value) entry.value = undefined
  }

  async writeTombstones(tombstones: readonly Tombstone[]): Promise<void> {
    const db = this.#db()
    await db.batch(() => {
      for (const tombstone of tombstones) db.put(storageKey(tombstone), record(tombstone, null))
    })
    await this.#durable()
  }

  async remove(entries: readonly PlacedEntry[]): Promise<void> {
    const db = this.#db()
    await db.batch(() => {
      for (const entry of entries) db.remove(storageKey(entry))
    })
    await this.#durable()
  }

  readMeta(name: string): Uint8Array | undefined {
    return this.#meta?.getBinary(name)
  }

  async writeMeta(name: string, value: Uint8Array): Promise<void> {
    await this.#meta?.put(name, Buffer.from(value.buffer, value.byteOffset, value.byteLength))
    await this.#durable()
  }
}
