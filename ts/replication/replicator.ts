// The owner's side of a replicated write: stamped records go to the other replicas of their
// positions, one message per replica peer, and the write is acknowledged once the write quorum
// (the owner included) of every record stored it. Records a replica missed wait for it as hints.

import type { ScannedRecord } from '../shared/data-plane.js'
import { QuorumNotReachedError } from '../shared/errors.js'
import type { VnodeRef } from '../shared/router.js'
import { HintedHandOff, type HintInit, type HintStats } from './hints.js'

/** Records that share their other replicas (those of one owning vnode). */
export interface ReplicaGroup {
  /** Replicas other than this peer, one vnode per peer. */
  replicas: readonly VnodeRef[]
  records: ScannedRecord[]
}

export interface ReplicatorInit {
  /** Replicas, the owner included, that must store a write. */
  writeQuorum: number
  /** Stores stamped records on a replica's peer (last writer wins there). */
  send(replica: VnodeRef, records: ScannedRecord[]): Promise<void>
  /** Bounds of the writes held for replicas that did not answer (see HintedHandOff). */
  hints?: Partial<HintInit>
}

/** Counters of the writes this peer replicated as owner. */
export interface ReplicatorStats {
  /** Records stored by replicas, and messages to replicas that failed (their records became hints). */
  replicatedRecords: number
  failedSends: number
  hints: HintStats
}

/** One replica peer's share of a write: every record it must hold, and the groups they belong to. */
interface PeerShare {
  replica: VnodeRef
  records: ScannedRecord[]
  groups: number[]
}

/** Sends the owner's writes to the other replicas and waits for the write quorum. */
export class Replicator {
  readonly #init: ReplicatorInit
  readonly #hints: HintedHandOff
  readonly #counts = { replicatedRecords: 0, failedSends: 0 }

  constructor(init: ReplicatorInit) {
    this.#init = init
    this.#hints = new HintedHandOff(init.send, init.hints)
  }

  get stats(): ReplicatorStats {
    return { ...this.#counts, hints: this.#hints.stats() }
  }

  /**
   * Resolves once every group reached its quorum: `writeQuorum - 1` replicas beyond the owner, or
   * all of them when the ring has fewer peers. Each replica peer gets one message with all its
   * records, whatever their groups; sends past the quorum go on in the background, and the
   * records of a failed send are held as hints for that peer.
   * @throws QuorumNotReachedError when too many replicas of a group failed
   */
  replicate(groups: readonly ReplicaGroup[]): Promise<void> {
    const shares = new Map<string, PeerShare>()
    const needed = groups.map(({ replicas }) => Math.min(this.#init.writeQuorum - 1, replicas.length))
    for (let g = 0; g < groups.length; g++) {
      for (const replica of groups[g].replicas) {
        let share = shares.get(replica.peerId)
        if (share === undefined) {
          share = { replica, records: [], groups: [] }
          shares.set(replica.peerId, share)
        }
        share.groups.push(g)
        for (const record of groups[g].records) share.records.push(record)
      }
    }
    const stored = new Array<number>(groups.length).fill(0)
    const failed = new Array<number>(groups.length).fill(0)
    let waiting = needed.filter((count) => count > 0).length
    return new Promise((resolve, reject) => {
      if (waiting === 0) resolve()
      for (const share of shares.values()) {
        this.#deliver(share).then(
          () => {
            for (const g of share.groups) if (++stored[g] === needed[g] && --waiting === 0) resolve()
          },
          (err: unknown) => {
            for (const g of share.groups) {
              if (++failed[g] !== groups[g].replicas.length - needed[g] + 1) continue
              reject(
                new QuorumNotReachedError(
                  `${stored[g] + 1} of the ${needed[g] + 1} replicas needed stored the write (${failed[g]} failed)`,
                  { cause: err },
                ),
              )
            }
          },
        )
      }
    })
  }

  async #deliver({ replica, records }: PeerShare): Promise<void> {
    try {
      await this.#init.send(replica, records)
      this.#counts.replicatedRecords += records.length
    } catch (err) {
      this.#counts.failedSends++
      this.#hints.hold(replica, records)
      throw err
    }
  }

  /** Delivers the hints held for replicas that answer again; see HintedHandOff.deliver. */
  deliverHints(signal: AbortSignal): Promise<void> {
    return this.#hints.deliver(signal)
  }
}
