// Typed errors of the Chord routing logic: lookups that cannot finish and joins that are refused.
// Transport failures keep their own types (see ts/protocol/errors.ts); these are routing outcomes.

import { DlhtError } from '../errors.js'

/** An iterative lookup exceeded its hop budget, looped, or ran out of live nodes to ask. */
export class LookupFailedError extends DlhtError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_DLHT_LOOKUP_FAILED', message, options)
  }
}

/** A vnode could not take its place on the ring (its id is taken, or the ring moved under it). */
export class JoinFailedError extends DlhtError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_DLHT_JOIN_FAILED', message, options)
  }
}

/**
 * A vnode refused an arc hand-over: its arc does not start at the vnode handing over, so the
 * entries would sit where no lookup leads. The caller finds the right vnode and tries again.
 */
export class HandOverRefusedError extends DlhtError {
  static readonly code = 'ERR_DLHT_HAND_OVER_REFUSED'
  constructor(message: string, options?: ErrorOptions) {
    super(HandOverRefusedError.code, message, options)
  }
}
