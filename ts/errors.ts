// Typed errors shared by every layer of dlht. Each error carries a stable `code`
// (ERR_DLHT_*) so callers can branch on it without parsing messages.

/** Base class of every error dlht throws on purpose. */
export class DlhtError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/**
 * A DlhtError whose class fixes its code: a subclass names it in `static code` and is built from a
 * message alone (`errorFromWire` rebuilds a remote one by that code).
 */
export class CodedError extends DlhtError {
  static readonly code: string = 'ERR_DLHT'

  constructor(message: string, options?: ErrorOptions) {
    super((new.target as typeof CodedError).code, message, options)
  }
}

/** An argument has the wrong type, is out of range, or is otherwise unusable. */
export class InvalidArgumentError extends DlhtError {
  constructor(message: string, code = 'ERR_DLHT_INVALID_ARGUMENT', options?: ErrorOptions) {
    super(code, message, options)
  }
}

/** A key is not a string, finite number, bigint or Uint8Array (or a point where one is expected). */
export class InvalidKeyError extends InvalidArgumentError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_DLHT_INVALID_KEY', options)
  }
}

/** A serialized or received model failed validation (truncated, bad checksum, non-monotone, ...). */
export class CorruptModelError extends DlhtError {
  constructor(message: string, code = 'ERR_DLHT_CORRUPT_MODEL', options?: ErrorOptions) {
    super(code, message, options)
  }
}

const CORRUPT_MODEL_CODES = new Set(['ERR_DLHT_CORRUPT_MODEL', 'ERR_DLHT_UNSUPPORTED_FORMAT_VERSION'])

/**
 * Turns an error thrown by the native binding into the matching typed error.
 * The binding puts the core's stable code in `err.code`; anything else is returned as is.
 */
function fromNativeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err
  const code = (err as Error & { code?: unknown }).code
  if (typeof code !== 'string' || !code.startsWith('ERR_DLHT_')) return err
  if (CORRUPT_MODEL_CODES.has(code)) return new CorruptModelError(err.message, code, { cause: err })
  if (code === 'ERR_DLHT_NON_FINITE_KEY') return new InvalidKeyError(err.message, { cause: err })
  return new InvalidArgumentError(err.message, code, { cause: err })
}

/** Calls into the native binding, turning its errors into dlht's typed errors. */
export function callNative<T>(call: () => T): T {
  try {
    return call()
  } catch (err) {
    throw fromNativeError(err)
  }
}
