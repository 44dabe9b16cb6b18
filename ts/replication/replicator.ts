// The owner's side of a replicated write: stamped records go to the other replicas of their
// positions, and the write is acknowledged once the write quorum (the owner included) stored it.

import type { ScannedRecord } from '../node/data-plane.js'
import { QuorumNotReachedError } from '../node/errors.js'
import type { VnodeRef } from '../shared/router.js'

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
}

/** Counters of the writes this peer replicated as owner. */
export interface ReplicatorStats {
  /** Records sent to replicas, and sends that failed (a repair round restores those copies). */
  replicatedRecords: number
  failedSends: number
}

/** Sends the owner's writes to the other replicas and waits for the write quorum. */
export class Replicator {
  readonly #init: ReplicatorInit
  readonly stats: ReplicatorStats = { replicatedRecords: 0, failedSends: 0 }

  constructor(init: ReplicatorInit) {
    this.#init = init
  }

  /**
   * Resolves once every group reached its quorum: `writeQuorum - 1` replicas beyond the owner, or
   * all of them when the ring has fewer peers. Sends past the quorum go on in the background.
   * @throws QuorumNotReachedError when too many replicas of a group failed
   */
  async replicate(groups: readonly ReplicaGroup[]): Promise<void> {
    await Promise.all(groups.map((group) => this.#replicateGroup(group)))
  }

  #replicateGroup({ replicas, records }: ReplicaGroup): Promise<void> {
    const needed = Math.min(this.#init.writeQuorum - 1, replicas.length)
    const sends = replicas.map((replica) =>
      this.#init.send(replica, records).then(
        () => {
          this.stats.replicatedRecords += records.length
        },
        (err: unknown) => {
          this.stats.failedSends++
          throw err
        },
      ),
    )
    if (needed === 0) {
      for (const send of sends) send.catch(() => {})
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      let stored = 0
      let failed = 0
      for (const send of sends) {
        send.then(
          () => {
            if (++stored === needed) resolve()
          },
          (err: unknown) => {
            if (++failed === replicas.length - needed + 1) {
              reject(
                new QuorumNotReachedError(
                  `${stored + 1} of the ${needed + 1} replicas needed stored the write (${failed} failed)`,
                  { cause: err },
                ),
              )
            }
          },
        )
      }
    })
  }
}
