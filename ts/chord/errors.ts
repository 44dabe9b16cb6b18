// Typed errors of the Chord routing logic: lookups that cannot finish and joins that are refused.
// Transport failures keep their own types (see ts/protocol/errors.ts); these are routing outcomes.

import { CodedError } from '../errors.js'

/** An iterative lookup exceeded its hop budget, looped, or ran out of live nodes to ask. */
export class LookupFailedError extends CodedError {
  static override readonly code = 'ERR_DLHT_LOOKUP_FAILED'
}

/** A vnode could not take its place on the ring (its id is taken, or the ring moved under it). */
export class JoinFailedError extends CodedError {
  static override readonly code = 'ERR_DLHT_JOIN_FAILED'
}

/**
 * A vnode refused an arc hand-over: its arc does not start at the vnode handing over, so the
 * entries would sit where no lookup leads. The caller finds the right vnode and tries again.
 */
export class HandOverRefusedError extends CodedError {
  static override readonly code = 'ERR_DLHT_HAND_OVER_REFUSED'
}
