// Orders a peer's data operations against the hand-overs of its ring transitions (join, leave).

import { type Deadline, signalOf } from './deadline.js'

/**
 * Data operations run `shared`: each decides what this peer owns and reads or writes the store
 * with no hand-over in between (else a write could land after its arc was copied away, or a read
 * miss entries that just left). A hand-over runs `exclusive`: it waits for the shared work in flight,
 * and new shared work waits for it. Hand-overs may overlap one another (each moves its own arc).
 * Shared work must not call other peers, or two peers handing over to each other could wait forever.
 */
export class TransitionGate {
  #shared = 0
  #exclusive = 0
  #waiters: Array<() => void> = []

  /** Runs `work` shared; waiting for a hand-over ends when the deadline's signal aborts. */
  async shared<T>(work: () => Promise<T>, deadline?: Deadline): Promise<T> {
    let signal = typeof deadline === 'function' ? undefined : deadline
    // Checked again right before counting in: an `await` in between would let a hand-over slip in.
    while (this.#exclusive > 0) {
      if (deadline !== undefined) signal ??= signalOf(deadline)
      await this.#wait(signal)
    }
    signal?.throwIfAborted()
    this.#shared++
    try {
      return await work()
    } finally {
      if (--this.#shared === 0) this.#wake()
    }
  }

  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    this.#exclusive++
    try {
      while (this.#shared > 0) await this.#wait()
      return await work()
    } finally {
      if (--this.#exclusive === 0) this.#wake()
    }
  }

  /** Resolves once no hand-over is running. */
  async idle(signal?: AbortSignal): Promise<void> {
    while (this.#exclusive > 0) await this.#wait(signal)
    signal?.throwIfAborted()
  }

  #wait(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    return new Promise((resolve) => {
      this.#waiters.push(resolve)
      signal?.addEventListener('abort', () => resolve(), { once: true })
    })
  }

  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const wake of waiters) wake()
  }
}
