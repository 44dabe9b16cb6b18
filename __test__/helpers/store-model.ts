// A Map model of a dlht store for property tests: which keys a node accepts and stores, which
// keys are one key, and which lie in a key range, written from the README's rules alone.

import { fc } from '@fast-check/ava'
import type { NodeKey } from '../../ts/index.js'

/** Limits the nodes under test run with (small values keep runs near maxValueBytes cheap). */
export const MAX_KEY_BYTES = 1024
export const MAX_VALUE_BYTES = 64 * 1024

/** A key the model knows as readable (a valid key) and storable (also within maxKeyBytes). */
export function readable(key: unknown): boolean {
  switch (typeof key) {
    case 'string':
      return (key as string & { isWellFormed(): boolean }).isWellFormed()
    case 'number':
      return Number.isFinite(key)
    case 'bigint':
      return true
    default:
      return key instanceof Uint8Array
  }
}

/** Keys are generated well under or well over maxKeyBytes, so the model needs no byte count. */
export function storable(key: unknown): boolean {
  if (!readable(key)) return false
  if (typeof key === 'string') return key.length < 200
  return !(key instanceof Uint8Array) || key.length < 200
}

/** One string per key identity: 5, 5n and '5' differ; 0 and -0 are one key. */
export function identity(key: NodeKey): string {
  if (typeof key === 'number') return `n${key === 0 ? 0 : key}`
  if (typeof key === 'bigint') return `b${key}`
  if (typeof key === 'string') return `s${key}`
  return `u${Buffer.from(key as Uint8Array).toString('hex')}`
}

/** The family a key's range queries run in: numbers with bigints, strings with bytes. */
export function family(key: NodeKey): 'numeric' | 'bytes' {
  return typeof key === 'number' || typeof key === 'bigint' ? 'numeric' : 'bytes'
}

/** Order within a family: numerically, or by UTF-8 bytes. */
export function compareInFamily(a: NodeKey, b: NodeKey): number {
  if (family(a) === 'numeric') return a < b ? -1 : a > b ? 1 : 0
  const bytes = (key: NodeKey) =>
    typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key as Uint8Array)
  return Buffer.compare(bytes(a), bytes(b))
}

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit))

/** Keys of every type: odd strings (lone surrogates, empty, very long), -0, NaN, ±Infinity, bigints, bytes. */
export const keyArbitrary: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: fc.oneof(fc.string({ minLength: 1, maxLength: 1 }), loneSurrogate), maxLength: 6 }),
  fc.constantFrom(
    '',
    '\ud800',
    '\udbff',
    '\ufffd',
    '\ud83d\ude00',
    -0,
    0,
    Number.NaN,
    Number.POSITIVE_INFINITY,
  ),
  fc.string({ minLength: 1100, maxLength: 1200, unit: 'grapheme-ascii' }),
  fc.double(),
  fc.integer(),
  fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }),
  fc.uint8Array({ maxLength: 16 }),
  fc.uint8Array({ minLength: 1100, maxLength: 1200 }),
)

/** Byte sizes kept clear of the limit's boundary: within it, or past it. */
const bigBytes = fc.oneof(
  fc.integer({ min: 0, max: MAX_VALUE_BYTES - 1024 }),
  fc.integer({ min: MAX_VALUE_BYTES + 1, max: MAX_VALUE_BYTES * 2 }),
)

/** Structured-cloneable values of every shape, and byte arrays up to (and past) maxValueBytes. */
export const valueArbitrary: fc.Arbitrary<unknown> = fc.oneof(
  fc
    .anything({
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withTypedArray: true,
      withSparseArray: true,
      withNullPrototype: false,
      withBoxedValues: false,
      maxDepth: 3,
    })
    .filter((value) => value !== undefined),
  bigBytes.map((size) => new Uint8Array(size).fill(size & 0xff)),
)

/** Whether a value (as generated) is within maxValueBytes: only the big byte arrays are not. */
export function fits(value: unknown): boolean {
  return !(value instanceof Uint8Array && value.length > MAX_VALUE_BYTES)
}

/** One operation on a store, naming keys by their index in the run's key pool. */
export type Operation =
  | { op: 'put'; key: number; value: unknown }
  | { op: 'putMany'; entries: Array<[number, unknown]> }
  | { op: 'get'; key: number }
  | { op: 'getMany'; keys: number[] }
  | { op: 'delete'; key: number }
  | { op: 'range'; low: number; high: number }

const index = fc.nat({ max: 11 })

export const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), key: index, value: valueArbitrary }),
  fc.record({
    op: fc.constant('putMany' as const),
    entries: fc.array(fc.tuple(index, valueArbitrary), { maxLength: 6 }),
  }),
  fc.record({ op: fc.constant('get' as const), key: index }),
  fc.record({ op: fc.constant('getMany' as const), keys: fc.array(index, { maxLength: 8 }) }),
  fc.record({ op: fc.constant('delete' as const), key: index }),
  fc.record({ op: fc.constant('range' as const), low: index, high: index }),
)

/** A run: a pool of 12 keys and operations on them. */
export const runArbitrary = fc.record({
  pool: fc.array(keyArbitrary, { minLength: 12, maxLength: 12 }),
  operations: fc.array(operationArbitrary, { minLength: 1, maxLength: 12 }),
})
