// Entries of a leaving vnode's arc that arrived ahead of its Leave (they did not fit one frame):
// kept aside until the Leave is accepted, and forgotten if it never comes.

import type { ScannedRecord } from '../shared/data-plane.js'

/** Parts of hand-overs waiting for their Leave, by hand-over (leaving peer, vnode and arc start). */
export class StagedHandOvers {
  readonly #staged = new Map<string, { records: ScannedRecord[]; at: number }>()
  readonly #keepMs: number

  /** `keepMs`: how long parts wait for their Leave (a leaver's patience, and then some). */
  constructor(keepMs: number) {
    this.#keepMs = keepMs
  }

  /** Adds a part; parts of hand-overs whose Leave never came are dropped. */
  add(handOver: string, records: readonly ScannedRecord[]): void {
    const now = performance.now()
    for (const [key, staged] of this.#staged) if (now - staged.at > this.#keepMs) this.#staged.delete(key)
    const staged = this.#staged.get(handOver)
    if (staged === undefined) this.#staged.set(handOver, { records: [...records], at: now })
    else {
      staged.records.push(...records)
      staged.at = now
    }
  }

  /** The parts received for a hand-over, which are forgotten here. */
  take(handOver: string): ScannedRecord[] {
    const staged = this.#staged.get(handOver)
    this.#staged.delete(handOver)
    return staged?.records ?? []
  }

  /** Forgets the parts of a hand-over (its Leave starts again, or was already taken). */
  drop(handOver: string): void {
    this.#staged.delete(handOver)
  }
}
