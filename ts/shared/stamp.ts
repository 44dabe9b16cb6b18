// Versions of stored entries: a hybrid logical clock timestamp and the writing peer's tag, so that
// every replica picks the same newest write of a key (last writer wins) and deletes stay deleted.

import { createHash } from 'node:crypto'

/** Which write of a key an entry holds. Compared by `version`, then by `origin`. */
export interface Stamp {
  /** Hybrid logical clock timestamp: milliseconds × 2048 plus a counter. */
  version: number
  /** 32-bit tag of the peer that made the write (ties between peers). */
  origin: number
  /** A tombstone: the key was deleted by this write. */
  deleted: boolean
}

/** Writes per millisecond the clock counts before it runs ahead of the wall clock. */
const TICKS_PER_MS = 2048

/** Positive when stamp `a` is newer than `b`, negative when older, 0 for the same write. */
export function compareStamps(a: Stamp, b: Stamp): number {
  return a.version - b.version || a.origin - b.origin
}

/** The 32-bit tag of a peer id. */
export function originOf(peerId: string): number {
  return createHash('sha256').update(peerId).digest().readUInt32BE(0)
}

/** The wall-clock millisecond a version was made at (for tombstone expiry). */
export function versionTime(version: number): number {
  return Math.floor(version / TICKS_PER_MS)
}

/**
 * A hybrid logical clock: each stamp is later than every stamp made or observed before it, and
 * close to the wall clock, so a write made after another one was seen always wins over it.
 */
export class HybridClock {
  #last = 0

  /** A version later than every one made or observed so far. */
  next(): number {
    this.#last = Math.max(this.#last + 1, Date.now() * TICKS_PER_MS)
    return this.#last
  }

  /** The first of `count` consecutive versions, each one as `next` would make it. */
  nextMany(count: number): number {
    const first = Math.max(this.#last + 1, Date.now() * TICKS_PER_MS)
    this.#last = first + count - 1
    return first
  }

  /** Takes in a version made elsewhere. */
  observe(version: number): void {
    if (version > this.#last) this.#last = version
  }
}
