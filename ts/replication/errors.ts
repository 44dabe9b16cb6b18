// Typed errors of replication: a write that too few replicas stored, a read no replica answered.
// Both say how many replicas were tried, so a caller can tell a partition from a bad request.

import { DlhtError } from '../errors.js'

/** Fewer than `writeQuorum` replicas stored a write or delete; it may be on some (retry it). */
export class QuorumNotReachedError extends DlhtError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_DLHT_QUORUM_NOT_REACHED', message, options)
  }
}

/** No replica of a key answered a read: the value is unknown, not absent. */
export class ReplicasUnavailableError extends DlhtError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_DLHT_REPLICAS_UNAVAILABLE', message, options)
  }
}
