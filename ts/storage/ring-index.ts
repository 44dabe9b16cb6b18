// The ring-ordered index of a node's entries: sorted chunks that keep each entry's encoded key and
// its position under the current model in typed arrays, so searches and scans read contiguous memory.

/** How encoded keys map to positions now; `version` changes whenever the mapping does. */
export interface Placement {
  version(): number
  /** Positions of `keys`, written into `out` (same length). */
  place(keys: Float64Array, out: BigUint64Array): void
}

interface Chunk<E> {
  /** Sort keys of the entries; only the first `entries.length` slots are used. */
  keys: Float64Array
  /** Positions of the entries under model version `version`. */
  positions: BigUint64Array
  version: number
  entries: E[]
}

/** An entry with its current position. */
export interface Placed<E> {
  entry: E
  position: bigint
}

/**
 * Entries sorted by `encoded` then, among equal encoded keys, by `tie` (a total order: zero only
 * for the same entry). Because positions grow with `encoded` under every model, this is ring order
 * under every model version; a chunk's positions are recomputed (one batch call) when it is first
 * read under a new version.
 */
export class RingIndex<E extends { readonly encoded: number }> {
  readonly #tie: (a: E, b: E) => number
  readonly #placement: Placement
  readonly #maxChunk: number
  #chunks: Chunk<E>[] = []
  /** Last encoded key of each chunk. */
  #lastKeys = new Float64Array(16)
  /** Entry count of each chunk (contiguous, so that rank walks touch no chunk object). */
  #counts = new Uint32Array(16)
  #size = 0

  constructor(tie: (a: E, b: E) => number, placement: Placement, maxChunk = 256) {
    this.#tie = tie
    this.#placement = placement
    this.#maxChunk = maxChunk
  }

  get size(): number {
    return this.#size
  }

  /** The chunk with its positions brought to the current version. */
  #fresh(chunk: Chunk<E>): Chunk<E> {
    const version = this.#placement.version()
    if (chunk.version !== version) {
      const length = chunk.entries.length
      this.#placement.place(chunk.keys.subarray(0, length), chunk.positions.subarray(0, length))
      chunk.version = version
    }
    return chunk
  }

  /** First chunk whose last entry is not before (`key`, `entry`), or the chunk count. */
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

  /** First index in a chunk whose entry is not before (`key`, `entry`). */
  #indexIn(chunk: Chunk<E>, key: number, entry: E): number {
    let lo = 0
    let hi = chunk.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const difference = chunk.keys[mid] - key
      if (difference < 0 || (difference === 0 && this.#tie(chunk.entries[mid], entry) < 0)) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  #setLastKey(at: number): void {
    const { keys, entries } = this.#chunks[at]
    this.#lastKeys[at] = keys[entries.length - 1]
    this.#counts[at] = entries.length
  }

  #insertChunk(at: number, chunk: Chunk<E>): void {
    const count = this.#chunks.length
    if (count + 1 > this.#lastKeys.length) {
      const grownKeys = new Float64Array(this.#lastKeys.length * 2)
      grownKeys.set(this.#lastKeys)
      this.#lastKeys = grownKeys
      const grownCounts = new Uint32Array(this.#counts.length * 2)
      grownCounts.set(this.#counts)
      this.#counts = grownCounts
    }
    this.#lastKeys.copyWithin(at + 1, at, count)
    this.#counts.copyWithin(at + 1, at, count)
    this.#chunks.splice(at, 0, chunk)
    this.#setLastKey(at)
  }

  #removeChunk(at: number): void {
    this.#lastKeys.copyWithin(at, at + 1, this.#chunks.length)
    this.#counts.copyWithin(at, at + 1, this.#chunks.length)
    this.#chunks.splice(at, 1)
  }

  #newChunk(entries: E[], version: number): Chunk<E> {
    const chunk = {
      keys: new Float64Array(this.#maxChunk + 1),
      positions: new BigUint64Array(this.#maxChunk + 1),
      version,
      entries,
    }
    for (let i = 0; i < entries.length; i++) chunk.keys[i] = entries[i].encoded
    return chunk
  }

  /** Adds an entry that is not in the index yet, with its position under the current version. */
  insert(entry: E, position: bigint): void {
    const key = entry.encoded
    if (this.#chunks.length === 0) {
      const chunk = this.#newChunk([entry], this.#placement.version())
      chunk.positions[0] = position
      this.#insertChunk(0, chunk)
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
    chunk.positions.copyWithin(index + 1, index, length)
    chunk.positions[index] = position
    chunk.entries.splice(index, 0, entry)
    this.#size++
    this.#counts[at]++
    if (index === length) this.#setLastKey(at)
    if (chunk.entries.length > this.#maxChunk) this.#split(at)
  }

  #split(at: number): void {
    const chunk = this.#chunks[at]
    const half = chunk.entries.length >>> 1
    const length = chunk.entries.length
    const moved = this.#newChunk(chunk.entries.splice(half), chunk.version)
    moved.positions.set(chunk.positions.subarray(half, length))
    this.#setLastKey(at)
    this.#insertChunk(at + 1, moved)
  }

  /** Removes an entry; false when it was not in the index. */
  remove(entry: E): boolean {
    const key = entry.encoded
    const at = this.#chunkFor(key, entry)
    const chunk = this.#chunks[at]
    if (chunk === undefined) return false
    const index = this.#indexIn(chunk, key, entry)
    if (chunk.entries[index] !== entry) return false
    const length = chunk.entries.length
    chunk.keys.copyWithin(index, index + 1, length)
    chunk.positions.copyWithin(index, index + 1, length)
    chunk.entries.splice(index, 1)
    this.#size--
    this.#counts[at]--
    if (chunk.entries.length === 0) this.#removeChunk(at)
    else if (index === length - 1) this.#setLastKey(at)
    return true
  }

  /** Replaces the content with entries already in index order (their positions are computed when read). */
  load(sorted: readonly E[]): void {
    const half = this.#maxChunk >>> 1
    this.clear()
    for (let from = 0; from < sorted.length; from += half) {
      this.#insertChunk(this.#chunks.length, this.#newChunk(sorted.slice(from, from + half), Number.NaN))
    }
    this.#size = sorted.length
  }

  /**
   * Calls `visit` on each entry whose position lies in [hashMin, hashMax], in order, until it
   * returns false. Searches chunks by their last position, then the chunk's positions: contiguous reads only.
   */
  scan(hashMin: bigint, hashMax: bigint, visit: (entry: E, position: bigint) => unknown): void {
    let lo = 0
    let hi = this.#chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const chunk = this.#fresh(this.#chunks[mid])
      if (chunk.positions[chunk.entries.length - 1] < hashMin) lo = mid + 1
      else hi = mid
    }
    for (let at = lo; at < this.#chunks.length; at++) {
      const { positions, entries } = this.#fresh(this.#chunks[at])
      let index = 0
      if (at === lo) {
        let end = entries.length - 1
        while (index < end) {
          const mid = (index + end) >>> 1
          if (positions[mid] < hashMin) index = mid + 1
          else end = mid
        }
      }
      for (; index < entries.length; index++) {
        const position = positions[index]
        if (position > hashMax || visit(entries[index], position) === false) return
      }
    }
  }

  /** The entries at the given ranks (sorted ascending, each below `size`) with their positions. */
  atRanks(ranks: readonly number[]): Array<Placed<E>> {
    const found: Array<Placed<E>> = []
    let before = 0
    let at = 0
    for (const rank of ranks) {
      while (at < this.#chunks.length && before + this.#counts[at] <= rank) {
        before += this.#counts[at]
        at++
      }
      if (at === this.#chunks.length) break
      const chunk = this.#fresh(this.#chunks[at])
      found.push({ entry: chunk.entries[rank - before], position: chunk.positions[rank - before] })
    }
    return found
  }

  /** Every entry, in order. */
  entries(): E[] {
    return this.#chunks.flatMap((chunk) => chunk.entries)
  }

  /** Every entry's encoded key, in order. */
  encodedKeys(): Float64Array {
    const keys = new Float64Array(this.#size)
    let offset = 0
    for (const chunk of this.#chunks) {
      keys.set(chunk.keys.subarray(0, chunk.entries.length), offset)
      offset += chunk.entries.length
    }
    return keys
  }

  /**
   * Brings every chunk's positions to the current version, awaiting `pause()` after each
   * `batch` entries so that other work runs in between.
   */
  async refresh(pause: () => Promise<void>, batch: number): Promise<void> {
    let sincePause = 0
    for (let at = 0; at < this.#chunks.length; at++) {
      this.#fresh(this.#chunks[at])
      sincePause += this.#chunks[at].entries.length
      if (sincePause >= batch) {
        sincePause = 0
        await pause()
      }
    }
  }

  clear(): void {
    this.#chunks = []
    this.#lastKeys = new Float64Array(16)
    this.#counts = new Uint32Array(16)
    this.#size = 0
  }
}
