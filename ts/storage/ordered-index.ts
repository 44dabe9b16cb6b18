// An in-memory ordered set of entries keyed by a number: sorted chunks of at most `maxChunk` entries,
// their keys in Float64Arrays, so searches read contiguous doubles instead of chasing entry objects.

/** Where an entry sits: chunk number and index inside it. `chunk === chunkCount` means "past the end". */
export interface Cursor {
  chunk: number
  index: number
}

interface Chunk<E> {
  /** Sort keys of the entries; only the first `entries.length` slots are used. */
  keys: Float64Array
  entries: E[]
}

/**
 * Entries sorted by `key(entry)` then, among equal keys, by `tie` (which must be a total order:
 * zero only for the same entry). Searches also take monotone predicates, so callers can search by
 * any order-preserving projection of the entries.
 */
export class OrderedIndex<E> {
  readonly #key: (entry: E) => number
  readonly #tie: (a: E, b: E) => number
  readonly #maxChunk: number
  #chunks: Chunk<E>[] = []
  /** Last key of each chunk. */
  #lastKeys = new Float64Array(16)
  #size = 0

  constructor(key: (entry: E) => number, tie: (a: E, b: E) => number, maxChunk = 512) {
    this.#key = key
    this.#tie = tie
    this.#maxChunk = maxChunk
  }

  get size(): number {
    return this.#size
  }

  /** Sign of (stored entry at `keys[index]`/`entries[index]`) minus (`key`, `entry`). */
  #compareAt(keys: Float64Array, entries: E[], index: number, key: number, entry: E): number {
    const difference = keys[index] - key
    return difference !== 0 ? difference : this.#tie(entries[index], entry)
  }

  /** First chunk whose last entry is not before `entry` (or the chunk count). */
  #chunkFor(key: number, entry: E): number {
    let lo = 0
    let hi = this.#chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const difference = this.#lastKeys[mid] - key
      const chunk = this.#chunks[mid]
      const before =
        difference < 0 || (difference === 0 && this.#tie(chunk.entries[chunk.entries.length - 1], entry) < 0)
      if (before) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** First index in a chunk whose entry is not before `entry`. */
  #indexIn(chunk: Chunk<E>, key: number, entry: E): number {
    let lo = 0
    let hi = chunk.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.#compareAt(chunk.keys, chunk.entries, mid, key, entry) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  #setLastKey(chunk: number): void {
    const { keys, entries } = this.#chunks[chunk]
    this.#lastKeys[chunk] = keys[entries.length - 1]
  }

  #insertChunk(at: number, chunk: Chunk<E>): void {
    const count = this.#chunks.length
    if (count + 1 > this.#lastKeys.length) {
      const grown = new Float64Array(this.#lastKeys.length * 2)
      grown.set(this.#lastKeys)
      this.#lastKeys = grown
    }
    this.#lastKeys.copyWithin(at + 1, at, count)
    this.#chunks.splice(at, 0, chunk)
    this.#setLastKey(at)
  }

  #removeChunk(at: number): void {
    this.#lastKeys.copyWithin(at, at + 1, this.#chunks.length)
    this.#chunks.splice(at, 1)
  }

  #newChunk(keys: Float64Array, entries: E[]): Chunk<E> {
    const chunk = { keys: new Float64Array(this.#maxChunk + 1), entries }
    chunk.keys.set(keys)
    return chunk
  }

  /** Adds an entry that is not in the index yet. */
  insert(entry: E): void {
    const key = this.#key(entry)
    if (this.#chunks.length === 0) {
      this.#insertChunk(0, this.#newChunk(Float64Array.of(key), [entry]))
      this.#size = 1
      return
    }
    let at = this.#chunkFor(key, entry)
    if (at === this.#chunks.length) at--
    const chunk = this.#chunks[at]
    const index = this.#indexIn(chunk, key, entry)
    const length = chunk.entries.length
    chunk.keys.copyWithin(index + 1, index, length)
    chunk.keys[index] = key
    chunk.entries.splice(index, 0, entry)
    this.#size++
    if (index === length) this.#setLastKey(at)
    if (chunk.entries.length > this.#maxChunk) {
      const half = chunk.entries.length >>> 1
      const moved = this.#newChunk(
        chunk.keys.subarray(half, chunk.entries.length),
        chunk.entries.splice(half),
      )
      this.#setLastKey(at)
      this.#insertChunk(at + 1, moved)
    }
  }

  /** Removes an entry; false when it was not in the index. */
  remove(entry: E): boolean {
    const key = this.#key(entry)
    const at = this.#chunkFor(key, entry)
    const chunk = this.#chunks[at]
    if (chunk === undefined) return false
    const index = this.#indexIn(chunk, key, entry)
    if (chunk.entries[index] !== entry) return false
    const length = chunk.entries.length
    chunk.keys.copyWithin(index, index + 1, length)
    chunk.entries.splice(index, 1)
    this.#size--
    if (chunk.entries.length === 0) this.#removeChunk(at)
    else if (index === length - 1) this.#setLastKey(at)
    return true
  }

  /** Replaces the content with entries already in index order. */
  load(sorted: readonly E[]): void {
    const half = this.#maxChunk >>> 1
    this.clear()
    for (let from = 0; from < sorted.length; from += half) {
      const entries = sorted.slice(from, from + half)
      const keys = new Float64Array(entries.length)
      for (let i = 0; i < entries.length; i++) keys[i] = this.#key(entries[i])
      this.#insertChunk(this.#chunks.length, this.#newChunk(keys, entries))
    }
    this.#size = sorted.length
  }

  /** The first entry for which `isBefore` is false; `isBefore` must be true on a prefix of the order only. */
  lowerBound(isBefore: (entry: E) => boolean): Cursor {
    let lo = 0
    let hi = this.#chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const { entries } = this.#chunks[mid]
      if (isBefore(entries[entries.length - 1])) lo = mid + 1
      else hi = mid
    }
    const chunk = lo
    if (chunk === this.#chunks.length) return { chunk, index: 0 }
    const { entries } = this.#chunks[chunk]
    lo = 0
    hi = entries.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (isBefore(entries[mid])) lo = mid + 1
      else hi = mid
    }
    return { chunk, index: lo }
  }

  /** Calls `visit` on entries in order from `cursor` until it returns false or the index ends. */
  scanFrom(cursor: Cursor, visit: (entry: E) => boolean): void {
    let index = cursor.index
    for (let chunk = cursor.chunk; chunk < this.#chunks.length; chunk++) {
      const { entries } = this.#chunks[chunk]
      for (; index < entries.length; index++) if (!visit(entries[index])) return
      index = 0
    }
  }

  /** The entries at the given ranks (sorted ascending, each below `size`), in one pass. */
  atRanks(ranks: readonly number[]): E[] {
    const found: E[] = []
    let before = 0
    let chunk = 0
    for (const rank of ranks) {
      while (chunk < this.#chunks.length && before + this.#chunks[chunk].entries.length <= rank) {
        before += this.#chunks[chunk].entries.length
        chunk++
      }
      if (chunk === this.#chunks.length) break
      found.push(this.#chunks[chunk].entries[rank - before])
    }
    return found
  }

  /** Every entry in order, chunk by chunk (the arrays must not be changed). */
  *chunks(): IterableIterator<readonly E[]> {
    for (const chunk of this.#chunks) yield chunk.entries
  }

  clear(): void {
    this.#chunks = []
    this.#lastKeys = new Float64Array(16)
    this.#size = 0
  }
}
