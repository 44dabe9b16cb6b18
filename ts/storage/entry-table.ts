// The entries of a store as columns indexed by a small integer id (key, encoded key, version,
// origin, value size) and an open-addressing hash of keys to ids: no object per entry, so
// millions of entries cost a few typed arrays instead of millions of heap objects. Each hash slot
// keeps its entry's hash beside the id, so probing past other keys reads no column.

import type { NodeKey } from '../shared/keys.js'
import { grownColumn } from './column.js'

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

/** `count` hash slots, all empty. */
function emptySlots(count: number): Int32Array {
  const slots = new Int32Array(count * 2)
  for (let slot = 0; slot < slots.length; slot += 2) slots[slot] = EMPTY_SLOT
  return slots
}

/** Entries by id; ids of removed entries are reused. */
export class EntryTable {
  #keys: Array<NodeKey | undefined> = []
  #encoded = new Float64Array(16)
  #versions = new Float64Array(16)
  #origins = new Uint32Array(16)
  #sizes = new Uint32Array(16)
  /** Ids of removed entries, to reuse. */
  #free: number[] = []
  /** Open-addressing hash slots, two numbers each: an entry id (or EMPTY_SLOT) and its key's hash. */
  #slots = emptySlots(32)
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
    const slots = this.#slots
    const mask = (slots.length >>> 1) - 1
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const id = slots[slot * 2]
      if (id === EMPTY_SLOT) {
        this.#missedKey = key
        this.#missedHash = hash
        return -1
      }
      if (slots[slot * 2 + 1] === hash && sameKey(this.#keys[id] as NodeKey, key)) return id
    }
  }

  /** Adds a key that is not in the table (the caller owns it: it must not change) and returns its id. */
  add(key: NodeKey, encoded: number): number {
    const id = this.#free.length > 0 ? (this.#free.pop() as number) : this.#keys.length
    if (id === this.#keys.length) {
      this.#keys.push(key)
      if (id === this.#encoded.length) this.#growColumns(id)
    } else this.#keys[id] = key
    const hash = key === this.#missedKey ? this.#missedHash : hashKey(key)
    this.#missedKey = undefined
    this.#encoded[id] = encoded
    this.#versions[id] = 0
    this.#origins[id] = 0
    this.#sizes[id] = 0
    this.#size++
    if (this.#size > (this.#slots.length >>> 1) * MAX_LOAD) this.#rehash(this.#slots.length)
    this.#place(this.#slots, id, hash)
    return id
  }

  /** Makes room in every column for index `id`. */
  #growColumns(id: number): void {
    this.#encoded = grownColumn(this.#encoded, id)
    this.#versions = grownColumn(this.#versions, id)
    this.#origins = grownColumn(this.#origins, id)
    this.#sizes = grownColumn(this.#sizes, id)
  }

  /** Puts entry `id` in the first free slot from its hash's home on. */
  #place(slots: Int32Array, id: number, hash: number): void {
    const mask = (slots.length >>> 1) - 1
    let slot = hash & mask
    while (slots[slot * 2] !== EMPTY_SLOT) slot = (slot + 1) & mask
    slots[slot * 2] = id
    slots[slot * 2 + 1] = hash
  }

  /** Moves every entry into `count` fresh slots. */
  #rehash(count: number): void {
    const old = this.#slots
    const slots = emptySlots(count)
    for (let slot = 0; slot < old.length; slot += 2)
      if (old[slot] !== EMPTY_SLOT) this.#place(slots, old[slot], old[slot + 1])
    this.#slots = slots
  }

  /** Removes entry `id`; its id may be handed out again. */
  remove(id: number): void {
    const slots = this.#slots
    const mask = (slots.length >>> 1) - 1
    let slot = hashKey(this.#keys[id] as NodeKey) & mask
    while (slots[slot * 2] !== id) slot = (slot + 1) & mask
    // Backward-shift deletion: later entries of the probe run move up, so no slot is left marked.
    for (let next = (slot + 1) & mask; ; next = (next + 1) & mask) {
      const moved = slots[next * 2]
      if (moved === EMPTY_SLOT) break
      const home = slots[next * 2 + 1] & mask
      // `moved` fills the hole unless its home lies cyclically in (slot, next].
      if (((next - home) & mask) >= ((next - slot) & mask)) {
        slots[slot * 2] = moved
        slots[slot * 2 + 1] = slots[next * 2 + 1]
        slot = next
      }
    }
    slots[slot * 2] = EMPTY_SLOT
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
    this.#slots = emptySlots(32)
    this.#size = 0
    this.#missedKey = undefined
  }
}
