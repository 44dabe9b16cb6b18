// The entries of a store as columns indexed by a small integer id (key, encoded key, version,
// origin, value size) and an open-addressing hash of keys to ids: no object per entry, so
// millions of entries cost a few typed arrays instead of millions of heap objects.

import type { NodeKey } from '../shared/keys.js'

const EMPTY_SLOT = -1
/** Hash slots per entry at most 4/3 full (linear probing stays short). */
const MAX_LOAD = 0.75

const scratchDouble = new Float64Array(1)
const scratchWords = new Uint32Array(scratchDouble.buffer)

/** Murmur3's finaliser: spreads the bits of a 32-bit hash so linear probing sees no runs. */
function mix(hash: number): number {
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b)
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35)
  return hash ^ (hash >>> 16)
}

function hashText(text: string, seed: number): number {
  let hash = seed
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash
}

function hashNumber(value: number, seed: number): number {
  scratchDouble[0] = value === 0 ? 0 : value
  return Math.imul(Math.imul(seed ^ scratchWords[0], 0x01000193) ^ scratchWords[1], 0x01000193)
}

/** A 32-bit hash of a key; keys that `sameKey` holds equal hash alike (0 and -0 too). */
export function hashKey(key: NodeKey): number {
  switch (typeof key) {
    case 'string':
      return mix(hashText(key, 0x811c9dc5))
    case 'number':
      return mix(hashNumber(key, 0x2545f491))
    case 'bigint':
      return mix(hashText(key.toString(), 0x3c6ef372))
    default: {
      let hash = 0x6a09e667
      if (Array.isArray(key)) for (const coordinate of key) hash = hashNumber(coordinate, hash)
      else for (const byte of key as Uint8Array) hash = Math.imul(hash ^ byte, 0x01000193)
      return mix(hash)
    }
  }
}

/** Whether two keys are the same key: 5 and 5n are not, 0 and -0 are; byte arrays and points by content. */
function sameKey(a: NodeKey, b: NodeKey): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b) || a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function grown<T extends Float64Array | Uint32Array | Int32Array>(array: T, length: number): T {
  const bigger = new (array.constructor as new (length: number) => T)(length)
  bigger.set(array)
  return bigger
}

/** Entries by id; ids of removed entries are reused. */
export class EntryTable {
  #keys: Array<NodeKey | undefined> = []
  #encoded = new Float64Array(16)
  #versions = new Float64Array(16)
  #origins = new Uint32Array(16)
  #sizes = new Uint32Array(16)
  #hashes = new Int32Array(16)
  /** Ids of removed entries, to reuse. */
  #free: number[] = []
  /** Open-addressing hash slots: an entry id or EMPTY_SLOT. */
  #slots = new Int32Array(32).fill(EMPTY_SLOT)
  #size = 0
  /** The key of the last `find` that missed and its hash, which an `add` of that key reuses. */
  #missedKey: NodeKey | undefined
  #missedHash = 0

  get size(): number {
    return this.#size
  }

  /** One past the highest id in use. */
  get idLimit(): number {
    return this.#keys.length
  }

  /** The id of `key`, or -1. */
  find(key: NodeKey): number {
    const hash = hashKey(key)
    const mask = this.#slots.length - 1
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const id = this.#slots[slot]
      if (id === EMPTY_SLOT) {
        this.#missedKey = key
        this.#missedHash = hash
        return -1
      }
      if (this.#hashes[id] === hash && sameKey(this.#keys[id] as NodeKey, key)) return id
    }
  }

  /** Adds a key that is not in the table (the caller owns it: it must not change) and returns its id. */
  add(key: NodeKey, encoded: number): number {
    const id = this.#free.length > 0 ? (this.#free.pop() as number) : this.#keys.length
    if (id === this.#keys.length) {
      this.#keys.push(key)
      if (id === this.#encoded.length) this.#growColumns(id * 2)
    } else this.#keys[id] = key
    const hash = key === this.#missedKey ? this.#missedHash : hashKey(key)
    this.#missedKey = undefined
    this.#hashes[id] = hash
    this.#encoded[id] = encoded
    this.#versions[id] = 0
    this.#origins[id] = 0
    this.#sizes[id] = 0
    this.#size++
    if (this.#size > this.#slots.length * MAX_LOAD) this.#rehash(this.#slots.length * 2)
    else this.#place(id, hash)
    return id
  }

  #growColumns(length: number): void {
    this.#encoded = grown(this.#encoded, length)
    this.#versions = grown(this.#versions, length)
    this.#origins = grown(this.#origins, length)
    this.#sizes = grown(this.#sizes, length)
    this.#hashes = grown(this.#hashes, length)
  }

  #place(id: number, hash: number): void {
    const mask = this.#slots.length - 1
    let slot = hash & mask
    while (this.#slots[slot] !== EMPTY_SLOT) slot = (slot + 1) & mask
    this.#slots[slot] = id
  }

  #rehash(slots: number): void {
    this.#slots = new Int32Array(slots).fill(EMPTY_SLOT)
    for (let id = 0; id < this.#keys.length; id++)
      if (this.#keys[id] !== undefined) this.#place(id, this.#hashes[id])
  }

  /** Removes entry `id`; its id may be handed out again. */
  remove(id: number): void {
    const mask = this.#slots.length - 1
    let slot = this.#hashes[id] & mask
    while (this.#slots[slot] !== id) slot = (slot + 1) & mask
    // Backward-shift deletion: later entries of the probe run move up, so no slot is left marked.
    for (let next = (slot + 1) & mask; ; next = (next + 1) & mask) {
      const moved = this.#slots[next]
      if (moved === EMPTY_SLOT) break
      const home = this.#hashes[moved] & mask
      // `moved` fills the hole unless its home lies cyclically in (slot, next].
      if (((next - home) & mask) >= ((next - slot) & mask)) {
        this.#slots[slot] = moved
        slot = next
      }
    }
    this.#slots[slot] = EMPTY_SLOT
    this.#keys[id] = undefined
    this.#free.push(id)
    this.#size--
  }

  keyOf(id: number): NodeKey {
    return this.#keys[id] as NodeKey
  }

  encodedOf(id: number): number {
    return this.#encoded[id]
  }

  setEncoded(id: number, encoded: number): void {
    this.#encoded[id] = encoded
  }

  versionOf(id: number): number {
    return this.#versions[id]
  }

  originOf(id: number): number {
    return this.#origins[id]
  }

  setStamp(id: number, version: number, origin: number): void {
    this.#versions[id] = version
    this.#origins[id] = origin
  }

  sizeOf(id: number): number {
    return this.#sizes[id]
  }

  setSize(id: number, size: number): void {
    this.#sizes[id] = size
  }

  /** Whether `id` holds an entry. */
  has(id: number): boolean {
    return this.#keys[id] !== undefined
  }

  clear(): void {
    this.#keys = []
    this.#free = []
    this.#slots = new Int32Array(32).fill(EMPTY_SLOT)
    this.#size = 0
    this.#missedKey = undefined
  }
}
