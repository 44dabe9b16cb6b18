// Typed errors of the node layer, each a DlhtError with a stable ERR_DLHT_* code,
// so applications can tell a misuse (not started, bad config) from a bad value.

import { CodedError, DlhtError, InvalidArgumentError } from '../errors.js'

/** An operation was called before `start()` resolved or after `stop()`. */
export class NotStartedError extends DlhtError {
  constructor(message = 'the node is not started', options?: ErrorOptions) {
    super('ERR_DLHT_NOT_STARTED', message, options)
  }
}

/** A configuration field is missing a valid value; `field` names it (e.g. `numVirtualNodes`). */
export class InvalidConfigError extends InvalidArgumentError {
  readonly field: string

  constructor(field: string, message: string, options?: ErrorOptions) {
    super(`${field === '' ? 'config' : `config.${field}`} ${message}`, 'ERR_DLHT_INVALID_CONFIG', options)
    this.field = field
  }
}

/** A value serializes to more bytes than the node's `maxValueBytes`. */
export class ValueTooLargeError extends DlhtError {
  readonly bytes: number
  readonly limit: number

  constructor(bytes: number, limit: number) {
    super('ERR_DLHT_VALUE_TOO_LARGE', `value serializes to ${bytes} bytes, more than the limit of ${limit}`)
    this.bytes = bytes
    this.limit = limit
  }
}

/** Stored or received value bytes that do not decode (`ERR_DLHT_CORRUPT_VALUE`). */
export class CorruptValueError extends CodedError {
  static override readonly code = 'ERR_DLHT_CORRUPT_VALUE'
}

/** A value cannot be serialized (a function, a symbol, a class instance with native state, undefined, ...). */
export class ValueNotSerializableError extends CodedError {
  static override readonly code = 'ERR_DLHT_VALUE_NOT_SERIALIZABLE'
}

/** A data directory was written by a node with an incompatible configuration or format. */
export class StorageMismatchError extends CodedError {
  static override readonly code = 'ERR_DLHT_STORAGE_MISMATCH'
}

/**
 * `start()` failed for a reason the configuration can fix: the port is taken, the address is not
 * this machine's or does not resolve, the data directory cannot be used. `field` names the config
 * field to change, `cause` is the underlying error.
 */
export class StartFailedError extends DlhtError {
  readonly field: string

  constructor(code: string, field: string, message: string, options?: ErrorOptions) {
    super(code, `config.${field} ${message}`, options)
    this.field = field
  }
}

/** Fewer than `writeQuorum` replicas stored a write or delete; it may be on some of them (retry it). */
export class QuorumNotReachedError extends CodedError {
  static override readonly code = 'ERR_DLHT_QUORUM_NOT_REACHED'
}

/** Too few replicas of a key answered a read: its value is unknown, not absent. */
export class ReplicasUnavailableError extends CodedError {
  static override readonly code = 'ERR_DLHT_REPLICAS_UNAVAILABLE'
}
