// Typed errors of the dlht wire protocol: bad frames, unknown messages, timeouts, vanished peers.
// Each carries a stable ERR_DLHT_* code, which is also what crosses the wire in an error response.

import { HandOverRefusedError, JoinFailedError, LookupFailedError } from '../chord/errors.js'
import { CodedError, DlhtError, InvalidArgumentError, InvalidKeyError } from '../errors.js'
import {
  NotStartedError,
  QuorumNotReachedError,
  ReplicasUnavailableError,
  ValueNotSerializableError,
  ValueTooLargeError,
} from '../shared/errors.js'

/** The peer broke the protocol, or the stream broke under a call. */
export class ProtocolError extends DlhtError {
  constructor(message: string, code = 'ERR_DLHT_PROTOCOL', options?: ErrorOptions) {
    super(code, message, options)
  }
}

/** A frame is larger than the maximum frame size (nothing of it is written). */
export class FrameTooLargeError extends ProtocolError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_DLHT_FRAME_TOO_LARGE', options)
  }
}

/** Bytes that do not decode to a well-formed message of the expected shape. */
export class MalformedMessageError extends ProtocolError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_DLHT_MALFORMED_MESSAGE', options)
  }
}

/** A message type the receiver does not serve on this protocol. */
export class UnknownMessageError extends ProtocolError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_DLHT_UNKNOWN_MESSAGE', options)
  }
}

/** A data request computed under a model version the receiving node does not use. */
export class UnknownModelVersionError extends ProtocolError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_DLHT_UNKNOWN_MODEL_VERSION', options)
  }
}

/**
 * The two ends speak different versions of a dlht protocol (a client of one release and a node of
 * another): nothing was asked. Use a client of the ring's version.
 */
export class ProtocolMismatchError extends ProtocolError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_DLHT_PROTOCOL_MISMATCH', options)
  }
}

/** A remote call did not get its answer before its deadline. */
export class RemoteCallTimeoutError extends CodedError {
  static override readonly code = 'ERR_DLHT_REMOTE_CALL_TIMEOUT'
}

/** The peer cannot be dialled, or its connection closed while a call was waiting for it. */
export class PeerUnavailableError extends CodedError {
  static override readonly code = 'ERR_DLHT_PEER_UNAVAILABLE'
}

/** A ring call named a vnode the peer does not run (it left, or never existed). */
export class VnodeUnavailableError extends CodedError {
  static override readonly code = 'ERR_DLHT_VNODE_UNAVAILABLE'
}

/** The peer has as many requests of this connection in flight as it serves at once; try again later. */
export class PeerBusyError extends CodedError {
  static override readonly code = 'ERR_DLHT_PEER_BUSY'
}

/** A message came from a peer that may not send it; nothing was changed. */
export class UnauthorizedMessageError extends CodedError {
  static override readonly code = 'ERR_DLHT_UNAUTHORIZED'
}

/** The remote handler failed with an error that has no typed counterpart here. */
export class RemoteError extends DlhtError {}

const BY_CODE: Record<string, new (message: string) => DlhtError> = {
  ERR_DLHT_PROTOCOL: ProtocolError,
  ERR_DLHT_FRAME_TOO_LARGE: FrameTooLargeError,
  ERR_DLHT_MALFORMED_MESSAGE: MalformedMessageError,
  ERR_DLHT_UNKNOWN_MESSAGE: UnknownMessageError,
  ERR_DLHT_UNKNOWN_MODEL_VERSION: UnknownModelVersionError,
  [RemoteCallTimeoutError.code]: RemoteCallTimeoutError,
  [PeerUnavailableError.code]: PeerUnavailableError,
  [VnodeUnavailableError.code]: VnodeUnavailableError,
  ERR_DLHT_INVALID_KEY: InvalidKeyError,
  [ValueNotSerializableError.code]: ValueNotSerializableError,
  ERR_DLHT_NOT_STARTED: NotStartedError,
  [LookupFailedError.code]: LookupFailedError,
  [JoinFailedError.code]: JoinFailedError,
  [HandOverRefusedError.code]: HandOverRefusedError,
  [UnauthorizedMessageError.code]: UnauthorizedMessageError,
  [PeerBusyError.code]: PeerBusyError,
  ERR_DLHT_PROTOCOL_MISMATCH: ProtocolMismatchError,
  [QuorumNotReachedError.code]: QuorumNotReachedError,
  [ReplicasUnavailableError.code]: ReplicasUnavailableError,
}

/**
 * Rebuilds the typed error a remote handler reported as (code, message): a peer's bad key is an
 * `InvalidKeyError` here as it is there, so callers see one class whichever peer found the fault.
 */
export function errorFromWire(code: string, message: string): DlhtError {
  const ErrorClass = BY_CODE[code]
  if (ErrorClass !== undefined) return new ErrorClass(message)
  if (code === 'ERR_DLHT_VALUE_TOO_LARGE') {
    const [, bytes, limit] = /(\d+) bytes, more than the limit of (\d+)/.exec(message) ?? []
    return new ValueTooLargeError(Number(bytes ?? Number.NaN), Number(limit ?? Number.NaN))
  }
  // Other argument errors keep their own code (ERR_DLHT_UNSORTED_KEYS, ERR_DLHT_INVALID_CONFIG, ...).
  if (code.startsWith('ERR_DLHT_INVALID_') || code === 'ERR_DLHT_NON_FINITE_KEY')
    return new InvalidArgumentError(message, code)
  return new RemoteError(code, message)
}

/** The (code, message) a handler's error is reported as; errors not thrown on purpose stay opaque. */
export function errorToWire(err: unknown): [code: string, message: string] {
  if (err instanceof DlhtError) return [err.code, err.message]
  return ['ERR_DLHT_INTERNAL', 'the remote handler failed']
}
