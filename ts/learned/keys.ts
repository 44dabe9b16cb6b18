// Order-preserving encoding of user keys into the learned model's number domain (in Rust).
// Numbers and bigints order numerically, strings and byte arrays by their bytes.

import { callNative, InvalidKeyError } from '../errors.js'
import { encodeBigint, encodeBytes, encodeBytesBatch, encodeString, KEY_ENCODING_VERSION } from '../native.js'

/**
 * Version of the key encoding (2: strings and bytes by an order-preserving text code). Peers and
 * data directories of another version place keys elsewhere, so the protocols and the data
 * directory carry it.
 */
export { KEY_ENCODING_VERSION }

/** A key dlht can store: numbers must be finite. */
export type Key = string | number | bigint | Uint8Array

/**
 * How byte keys (strings as UTF-8, byte arrays) become numbers: the fixed text code, or the key
 * code a trained model learned from its keys (`RecursiveModelIndex.encodeKeys`).
 */
export interface ByteKeyCode {
  encodeString(key: string): number
  encodeBytes(key: Uint8Array): number
  encodeBytesBatch(data: Uint8Array, offsets: Uint32Array): Float64Array
}

/** The fixed order-preserving text code, which needs no model. */
export const TEXT_CODE: ByteKeyCode = { encodeString, encodeBytes, encodeBytesBatch }

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return value.constructor?.name ?? 'object'
  return typeof value === 'number' ? String(value) : typeof value
}

/**
 * Encodes one key. Numbers map to themselves (so `predict(timestamp)` and the node agree),
 * bigints to their numeric value, strings (as UTF-8) and byte arrays to an order-preserving text
 * code that resolves about 12 letters of a word (or by `code`, a model's key code).
 * Keys of the numeric and the byte family share the domain and interleave.
 * @throws InvalidKeyError for any other type, NaN or ±Infinity
 */
export function encodeKey(key: Key, code: ByteKeyCode = TEXT_CODE): number {
  switch (typeof key) {
    case 'number':
      if (Number.isFinite(key)) return key
      break
    case 'string':
      return code.encodeString(key)
    case 'bigint':
      return encodeBigint(key)
    default:
      if (key instanceof Uint8Array) return code.encodeBytes(key)
  }
  throw new InvalidKeyError(`key must be a string, finite number, bigint or Uint8Array, got ${describe(key)}`)
}

/**
 * Encodes many keys at once (byte keys by `code`); strings and byte arrays cross into Rust packed
 * in one buffer.
 * @throws InvalidKeyError naming the index of the first bad key
 */
export function encodeKeys(keys: readonly Key[], code: ByteKeyCode = TEXT_CODE): Float64Array {
  const out = new Float64Array(keys.length)
  const bytesAt: number[] = []
  const byteKeys: Array<string | Uint8Array> = []
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    if (typeof key === 'string' || key instanceof Uint8Array) {
      bytesAt.push(i)
      byteKeys.push(key)
    } else {
      try {
        out[i] = encodeKey(key)
      } catch (err) {
        throw new InvalidKeyError(`key at index ${i}: ${(err as Error).message}`, { cause: err })
      }
    }
  }
  if (byteKeys.length === 0) return out
  // One buffer crosses into Rust: cheaper than converting each string at the boundary.
  const { data, offsets } = packByteKeys(byteKeys)
  const encoded = callNative(() => code.encodeBytesBatch(data, offsets))
  if (byteKeys.length === keys.length) return encoded
  scatter(out, bytesAt, encoded)
  return out
}

function scatter(out: Float64Array, at: number[], values: Float64Array): void {
  for (let i = 0; i < at.length; i++) out[at[i]] = values[i]
}

/** Byte keys (strings as UTF-8) packed in one buffer: key `i` is `data[offsets[i]..offsets[i + 1]]`. */
export function packByteKeys(keys: ReadonlyArray<string | Uint8Array>): {
  data: Uint8Array
  offsets: Uint32Array
} {
  return packAsciiKeys(keys) ?? packUtf8Keys(keys)
}

/** `packByteKeys` of strings that are all ASCII (one byte per code unit): one write of them joined; undefined for other keys. */
function packAsciiKeys(
  keys: ReadonlyArray<string | Uint8Array>,
): { data: Uint8Array; offsets: Uint32Array } | undefined {
  const offsets = new Uint32Array(keys.length + 1)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    if (typeof key !== 'string') return undefined
    offsets[i + 1] = offsets[i] + key.length
  }
  const joined = (keys as readonly string[]).join('')
  // Any other character takes more than one byte (a lone surrogate three): the count tells.
  if (Buffer.byteLength(joined, 'utf8') !== joined.length) return undefined
  const data = Buffer.allocUnsafe(joined.length)
  data.write(joined, 'utf8')
  return { data, offsets }
}

function packUtf8Keys(keys: ReadonlyArray<string | Uint8Array>): { data: Uint8Array; offsets: Uint32Array } {
  const offsets = new Uint32Array(keys.length + 1)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    offsets[i + 1] = offsets[i] + (typeof key === 'string' ? Buffer.byteLength(key, 'utf8') : key.length)
  }
  const data = Buffer.allocUnsafe(offsets[keys.length])
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    if (typeof key === 'string') data.write(key, offsets[i], 'utf8')
    else data.set(key, offsets[i])
  }
  return { data, offsets }
}
