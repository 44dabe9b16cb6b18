// Values are stored and sent serialized with V8's structured-clone serializer: exactly the values
// `structuredClone` accepts (objects, arrays, Map, Set, Date, bigint, typed arrays, ...), byte-exact.

import { deserialize, serialize } from 'node:v8'
import { ValueNotSerializableError, ValueTooLargeError } from './errors.js'

/**
 * Serializes a value for storage.
 * @throws ValueNotSerializableError for undefined (get's answer for "absent") and non-cloneable values
 * @throws ValueTooLargeError when the serialized form exceeds `maxBytes`
 */
export function serializeValue(value: unknown, maxBytes: number): Uint8Array {
  if (value === undefined) {
    throw new ValueNotSerializableError(
      'value must not be undefined: get() returns undefined for absent keys',
    )
  }
  let bytes: Uint8Array
  try {
    bytes = serialize(value)
  } catch (err) {
    throw new ValueNotSerializableError(`value cannot be serialized: ${(err as Error).message}`, {
      cause: err,
    })
  }
  if (bytes.length > maxBytes) throw new ValueTooLargeError(bytes.length, maxBytes)
  return bytes
}

/** Reads a value back from `serializeValue` output (a fresh copy on every call). */
export function deserializeValue(bytes: Uint8Array): unknown {
  return deserialize(bytes)
}
