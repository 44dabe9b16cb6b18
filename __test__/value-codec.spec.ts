// The value codec writes and reads V8's structured-clone format: its output must read back with
// `v8.deserialize`, and it must read `v8.serialize` output, giving what structuredClone gives.

import { deserialize, serialize } from 'node:v8'
import test from 'ava'
import { deserializeValue, serializeValue } from '../ts/node/value-codec.js'
import { seededRandom } from './helpers/datasets.js'

const LIMIT = 1 << 24

const STRINGS = [
  '',
  'a',
  'héllo',
  'ab€',
  '日本語',
  '😀 emoji',
  '\u0000nul',
  'x'.repeat(300),
  '\ud800 lone',
  'ÿ',
]
const NUMBERS = [
  0,
  -0,
  1,
  -1,
  2 ** 31 - 1,
  -(2 ** 31),
  2 ** 31,
  -(2 ** 31) - 1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  1e300,
  5e-324,
]

function randomValue(random: () => number, depth: number): unknown {
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]
  const kind = Math.floor(random() * (depth > 3 ? 6 : 9))
  switch (kind) {
    case 0:
      return pick(STRINGS)
    case 1:
      return pick(NUMBERS)
    case 2:
      return pick([true, false, null, undefined])
    case 3:
      return Math.floor(random() * 1e6) - 5e5
    case 4:
      return new Date(Math.floor(random() * 1e12))
    case 5:
      return random() * 1e9
    case 6:
      return Array.from({ length: Math.floor(random() * 5) }, () => randomValue(random, depth + 1))
    default: {
      const object: Record<string, unknown> = {}
      const keys = ['a', 'b', '0', '7', 'ключ', '😀', 'long key name', '']
      for (let i = Math.floor(random() * 5); i > 0; i--) object[pick(keys)] = randomValue(random, depth + 1)
      return object
    }
  }
}

test('random JSON-like values round-trip through both codecs, in both directions', (t) => {
  const random = seededRandom(42)
  for (let i = 0; i < 3000; i++) {
    const value = randomValue(random, 0)
    if (value === undefined) continue
    const expected = structuredClone(value)
    const ours = serializeValue(value, LIMIT)
    t.deepEqual(deserialize(ours), expected, 'V8 reads what we write')
    t.deepEqual(deserializeValue(ours), expected, 'we read what we write')
    t.deepEqual(deserializeValue(serialize(value)), expected, 'we read what V8 writes')
  }
})

test('values outside the fast subset keep structured-clone semantics', (t) => {
  const shared = { s: 1 }
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  const arrayWithProperty = Object.assign([1, 2], { extra: 'x' })
  const values: unknown[] = [
    new Map<unknown, unknown>([[1, 'one']]),
    new Set([1]),
    2n ** 100n,
    new Uint8Array([1, 2]),
    new Float64Array([1.5]),
    /re/g,
    // biome-ignore lint/suspicious/noSparseArray: a hole is what this case tests
    [1, , 3],
    arrayWithProperty,
    Array.from({ length: 1000 }, (_, i) => i),
    { pair: [shared, shared] },
    Object.create(null),
    { ['__proto__']: 1 },
    JSON.parse('{"__proto__": {"polluted": true}}'),
    new (class Point {
      x = 1
    })(),
  ]
  for (const value of values) {
    const back = deserializeValue(serializeValue(value, LIMIT))
    t.deepEqual(back, structuredClone(value))
  }
  const pair = deserializeValue(serializeValue({ pair: [shared, shared] }, LIMIT)) as { pair: object[] }
  t.is(pair.pair[0], pair.pair[1], 'shared references stay shared')
  const loop = deserializeValue(serializeValue(cyclic, LIMIT)) as Record<string, unknown>
  t.is(loop.self, loop, 'cycles survive')
  t.is(({} as Record<string, unknown>).polluted, undefined)
})

test('a getter that serializes while a value is being written does not corrupt it', (t) => {
  const value = {
    before: 'b',
    get inner() {
      return deserializeValue(serializeValue({ nested: 'n' }, LIMIT))
    },
    after: 'a',
  }
  t.deepEqual(deserializeValue(serializeValue(value, LIMIT)), {
    before: 'b',
    inner: { nested: 'n' },
    after: 'a',
  })
})

test('non-cloneable values and oversized values are rejected', (t) => {
  for (const value of [
    () => 1,
    Symbol('s'),
    { nested: { f() {} } },
    [Symbol('x')],
    new WeakMap(),
    undefined,
  ]) {
    t.throws(() => serializeValue(value, LIMIT), { code: 'ERR_DLHT_VALUE_NOT_SERIALIZABLE' })
  }
  t.throws(() => serializeValue('x'.repeat(100), 50), { code: 'ERR_DLHT_VALUE_TOO_LARGE' })
})
