// An in-memory ordered set: a list of sorted chunks (each at most `maxChunk` long) with binary
// search over chunks, so inserts and deletes move a few hundred references and scans stay contiguous.

/** Where an entry sits: chunk number and index inside it. `chunk === chunkCount` means "past the end". */
export interface Cursor {
  chunk: number
  index: number
}

/**
 * Entries kept sorted by `compare`; no two entries may compare equal.
 * Searches take monotone predicates, so callers can search by any order-preserving projection.
 */
export class OrderedIndex<E> {
  readonly #compare: (a: E, b: E) => number
  readonly #maxChunk: number
  #chunks: E[][] = []
  #size = 0

  constructor(compare: (a: E, b: E) => number, maxChunk = 512) {
    this.#compare = compare
    this.#maxChunk = maxChunk
  }

  get size(): number {
    return this.#size
  }

  /** Index of the first chunk whose last entry is not before `isBefore`, or the chunk count. */
  #firstChunkNotBefore(isBefore: (entry: E) => boolean): number {
    let lo = 0
    let hi = this.#chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const chunk = this.#chunks[mid]
      if (isBefore(chunk[chunk.length - 1])) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** The first entry for which `isBefore` is false; `isBefore` must be true on a prefix of the order only. */
  lowerBound(isBefore: (entry: E) => boolean): Cursor {
    const chunk = this.#firstChunkNotBefore(isBefore)
    if (chunk === this.#chunks.length) return { chunk, index: 0 }
    const entries = this.#chunks[chunk]
    let lo = 0
    let hi = entries.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (isBefore(entries[mid])) lo = mid + 1
      else hi = mid
    }
    return { chunk, index: lo }
  }

  #cursorOf(entry: E): Cursor {
    return this.lowerBound((other) => this.#compare(other, entry) < 0)
  }

  /** Adds an entry that is not in the index yet. */
  insert(entry: E): void {
    if (this.#chunks.length === 0) {
      this.#chunks.push([entry])
      this.#size = 1
      return
    }
    let { chunk, index } = this.#cursorOf(entry)
    if (chunk === this.#chunks.length) {
      chunk--
      index = this.#chunks[chunk].length
    }
    const entries = this.#chunks[chunk]
    entries.splice(index, 0, entry)
    this.#size++
    if (entries.length > this.#maxChunk)
      this.#chunks.splice(chunk + 1, 0, entries.splice(entries.length >>> 1))
  }

  /** Removes an entry; false when it was not in the index. */
  remove(entry: E): boolean {
    const { chunk, index } = this.#cursorOf(entry)
    const entries = this.#chunks[chunk]
    if (entries === undefined || entries[index] !== entry) return false
    entries.splice(index, 1)
    this.#size--
    if (entries.length === 0) this.#chunks.splice(chunk, 1)
    return true
  }

  /** Replaces the content with entries already sorted by `compare`. */
  load(sorted: readonly E[]): void {
    const half = this.#maxChunk >>> 1
    this.#chunks = []
    for (let i = 0; i < sorted.length; i += half) this.#chunks.push(sorted.slice(i, i + half))
    this.#size = sorted.length
  }

  /** Calls `visit` on entries in order from `cursor` until it returns false or the index ends. */
  scanFrom(cursor: Cursor, visit: (entry: E) => boolean): void {
    let index = cursor.index
    for (let chunk = cursor.chunk; chunk < this.#chunks.length; chunk++) {
      const entries = this.#chunks[chunk]
      for (; index < entries.length; index++) if (!visit(entries[index])) return
      index = 0
    }
  }

  /** Number of entries before `cursor`. */
  rank(cursor: Cursor): number {
    let rank = cursor.index
    for (let chunk = 0; chunk < cursor.chunk; chunk++) rank += this.#chunks[chunk].length
    return rank
  }

  /** The entries at the given ranks (sorted ascending, each below `size`), in one pass. */
  atRanks(ranks: readonly number[]): E[] {
    const found: E[] = []
    let before = 0
    let chunk = 0
    for (const rank of ranks) {
      while (chunk < this.#chunks.length && before + this.#chunks[chunk].length <= rank) {
        before += this.#chunks[chunk].length
        chunk++
      }
      if (chunk === this.#chunks.length) break
      found.push(this.#chunks[chunk][rank - before])
    }
    return found
  }

  /** Every entry in order, chunk by chunk (the arrays must not be changed). */
  *chunks(): IterableIterator<readonly E[]> {
    yield* this.#chunks
  }

  clear(): void {
    this.#chunks = []
    this.#size = 0
  }
}
