// Envelopes of the dlht protocol in msgpack, and checked readers for decoded values.
// A frame holds one or more envelopes back to back; nothing decoded is used before it is checked.

import { Packr } from 'msgpackr'
import { MalformedMessageError } from './errors.js'
import { MsgpackWriter } from './msgpack.js'

/** Bigints cross as 64-bit integers; records and extensions are off so that only plain data decodes. */
const packr = new Packr({ useRecords: false, int64AsType: 'bigint', moreTypes: false, mapsAsObjects: true })
const writer = new MsgpackWriter(packr)

/** First field of every envelope: what the envelope is. */
export const EnvelopeKind = { Request: 0, Response: 1, Failure: 2 } as const

/** A call: `type` names the message, `id` pairs it with its answer on the stream. */
export interface RequestEnvelope {
  kind: typeof EnvelopeKind.Request
  id: number
  type: number
  body: unknown
}

export interface ResponseEnvelope {
  kind: typeof EnvelopeKind.Response
  id: number
  body: unknown
}

/** A call that failed on the remote side, with the error's stable code. */
export interface FailureEnvelope {
  kind: typeof EnvelopeKind.Failure
  id: number
  code: string
  message: string
}

export type Envelope = RequestEnvelope | ResponseEnvelope | FailureEnvelope

/** Encodes one envelope; its bytes can be concatenated with others into a frame. */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  switch (envelope.kind) {
    case EnvelopeKind.Request:
      return writer.encodeArray([envelope.kind, envelope.id, envelope.type, envelope.body])
    case EnvelopeKind.Response:
      return writer.encodeArray([envelope.kind, envelope.id, envelope.body])
    case EnvelopeKind.Failure:
      return writer.encodeArray([envelope.kind, envelope.id, envelope.code, envelope.message])
  }
}

/**
 * Decodes and checks the envelopes of one frame. Bodies are left to the message's own reader.
 * @throws MalformedMessageError when the bytes are not a sequence of well-formed envelopes
 */
export function decodeFrame(frame: Uint8Array): Envelope[] {
  let values: unknown[]
  try {
    values = packr.unpackMultiple(frame) as unknown[]
  } catch (err) {
    throw new MalformedMessageError('frame is not valid msgpack', { cause: err })
  }
  return values.map(readEnvelope)
}

function readEnvelope(value: unknown): Envelope {
  const fields = readArray(value, 'envelope')
  const kind = fields[0]
  const id = readUint(fields[1], 'envelope id')
  if (kind === EnvelopeKind.Request && fields.length === 4) {
    return { kind, id, type: readUint(fields[2], 'message type'), body: fields[3] }
  }
  if (kind === EnvelopeKind.Response && fields.length === 3) return { kind, id, body: fields[2] }
  if (kind === EnvelopeKind.Failure && fields.length === 4) {
    return {
      kind,
      id,
      code: readString(fields[2], 'error code'),
      message: readString(fields[3], 'error message'),
    }
  }
  throw new MalformedMessageError(`envelope of unknown kind ${String(kind)} with ${fields.length} fields`)
}

/** Reads an array, optionally of an exact length. */
export function readArray(value: unknown, what: string, length?: number): unknown[] {
  if (!Array.isArray(value)) throw new MalformedMessageError(`${what} must be an array`)
  if (length !== undefined && value.length !== length) {
    throw new MalformedMessageError(`${what} must have ${length} fields, got ${value.length}`)
  }
  return value
}

/** Reads a non-negative safe integer. */
export function readUint(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new MalformedMessageError(`${what} must be a non-negative integer`)
  }
  return value
}

/** Reads a ring position or other bigint, checking it is in `[0, limit)` when a limit is given. */
export function readBigint(value: unknown, what: string, limit?: bigint): bigint {
  if (typeof value !== 'bigint' || value < 0n || (limit !== undefined && value >= limit)) {
    throw new MalformedMessageError(`${what} must be a bigint in [0, ${limit ?? '2^64'})`)
  }
  return value
}

export function readString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new MalformedMessageError(`${what} must be a string`)
  return value
}

export function readBoolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw new MalformedMessageError(`${what} must be a boolean`)
  return value
}

export function readBytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new MalformedMessageError(`${what} must be bytes`)
  return value
}

/** Reads a finite number. */
export function readNumber(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new MalformedMessageError(`${what} must be a finite number`)
  }
  return value
}

/** Reads `null` as null, anything else with `read`. */
export function readNullable<T>(value: unknown, read: (value: unknown) => T): T | null {
  return value === null ? null : read(value)
}
