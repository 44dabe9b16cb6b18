// Checks a caller's writes in full before any of them is routed: keys, key sizes and values, so
// that a write rejected for its input stores nothing, whichever peers own its keys.

import { InvalidArgumentError, InvalidKeyError } from '../errors.js'
import type { StoredRecord } from '../shared/data-plane.js'
import { checkNodeKey, keyByteLength, type NodeKey } from '../shared/keys.js'
import { serializeValue } from './value-codec.js'

/** What a write must fit: the node's key and value limits, and the point dimensions (if any). */
export interface WriteLimits {
  maxKeyBytes: number
  maxValueBytes: number
  /** Dimensions of point keys; undefined for scalar keys. */
  dims: number | undefined
}

/**
 * Checks a key to be stored: a key of the node, at most `maxKeyBytes` in canonical form.
 * @throws InvalidKeyError naming what is wrong (`at` says which key)
 */
export function checkStorableKey(
  key: unknown,
  dims: number | undefined,
  maxKeyBytes: number,
  at = 'key',
): asserts key is NodeKey {
  checkNodeKey(key, dims)
  // A UTF-16 code unit takes at most 3 UTF-8 bytes: short strings need no counting.
  if (typeof key === 'string' && 1 + 3 * key.length <= maxKeyBytes) return
  const bytes = keyByteLength(key)
  if (bytes > maxKeyBytes)
    throw new InvalidKeyError(`${at} is ${bytes} bytes, longer than maxKeyBytes (${maxKeyBytes} bytes)`)
}

/**
 * One checked record: the key checked, the value serialized.
 * @throws InvalidKeyError, ValueNotSerializableError, ValueTooLargeError
 */
export function prepareWrite(key: unknown, value: unknown, limits: WriteLimits, at = 'key'): StoredRecord {
  checkStorableKey(key, limits.dims, limits.maxKeyBytes, at)
  return { key, value: serializeValue(value, limits.maxValueBytes) }
}

/**
 * Every entry of a batch, checked and serialized; throws at the first bad one, before anything
 * is sent anywhere.
 * @throws InvalidArgumentError when `entries` is not an iterable of [key, value] pairs, or as `prepareWrite`
 */
export function prepareWrites(
  entries: Iterable<readonly [NodeKey, unknown]>,
  limits: WriteLimits,
): StoredRecord[] {
  if (typeof (entries as Partial<Iterable<unknown>> | null)?.[Symbol.iterator] !== 'function')
    throw new InvalidArgumentError('entries must be an iterable of [key, value] pairs')
  const records: StoredRecord[] = []
  for (const entry of entries) {
    if (!Array.isArray(entry))
      throw new InvalidArgumentError(`entries[${records.length}] must be a [key, value] pair`)
    records.push(prepareWrite(entry[0], entry[1], limits, `entries[${records.length}] key`))
  }
  return records
}
