// The ring-ordered index of a node's entries: sorted chunks that keep each entry's id, encoded key
// and position under the current model side by side in one buffer, so searches and scans read
// contiguous memory and an insert moves the tail of a chunk with one copy.

/** How encoded keys map to positions now; `version` changes whenever the mapping does. */
export interface Placement {
  version(): number
  /** Positions of `keys`, written into `out` (same length). */
  place(keys: Float64Array, out: BigUint64Array): void
}

/** 8-byte slots per entry: its id, its encoded key (the sort key), its position. */
const STRIDE = 3
const ID = 0
const KEY = 1
const POSITION = 2

interface Chunk {
  /** The entries' slots (ids and keys read as doubles); only the first `length` entries are used. */
  slots: Float64Array
  /** The same memory, for the positions (under model version `version`). */
  positions: BigUint64Array
  /** The same memory as 32-bit words: positions are copied in through it, with no bigint made. */
  words: Uint32Array
  length: number
  version: number
}

/** An entry id with its current position. */
export interface Placed {
  id: number
  position: bigint
}

/**
 * Entry ids sorted by encoded key then, among equal encoded keys, by `tie` (a total order on ids:
 * zero only for the same entry). Because positions grow with the encoded key under every model,
 * this is ring order under every model version; a chunk's positions are recomputed (one batch
 * call) when it is first read under a new version.
 */
export class RingIndex {
  readonly #tie: (a: number, b: number) => number
  readonly #placement: Placement
  readonly #maxChunk: number
  #chunks: Chunk[] = []
  /** Last encoded key of each chunk. */
  #lastKeys = new Float64Array(16)
  /** Entry count of each chunk (contiguous, so that rank walks touch no chunk object). */
  #counts = new Uint32Array(16)
  #size = 0
  /** A chunk's keys and positions laid out contiguously, for the placement's batch call. */
  #keyScratch: Float64Array
  #positionScratch: BigUint64Array
  /** The position `insert` passes on, as two words. */
  readonly #onePosition = new BigUint64Array(1)
  readonly #onePositionWords = new Uint32Array(this.#onePosition.buffer)

  constructor(tie: (a: number, b: number) => number, placement: Placement, maxChunk = 256) {
    this.#tie = tie
    this.#placement = placement
    this.#maxChunk = maxChunk
    this.#keyScratch = new Float64Array(maxChunk + 1)
    this.#positionScratch = new BigUint64Array(maxChunk + 1)
  }

  get size(): number {
    return this.#size
  }

  /** The chunk with its positions brought to the current version. */
  #fresh(chunk: Chunk): Chunk {
    const version = this.#placement.version()
    if (chunk.version !== version) {
      const { slots, positions, length } = chunk
      const keys = this.#keyScratch.subarray(0, length)
      const placed = this.#positionScratch.subarray(0, length)
      for (let i = 0; i < length; i++) keys[i] = slots[i * STRIDE + KEY]
      this.#placement.place(keys, placed)
      for (let i = 0; i < length; i++) positions[i * STRIDE + POSITION] = placed[i]
      chunk.version = version
    }
    return chunk
  }

  /** First chunk whose last entry is not before (`key`, `id`), or the chunk count. */
  #chunkFor(key: number, id: number): number {
    let lo = 0
    let hi = this.#chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.#after(mid, key, id)) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Whether (`key`, `id`) comes after the last entry of chunk `at`. */
  #after(at: number, key: number, id: number): boolean {
    const difference = key - this.#lastKeys[at]
    if (difference !== 0) return difference > 0
    const chunk = this.#chunks[at]
    return this.#tie(chunk.slots[(chunk.length - 1) * STRIDE + ID], id) < 0
  }

  /** First index in a chunk whose entry is not before (`key`, `id`). */
  #indexIn(chunk: Chunk, key: number, id: number): number {
    const slots = chunk.slots
    let lo = 0
    let hi = chunk.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const difference = slots[mid * STRIDE + KEY] - key
      if (difference < 0 || (difference === 0 && this.#tie(slots[mid * STRIDE + ID], id) < 0)) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  #setLastKey(at: number): void {
    const chunk = this.#chunks[at]
    this.#lastKeys[at] = chunk.slots[(chunk.length - 1) * STRIDE + KEY]
    this.#counts[at] = chunk.length
  }

  #insertChunk(at: number, chunk: Chunk): void {
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

  #newChunk(version: number): Chunk {
    const slots = new Float64Array((this.#maxChunk + 1) * STRIDE)
    const buffer = slots.buffer
    return {
      slots,
      positions: new BigUint64Array(buffer),
      words: new Uint32Array(buffer),
      length: 0,
      version,
    }
  }

  /** Adds entry `id` (not in the index yet) with its encoded key and its position under the current version. */
  insert(id: number, key: number, position: bigint): void {
    this.#onePosition[0] = position
    this.#insertOne(id, key, this.#onePositionWords, 0)
  }

  /**
   * Adds entries `ids[i]` (none in the index yet) with encoded keys `keys[i]` and positions
   * `positions[i]` under the current version: `insert` for each, with no bigint made per entry.
   */
  insertMany(ids: ArrayLike<number>, keys: Float64Array, positions: BigUint64Array): void {
    const positionWords = new Uint32Array(positions.buffer, positions.byteOffset, positions.length * 2)
    for (let i = 0; i < ids.length; i++) this.#insertOne(ids[i], keys[i], positionWords, i * 2)
  }

  /** `insert`, the position being the two words of `positionWords` from `from` on. */
  #insertOne(id: number, key: number, positionWords: Uint32Array, from: number): void {
    const last = this.#chunks.length - 1
    if (last < 0) {
      this.#insertChunk(0, this.#newChunk(this.#placement.version()))
      this.#insertAt(0, 0, id, key, positionWords, from)
      return
    }
    if (this.#after(last, key, id)) {
      // Past the last entry: keys arriving in order skip both searches.
      this.#insertAt(last, this.#chunks[last].length, id, key, positionWords, from)
      return
    }
    const at = Math.min(this.#chunkFor(key, id), last)
    this.#insertAt(at, this.#indexIn(this.#chunks[at], key, id), id, key, positionWords, from)
  }

  #insertAt(
    at: number,
    index: number,
    id: number,
    key: number,
    positionWords: Uint32Array,
    from: number,
  ): void {
    const chunk = this.#chunks[at]
    const { slots, words, length } = chunk
    // A byte copy: the positions' bits move untouched.
    if (index < length) slots.copyWithin((index + 1) * STRIDE, index * STRIDE, length * STRIDE)
    slots[index * STRIDE + ID] = id
    slots[index * STRIDE + KEY] = key
    const word = (index * STRIDE + POSITION) * 2
    words[word] = positionWords[from]
    words[word + 1] = positionWords[from + 1]
    chunk.length = length + 1
    this.#size++
    this.#counts[at]++
    if (index === length) this.#setLastKey(at)
    if (chunk.length > this.#maxChunk) this.#split(at, index === length)
  }

  /**
   * Splits a full chunk in halves, or, when it just grew at its end (keys arriving in order), keeps
   * it full and starts the next chunk with its last entry: ordered loads leave full chunks.
   */
  #split(at: number, appended: boolean): void {
    const chunk = this.#chunks[at]
    const length = chunk.length
    const from = appended ? length - 1 : length >>> 1
    const moved = this.#newChunk(chunk.version)
    moved.positions.set(chunk.positions.subarray(from * STRIDE, length * STRIDE))
    moved.length = length - from
    chunk.length = from
    this.#setLastKey(at)
    this.#insertChunk(at + 1, moved)
  }

  /** Removes entry `id` whose encoded key is `key`; false when it was not in the index. */
  remove(id: number, key: number): boolean {
    const at = this.#chunkFor(key, id)
    const chunk = this.#chunks[at]
    if (chunk === undefined) return false
    const index = this.#indexIn(chunk, key, id)
    if (index >= chunk.length || chunk.slots[index * STRIDE + ID] !== id) return false
    const length = chunk.length
    chunk.slots.copyWithin(index * STRIDE, (index + 1) * STRIDE, length * STRIDE)
    chunk.length = length - 1
    this.#size--
    this.#counts[at]--
    if (chunk.length === 0) this.#removeChunk(at)
    else if (index === length - 1) this.#setLastKey(at)
    return true
  }

  /**
   * Replaces the content with entries already in index order: `ids[i]` has encoded key `keys[i]`
   * (positions are computed when read).
   */
  load(ids: ArrayLike<number>, keys: ArrayLike<number>): void {
    // The chunks are refilled rather than replaced: freeing millions of entries' chunks at once
    // would leave their memory in the allocator, where RSS keeps it.
    const spare = this.#chunks
    this.clear()
    // Full chunks: a chunk splits in halves on its first insert after this, as B-trees do.
    const fill = this.#maxChunk
    for (let from = 0; from < ids.length; from += fill) {
      const chunk = spare.pop() ?? this.#newChunk(Number.NaN)
      chunk.version = Number.NaN
      const to = Math.min(ids.length, from + fill)
      for (let i = from; i < to; i++) {
        chunk.slots[(i - from) * STRIDE + ID] = ids[i]
        chunk.slots[(i - from) * STRIDE + KEY] = keys[i]
      }
      chunk.length = to - from
      this.#insertChunk(this.#chunks.length, chunk)
    }
    this.#size = ids.length
  }

  /** Index of the first chunk whose last position is not below `hashMin`. */
  #firstChunkFrom(hashMin: bigint): number {
    let lo = 0
    let hi = this.#chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const chunk = this.#fresh(this.#chunks[mid])
      if (chunk.positions[(chunk.length - 1) * STRIDE + POSITION] < hashMin) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /**
   * Calls `visit` on each entry whose position lies in [hashMin, hashMax], in order, until it
   * returns false. Searches chunks by their last position, then the chunk's positions: contiguous reads only.
   */
  scan(hashMin: bigint, hashMax: bigint, visit: (id: number, position: bigint) => unknown): void {
    const first = this.#firstChunkFrom(hashMin)
    for (let at = first; at < this.#chunks.length; at++) {
      const { slots, positions, length } = this.#fresh(this.#chunks[at])
      let index = 0
      if (at === first) {
        let end = length - 1
        while (index < end) {
          const mid = (index + end) >>> 1
          if (positions[mid * STRIDE + POSITION] < hashMin) index = mid + 1
          else end = mid
        }
      }
      for (; index < length; index++) {
        const position = positions[index * STRIDE + POSITION]
        if (position > hashMax || visit(slots[index * STRIDE + ID], position) === false) return
      }
    }
  }

  /** The entries at the given ranks (sorted ascending, each below `size`) with their positions. */
  atRanks(ranks: readonly number[]): Placed[] {
    const found: Placed[] = []
    let before = 0
    let at = 0
    for (const rank of ranks) {
      while (at < this.#chunks.length && before + this.#counts[at] <= rank) {
        before += this.#counts[at]
        at++
      }
      if (at === this.#chunks.length) break
      const chunk = this.#fresh(this.#chunks[at])
      const index = (rank - before) * STRIDE
      found.push({ id: chunk.slots[index + ID], position: chunk.positions[index + POSITION] })
    }
    return found
  }

  /** Every entry id, in order. */
  ids(): Uint32Array {
    return this.#column(new Uint32Array(this.#size), ID)
  }

  /** Every entry's encoded key, in order. */
  encodedKeys(): Float64Array {
    return this.#column(new Float64Array(this.#size), KEY)
  }

  /** One slot of every entry, in order, written into `out`. */
  #column<T extends Uint32Array | Float64Array>(out: T, slot: number): T {
    let offset = 0
    for (const { slots, length } of this.#chunks) {
      for (let i = 0; i < length; i++) out[offset + i] = slots[i * STRIDE + slot]
      offset += length
    }
    return out
  }

  /**
   * Brings every chunk's positions to the current version, awaiting `pause()` after each
   * `batch` entries so that other work runs in between.
   */
  async refresh(pause: () => Promise<void>, batch: number): Promise<void> {
    let sincePause = 0
    for (let at = 0; at < this.#chunks.length; at++) {
      this.#fresh(this.#chunks[at])
      sincePause += this.#chunks[at].length
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
