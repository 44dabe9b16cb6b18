// Bytes held for frames that have not fully arrived, counted per connection and per node, so that
// peers sending the start of big frames and never the rest cost bounded memory, released on reset.

import { ProtocolError } from './errors.js'

/** A stream's unfinished frames would take its connection or its node over budget (nothing more is read). */
export class FrameBudgetExceededError extends ProtocolError {
  constructor(message: string) {
    super(message, 'ERR_DLHT_FRAME_BUDGET_EXCEEDED')
  }
}

/** An unfinished frame did not complete in time (a slow or stalled sender). */
export class SlowFrameError extends ProtocolError {
  constructor(message: string) {
    super(message, 'ERR_DLHT_SLOW_FRAME')
  }
}

/** A pool of bytes shared by its holders, with a limit. */
export class BytePool {
  readonly limit: number
  #used = 0

  constructor(limit: number) {
    this.limit = limit
  }

  /** Bytes held now. */
  get used(): number {
    return this.#used
  }

  /** Whether `bytes` more fit. */
  fits(bytes: number): boolean {
    return this.#used + bytes <= this.limit
  }

  /** Changes the bytes held by `delta` (positive to take, negative to give back). */
  change(delta: number): void {
    this.#used += delta
  }
}

/**
 * What one stream's reader holds, charged to its connection's pool and the node's. `hold` sets
 * the bytes held now; `release` gives them all back (a finished, reset or closed stream).
 */
export class FrameAccount {
  readonly #pools: readonly BytePool[]
  #held = 0

  constructor(pools: readonly BytePool[]) {
    this.#pools = pools
  }

  get held(): number {
    return this.#held
  }

  /**
   * Holds `bytes` in all (instead of what was held before).
   * @throws FrameBudgetExceededError, holding nothing more, when a pool would go over its limit
   */
  hold(bytes: number): void {
    const delta = bytes - this.#held
    if (delta > 0) {
      for (const pool of this.#pools) {
        if (!pool.fits(delta)) {
          throw new FrameBudgetExceededError(
            `unfinished frames would hold more than ${pool.limit} bytes (${pool.used} held)`,
          )
        }
      }
    }
    for (const pool of this.#pools) pool.change(delta)
    this.#held = bytes
  }

  release(): void {
    this.hold(0)
  }
}
