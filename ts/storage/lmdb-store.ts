// A durable value store on LMDB: each value is stored under its ring-order key (the encoded key as
// a sortable 8-byte prefix, then the canonical key bytes), so the database itself is in ring order.
// Byte keys are stored under their fixed text code, which no model changes.

import { type Database, open, type RootDatabase } from 'lmdb'
import { encodeKey } from '../learned/keys.js'
import { NotStartedError } from '../node/errors.js'
import { decodeKeyBytes, encodeKeyBytes } from '../node/keys.js'
import type { RestoredEntry, StoredEntry, ValueStore } from './value-store.js'

const SIGN_BIT = 0x80

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
export function storageKey(entry: { key: StoredEntry['key']; encoded: number }): Buffer {
  const { key } = entry
  const keyBytes = encodeKeyBytes(key)
  const out = Buffer.allocUnsafe(8 + keyBytes.length)
  sortableDouble(typeof key === 'string' || key instanceof Uint8Array ? encodeKey(key) : entry.encoded, out)
  out.set(keyBytes, 8)
  return out
}

/** Stores values in an LMDB environment in `path`; writes are batched into transactions by lmdb-js. */
export class LmdbValueStore implements ValueStore {
  readonly kind = 'lmdb'
  readonly #path: string
  #root: RootDatabase | undefined
  #entries: Database<Uint8Array, Buffer> | undefined
  #meta: Database<Buffer, string> | undefined

  constructor(path: string) {
    this.#path = path
  }

  async open(): Promise<void> {
    this.#root = open({ path: this.#path, maxDbs: 4 })
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
    for (const { key, value } of this.#db().getRange()) {
      restored.push({
        key: decodeKeyBytes(key.subarray(8)),
        encoded: readSortableDouble(key),
        size: value.length,
      })
    }
    return restored
  }

  read(entry: StoredEntry): Uint8Array | undefined {
    return entry.value ?? this.#db().getBinary(storageKey(entry))
  }

  async write(updates: ReadonlyArray<readonly [StoredEntry, Uint8Array]>): Promise<void> {
    const db = this.#db()
    for (const [entry, value] of updates) entry.value = value
    await db.batch(() => {
      for (const [entry, value] of updates) db.put(storageKey(entry), value)
    })
    for (const [entry, value] of updates) if (entry.value === value) entry.value = undefined
  }

  async remove(entries: readonly StoredEntry[]): Promise<void> {
    const db = this.#db()
    await db.batch(() => {
      for (const entry of entries) db.remove(storageKey(entry))
    })
  }

  readMeta(name: string): Uint8Array | undefined {
    return this.#meta?.getBinary(name)
  }

  async writeMeta(name: string, value: Uint8Array): Promise<void> {
    await this.#meta?.put(name, Buffer.from(value.buffer, value.byteOffset, value.byteLength))
  }
}
