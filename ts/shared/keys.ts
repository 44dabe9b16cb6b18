// The keys a node stores: validation, exact identity, order within a key family and a canonical
// byte form. Two different keys never collide here, even when the model places them at one position.

import { InvalidKeyError } from '../errors.js'
import type { Key } from '../learned/keys.js'

/** LMDB's default maximum key size is 1978 bytes; keys are stored with an 8-byte position prefix. */
export const MAX_KEY_BYTES_LIMIT = 1970

/** A stored key: a scalar key, or a point (one number per dimension) on a node declared `spatial`. */
export type NodeKey = Key | readonly number[]

/** Keys compare only within a family: numbers with bigints, strings with byte arrays, points with points. */
export type KeyFamily = 'numeric' | 'bytes' | 'point'

enum Tag {
  Number = 1,
  Bigint = 2,
  String = 3,
  Bytes = 4,
  Point = 5,
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return value.constructor?.name ?? 'object'
  return typeof value === 'number' ? String(value) : typeof value
}

/** Whether a string has no lone surrogate (`String.prototype.isWellFormed`, ES2024). */
function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed()
}

/**
 * Checks that `key` is a key of a node with points of `dims` dimensions (or of scalar keys when
 * `dims` is undefined).
 * @throws InvalidKeyError naming what is wrong
 */
export function checkNodeKey(key: unknown, dims: number | undefined): asserts key is NodeKey {
  if (dims !== undefined) {
    if (!Array.isArray(key))
      throw new InvalidKeyError(`key must be a point of ${dims} numbers, got ${describe(key)}`)
    if (key.length !== dims)
      throw new InvalidKeyError(`point key must have ${dims} coordinates, got ${key.length}`)
    for (const coordinate of key) {
      if (typeof coordinate !== 'number' || !Number.isFinite(coordinate)) {
        throw new InvalidKeyError(`point key coordinates must be finite numbers, got ${describe(coordinate)}`)
      }
    }
    return
  }
  switch (typeof key) {
    case 'string':
      // UTF-8 (the canonical form, the wire, LMDB) has no lone surrogates: they would become U+FFFD.
      if (isWellFormed(key)) return
      throw new InvalidKeyError('string key must be well-formed UTF-16 (it has a lone surrogate)')
    case 'bigint':
      return
    case 'number':
      if (Number.isFinite(key)) return
      break
    default:
      if (key instanceof Uint8Array) return
  }
  throw new InvalidKeyError(`key must be a string, finite number, bigint or Uint8Array, got ${describe(key)}`)
}

/** The family a (valid) key belongs to. */
export function keyFamily(key: NodeKey): KeyFamily {
  if (typeof key === 'number' || typeof key === 'bigint') return 'numeric'
  return Array.isArray(key) ? 'point' : 'bytes'
}

function tagOf(key: NodeKey): Tag {
  switch (typeof key) {
    case 'number':
      return Tag.Number
    case 'bigint':
      return Tag.Bigint
    case 'string':
      return Tag.String
    default:
      return Array.isArray(key) ? Tag.Point : Tag.Bytes
  }
}

/** UTF-16 code units reordered so that comparing them orders strings like their UTF-8 bytes. */
function utf8Rank(codeUnit: number): number {
  if (codeUnit < 0xd800) return codeUnit
  return codeUnit < 0xe000 ? codeUnit + 0x2000 : codeUnit - 0x800
}

/** Compares two strings in the order of their UTF-8 bytes. */
export function compareUtf8(a: string, b: string): number {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return utf8Rank(x) - utf8Rank(y)
  }
  return a.length - b.length
}

function asBytes(key: string | Uint8Array): Uint8Array {
  return typeof key === 'string' ? Buffer.from(key, 'utf8') : key
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}

function comparePoints(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1
  return 0
}

/**
 * Orders two keys of one family: numbers and bigints numerically, strings and byte arrays by
 * their UTF-8 bytes, points lexicographically by coordinate.
 * @throws InvalidKeyError when the keys are of different families
 */
export function compareKeys(a: NodeKey, b: NodeKey): number {
  const family = keyFamily(a)
  if (family !== keyFamily(b))
    throw new InvalidKeyError(`cannot compare a ${family} key with a ${keyFamily(b)} key`)
  if (family === 'numeric') return a < b ? -1 : a > b ? 1 : 0
  if (family === 'point') return comparePoints(a as readonly number[], b as readonly number[])
  if (typeof a === 'string' && typeof b === 'string') return compareUtf8(a, b)
  return compareBytes(asBytes(a as string | Uint8Array), asBytes(b as string | Uint8Array))
}

/**
 * A total order on all keys, used to order keys that share an encoded value: by type first
 * (number, bigint, string, bytes, point), then as `compareKeys`. Zero only for the same key.
 */
export function compareAnyKeys(a: NodeKey, b: NodeKey): number {
  const tagA = tagOf(a)
  const tagB = tagOf(b)
  return tagA === tagB ? compareKeys(a, b) : tagA - tagB
}

/** A copy of a key that the caller can no longer change. */
export function ownKey(key: NodeKey): NodeKey {
  if (key instanceof Uint8Array) return Uint8Array.from(key)
  return Array.isArray(key) ? Object.freeze(key.slice()) : key
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

/** A Map keyed by exact key identity, one native Map per key type so lookups need no key building. */
export class KeyMap<V> {
  readonly #numbers = new Map<number, V>()
  readonly #bigints = new Map<bigint, V>()
  readonly #strings = new Map<string, V>()
  readonly #bytes = new Map<string, V>()
  readonly #points = new Map<string, V>()

  get size(): number {
    return this.#numbers.size + this.#bigints.size + this.#strings.size + this.#bytes.size + this.#points.size
  }

  get(key: NodeKey): V | undefined {
    switch (typeof key) {
      case 'string':
        return this.#strings.get(key)
      case 'number':
        return this.#numbers.get(key)
      case 'bigint':
        return this.#bigints.get(key)
      default:
        return Array.isArray(key)
          ? this.#points.get(key.join(','))
          : this.#bytes.get(latin1(key as Uint8Array))
    }
  }

  set(key: NodeKey, value: V): void {
    switch (typeof key) {
      case 'string':
        this.#strings.set(key, value)
        return
      case 'number':
        this.#numbers.set(key, value)
        return
      case 'bigint':
        this.#bigints.set(key, value)
        return
      default:
        if (Array.isArray(key)) this.#points.set(key.join(','), value)
        else this.#bytes.set(latin1(key as Uint8Array), value)
    }
  }

  delete(key: NodeKey): boolean {
    switch (typeof key) {
      case 'string':
        return this.#strings.delete(key)
      case 'number':
        return this.#numbers.delete(key)
      case 'bigint':
        return this.#bigints.delete(key)
      default:
        return Array.isArray(key)
          ? this.#points.delete(key.join(','))
          : this.#bytes.delete(latin1(key as Uint8Array))
    }
  }

  /** Every value, in no particular order. */
  *values(): IterableIterator<V> {
    for (const map of [this.#numbers, this.#bigints, this.#strings, this.#bytes, this.#points])
      yield* map.values()
  }

  clear(): void {
    for (const map of [this.#numbers, this.#bigints, this.#strings, this.#bytes, this.#points]) map.clear()
  }
}

/**
 * The canonical byte form of a key: a type tag, then the number (8 bytes, big-endian), the
 * bigint (decimal), the string (UTF-8), the bytes, or the point's coordinates (8 bytes each).
 * It is reversible (`decodeKeyBytes`) and is how keys are stored on disk and sent to peers.
 */
export function encodeKeyBytes(key: NodeKey): Uint8Array {
  const tag = tagOf(key)
  switch (tag) {
    case Tag.Number: {
      const out = Buffer.allocUnsafe(9)
      out[0] = tag
      out.writeDoubleBE((key as number) === 0 ? 0 : (key as number), 1)
      return out
    }
    case Tag.Point: {
      const point = key as readonly number[]
      const out = Buffer.allocUnsafe(1 + 8 * point.length)
      out[0] = tag
      for (let i = 0; i < point.length; i++) out.writeDoubleBE(point[i] === 0 ? 0 : point[i], 1 + 8 * i)
      return out
    }
    case Tag.Bytes: {
      const bytes = key as Uint8Array
      const out = Buffer.allocUnsafe(1 + bytes.length)
      out[0] = tag
      out.set(bytes, 1)
      return out
    }
    default: {
      const text = tag === Tag.String ? (key as string) : (key as bigint).toString()
      const out = Buffer.allocUnsafe(1 + Buffer.byteLength(text, 'utf8'))
      out[0] = tag
      out.write(text, 1, 'utf8')
      return out
    }
  }
}

/**
 * Reads a key back from `encodeKeyBytes` output.
 * @throws InvalidKeyError when the bytes are not a canonical key
 */
export function decodeKeyBytes(bytes: Uint8Array): NodeKey {
  // Longer than any key a node accepts: refused before a 4 MB digit string takes seconds to parse.
  if (bytes.byteLength > MAX_KEY_BYTES_LIMIT) throw new InvalidKeyError('bytes are longer than any dlht key')
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const body = buffer.subarray(1)
  switch (buffer[0]) {
    case Tag.Number:
      if (body.length === 8) return body.readDoubleBE(0)
      break
    case Tag.Bigint:
      if (/^-?[0-9]+$/.test(body.toString('latin1'))) return BigInt(body.toString('latin1'))
      break
    case Tag.String:
      return body.toString('utf8')
    case Tag.Bytes:
      return Uint8Array.from(body)
    case Tag.Point:
      if (body.length % 8 === 0) {
        return Object.freeze(Array.from({ length: body.length / 8 }, (_, i) => body.readDoubleBE(8 * i)))
      }
      break
  }
  throw new InvalidKeyError('bytes are not a canonical dlht key')
}

/** Length of `encodeKeyBytes(key)` without building it. */
export function keyByteLength(key: NodeKey): number {
  switch (typeof key) {
    case 'string':
      return 1 + Buffer.byteLength(key, 'utf8')
    case 'number':
      return 9
    case 'bigint':
      return 1 + key.toString().length
    default:
      return 1 + (Array.isArray(key) ? 8 * key.length : (key as Uint8Array).length)
  }
}
