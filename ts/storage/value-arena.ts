// Values held in memory, packed one after another into 1 MiB pages instead of one buffer each:
// a small value costs its bytes plus 8 bytes of columns (its length is the caller's to keep). Replaced and removed values are garbage
// until the arena is compacted into fresh pages (views handed out earlier keep their old page).

import { grownColumn } from './column.js'

const PAGE_BYTES = 1 << 20
/** Values of this size and more get a buffer of their own. */
const LARGE_VALUE = PAGE_BYTES >>> 2
/** The `pages` mark of a value held in `large`; 0 marks no value, n a value in page n − 1. */
const LARGE = 0xffffffff
/** Garbage below this many bytes is never worth a compaction. */
const MIN_COMPACTED_GARBAGE = 8 * PAGE_BYTES

/** Serialized values by entry id; every call about an id that holds a value passes its length. */
export class ValueArena {
  #pages: Uint8Array[] = []
  /** Bytes used of the last page. */
  #used = PAGE_BYTES
  /** Per id: 0, the page number + 1, or LARGE. */
  #pageOf = new Uint32Array(16)
  #offsetOf = new Uint32Array(16)
  readonly #large = new Map<number, Uint8Array>()
  #live = 0
  #garbage = 0

  /** Stores a copy of `bytes` as the value of `id`, which holds none (see `delete`). */
  set(id: number, bytes: Uint8Array): void {
    if (id >= this.#pageOf.length) this.#grow(id)
    this.#live += bytes.length
    if (bytes.length >= LARGE_VALUE) {
      this.#pageOf[id] = LARGE
      this.#large.set(id, Uint8Array.from(bytes))
      return
    }
    this.#append(id, bytes)
  }

  /** Copies the live values into fresh pages when most of the arena is garbage. */
  compactIfWasteful(lengthOf: (id: number) => number): void {
    if (this.#garbage > this.#live && this.#garbage > MIN_COMPACTED_GARBAGE) this.#compact(lengthOf)
  }

  #append(id: number, bytes: Uint8Array): void {
    if (this.#used + bytes.length > PAGE_BYTES) {
      this.#pages.push(new Uint8Array(PAGE_BYTES))
      this.#used = 0
    }
    this.#pages[this.#pages.length - 1].set(bytes, this.#used)
    this.#pageOf[id] = this.#pages.length
    this.#offsetOf[id] = this.#used
    this.#used += bytes.length
  }

  /** Makes room for index `id`. */
  #grow(id: number): void {
    this.#pageOf = grownColumn(this.#pageOf, id)
    this.#offsetOf = grownColumn(this.#offsetOf, id)
  }

  /**
   * The bytes that hold the value of `id` from `offsetOf(id)` on (`lengthOf(id)` of them), or
   * undefined. They never change: decoding later still reads this value.
   */
  bytesOf(id: number): Uint8Array | undefined {
    const page = this.#pageOf[id]
    if (page === 0 || page === undefined) return undefined
    return page === LARGE ? this.#large.get(id) : this.#pages[page - 1]
  }

  offsetOf(id: number): number {
    return this.#pageOf[id] === LARGE ? 0 : this.#offsetOf[id]
  }

  /** The value of `id` (a view: valid until the caller drops it, whatever the arena does next). */
  get(id: number, length: number): Uint8Array | undefined {
    const page = this.#pageOf[id]
    if (page === 0 || page === undefined) return undefined
    if (page === LARGE) return this.#large.get(id)
    const offset = this.#offsetOf[id]
    return this.#pages[page - 1].subarray(offset, offset + length)
  }

  /** Drops the value of `id` (of `length` bytes), if any. */
  delete(id: number, length: number): void {
    const page = this.#pageOf[id]
    if (page === 0 || page === undefined) return
    this.#live -= length
    if (page === LARGE) this.#large.delete(id)
    else this.#garbage += length
    this.#pageOf[id] = 0
  }

  /** Copies every live value into fresh pages, in id order. */
  #compact(lengthOf: (id: number) => number): void {
    const pages = this.#pages
    this.#pages = []
    this.#used = PAGE_BYTES
    this.#garbage = 0
    for (let id = 0; id < this.#pageOf.length; id++) {
      const page = this.#pageOf[id]
      if (page === 0 || page === LARGE) continue
      const offset = this.#offsetOf[id]
      this.#append(id, pages[page - 1].subarray(offset, offset + lengthOf(id)))
    }
  }

  clear(): void {
    this.#pages = []
    this.#used = PAGE_BYTES
    this.#pageOf = new Uint32Array(16)
    this.#offsetOf = new Uint32Array(16)
    this.#large.clear()
    this.#live = 0
    this.#garbage = 0
  }
}
