// Hinted hand-off: the records a replica missed while it did not answer are held by the owner and
// delivered once the replica answers again, within a byte and an age bound (repair does the rest).

import type { ScannedRecord } from '../shared/data-plane.js'
import type { VnodeRef } from '../shared/router.js'
import { recordBytes } from './records.js'

/** Bounds of the hints one peer holds. */
export interface HintInit {
  /** Bytes of records held for all replicas together; the oldest hints are dropped past it. Default 64 MiB. */
  maxBytes: number
  /** Age past which a hint is dropped (the replica is brought up to date by repair). Default 10 minutes. */
  maxAgeMs: number
}

/** What `getStats().replication.hints` reports. */
export interface HintStats {
  /** Records held now, their bytes, and the replicas they wait for. */
  held: number
  heldBytes: number
  replicas: number
  /** Records delivered to replicas that answered again, and records dropped by the bounds, since start. */
  delivered: number
  dropped: number
}

interface Hint {
  records: ScannedRecord[]
  bytes: number
  at: number
}

const DEFAULTS: HintInit = { maxBytes: 64 * 1024 * 1024, maxAgeMs: 10 * 60 * 1000 }

/** The hints of every replica, oldest first. */
export class HintedHandOff {
  readonly #send: (replica: VnodeRef, records: ScannedRecord[]) => Promise<void>
  readonly #bounds: HintInit
  readonly #byPeer = new Map<string, { replica: VnodeRef; hints: Hint[] }>()
  #bytes = 0
  #held = 0
  #delivered = 0
  #dropped = 0

  constructor(
    send: (replica: VnodeRef, records: ScannedRecord[]) => Promise<void>,
    bounds?: Partial<HintInit>,
  ) {
    this.#send = send
    this.#bounds = { ...DEFAULTS, ...bounds }
  }

  /** Keeps `records` for `replica`, dropping the oldest hints when the bytes exceed the bound. */
  hold(replica: VnodeRef, records: ScannedRecord[]): void {
    let bytes = 0
    for (const record of records) bytes += recordBytes(record)
    let peer = this.#byPeer.get(replica.peerId)
    if (peer === undefined) {
      peer = { replica, hints: [] }
      this.#byPeer.set(replica.peerId, peer)
    }
    peer.replica = replica
    peer.hints.push({ records, bytes, at: Date.now() })
    this.#bytes += bytes
    this.#held += records.length
    while (this.#bytes > this.#bounds.maxBytes) this.#dropOldest()
  }

  #dropOldest(): void {
    let oldest: { peerId: string; at: number } | undefined
    for (const [peerId, { hints }] of this.#byPeer) {
      if (hints.length > 0 && (oldest === undefined || hints[0].at < oldest.at))
        oldest = { peerId, at: hints[0].at }
    }
    if (oldest === undefined) return
    const peer = this.#byPeer.get(oldest.peerId) as { hints: Hint[] }
    const dropped = peer.hints.shift() as Hint
    this.#forget(dropped)
    this.#dropped += dropped.records.length
    if (peer.hints.length === 0) this.#byPeer.delete(oldest.peerId)
  }

  #forget(hint: Hint): void {
    this.#bytes -= hint.bytes
    this.#held -= hint.records.length
  }

  /**
   * Drops hints past their age, then sends each replica the hints held for it (one try per
   * replica: one that still does not answer keeps its hints for the next call).
   */
  async deliver(signal: AbortSignal): Promise<void> {
    const horizon = Date.now() - this.#bounds.maxAgeMs
    for (const [peerId, peer] of [...this.#byPeer]) {
      if (signal.aborted) return
      while (peer.hints.length > 0 && peer.hints[0].at < horizon) {
        const expired = peer.hints.shift() as Hint
        this.#forget(expired)
        this.#dropped += expired.records.length
      }
      if (peer.hints.length === 0) {
        this.#byPeer.delete(peerId)
        continue
      }
      const taken = new Set(peer.hints)
      try {
        await this.#send(
          peer.replica,
          peer.hints.flatMap((hint) => hint.records),
        )
      } catch {
        continue
      }
      // Hints held while this delivery was under way stay for the next one; those dropped meanwhile are gone.
      const remaining: Hint[] = []
      for (const hint of peer.hints) {
        if (!taken.has(hint)) {
          remaining.push(hint)
          continue
        }
        this.#forget(hint)
        this.#delivered += hint.records.length
      }
      peer.hints = remaining
      if (peer.hints.length === 0 && this.#byPeer.get(peerId) === peer) this.#byPeer.delete(peerId)
    }
  }

  stats(): HintStats {
    return {
      held: this.#held,
      heldBytes: this.#bytes,
      replicas: this.#byPeer.size,
      delivered: this.#delivered,
      dropped: this.#dropped,
    }
  }
}
