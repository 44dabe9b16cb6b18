// Typed errors of the dlht wire protocol: bad frames, unknown messages, timeouts, vanished peers.
// Each carries a stable ERR_DLHT_* code, which is also what crosses the wire in an error response.

import { DlhtError } from '../errors.js'
import { QuorumNotReachedError, ReplicasUnavailableError } from '../node/errors.js'

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

/** A remote call did not get its answer before its deadline. */
export class RemoteCallTimeoutError extends DlhtError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_DLHT_REMOTE_CALL_TIMEOUT', message, options)
  }
}

/** The peer cannot be dialled, or its connection closed while a call was waiting for it. */
export class PeerUnavailableError extends DlhtError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_DLHT_PEER_UNAVAILABLE', message, options)
  }
}

/** A ring call named a vnode the peer does not run (it left, or never existed). */
export class VnodeUnavailableError extends DlhtError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_DLHT_VNODE_UNAVAILABLE', message, options)
  }
}

/** The remote handler failed with an error that has no typed counterpart here. */
export class RemoteError extends DlhtError {}

const BY_CODE: Record<string, new (message: string) => DlhtError> = {
  ERR_DLHT_PROTOCOL: ProtocolError,
  ERR_DLHT_FRAME_TOO_LARGE: FrameTooLargeError,
  ERR_DLHT_MALFORMED_MESSAGE: MalformedMessageError,
  ERR_DLHT_UNKNOWN_MESSAGE: UnknownMessageError,
  ERR_DLHT_UNKNOWN_MODEL_VERSION: UnknownModelVersionError,
  ERR_DLHT_REMOTE_CALL_TIMEOUT: RemoteCallTimeoutError,
  ERR_DLHT_PEER_UNAVAILABLE: PeerUnavailableError,
  ERR_DLHT_VNODE_UNAVAILABLE: VnodeUnavailableError,
  ERR_DLHT_QUORUM_NOT_REACHED: QuorumNotReachedError,
  ERR_DLHT_REPLICAS_UNAVAILABLE: ReplicasUnavailableError,
}

/** Rebuilds the typed error a remote handler reported as (code, message). */
export function errorFromWire(code: string, message: string): DlhtError {
  const ErrorClass = BY_CODE[code]
  return ErrorClass === undefined ? new RemoteError(code, message) : new ErrorClass(message)
}

/** The (code, message) a handler's error is reported as; errors not thrown on purpose stay opaque. */
export function errorToWire(err: unknown): [code: string, message: string] {
  if (err instanceof DlhtError) return [err.code, err.message]
  return ['ERR_DLHT_INTERNAL', 'the remote handler failed']
}
