// The ring index against a sorted array: random inserts and removals with many tied keys, small
// chunks so that splits and emptied chunks happen often, and position scans across model versions.

import test from 'ava'
import { type Placement, RingIndex } from '../ts/storage/ring-index.js'
import { seededRandom } from './helpers/datasets.js'

interface Item {
  encoded: number
  id: number
}

/** A placement whose mapping (position = encoded * scale) changes with its version. */
function placement(): Placement & { scale: bigint; bump(scale: bigint): void } {
  let version = 0
  return {
    scale: 10n,
    version: () => version,
    place(keys, out) {
      for (let i = 0; i < keys.length; i++) out[i] = BigInt(keys[i]) * this.scale
    },
    bump(scale) {
      this.scale = scale
      version++
    },
  }
}

const compare = (a: Item, b: Item) => a.encoded - b.encoded || a.id - b.id

function scanAll(index: RingIndex, hashMin: bigint, hashMax: bigint): Array<[number, bigint]> {
  const found: Array<[number, bigint]> = []
  index.scan(hashMin, hashMax, (id, position) => {
    found.push([id, position])
  })
  return found
}

test('inserts, removals and scans agree with a sorted array, across model versions', (t) => {
  const random = seededRandom(9)
  const place = placement()
  const index = new RingIndex((a, b) => a - b, place, 8)
  const model: Item[] = []
  for (let step = 0; step < 5000; step++) {
    if (model.length > 0 && random() < 0.4) {
      const victim = model.splice(Math.floor(random() * model.length), 1)[0]
      t.true(index.remove(victim.id, victim.encoded))
      t.false(index.remove(victim.id, victim.encoded))
    } else {
      const item = { encoded: Math.floor(random() * 50), id: step }
      index.insert(item.id, item.encoded, BigInt(item.encoded) * place.scale)
      model.push(item)
    }
    if (step === 2500) place.bump(1000n)
  }
  model.sort(compare)
  t.is(index.size, model.length)
  t.deepEqual(
    Array.from(index.encodedKeys()),
    model.map((item) => item.encoded),
  )
  const expected = (low: bigint, high: bigint) =>
    model
      .map((item): [number, bigint] => [item.id, BigInt(item.encoded) * place.scale])
      .filter(([, position]) => position >= low && position <= high)
  for (const [low, high] of [
    [0n, 100_000n],
    [20_000n, 30_000n],
    [25_000n, 25_000n],
    [49_001n, 60_000n],
    [-5n, -1n],
  ]) {
    t.deepEqual(scanAll(index, low, high), expected(low, high))
  }
  place.bump(7n)
  t.deepEqual(scanAll(index, 70n, 140n), expected(70n, 140n), 'positions follow a new version')
  const ranks = [0, 3, Math.floor(model.length / 2), model.length - 1]
  t.deepEqual(
    index.atRanks(ranks).map(({ id, position }) => [id, position]),
    ranks.map((rank) => [model[rank].id, BigInt(model[rank].encoded) * 7n]),
  )
  t.deepEqual(
    Array.from(index.ids()),
    model.map((item) => item.id),
  )
  index.load(
    model.map((item) => item.id),
    model.map((item) => item.encoded),
  )
  t.deepEqual(scanAll(index, 0n, 10n ** 9n), expected(0n, 10n ** 9n))
})

test('an empty index and a missing entry', (t) => {
  const index = new RingIndex((a, b) => a - b, placement())
  t.deepEqual(scanAll(index, 0n, 100n), [])
  t.false(index.remove(1, 1))
  index.insert(1, 1, 10n)
  t.deepEqual(scanAll(index, 11n, 100n), [])
  t.deepEqual(scanAll(index, 10n, 10n), [[1, 10n]])
})

test('keys inserted in order, then in reverse, scan in order', (t) => {
  const index = new RingIndex((a, b) => a - b, placement(), 8)
  for (let id = 0; id < 500; id++) index.insert(id, id, BigInt(id) * 10n)
  for (let id = 999; id >= 500; id--) index.insert(id, id, BigInt(id) * 10n)
  t.is(index.size, 1000)
  t.deepEqual(
    scanAll(index, 0n, 10_000n),
    Array.from({ length: 1000 }, (_, id): [number, bigint] => [id, BigInt(id) * 10n]),
  )
})

test('insertMany places a batch as inserts one by one would, positions bit for bit', (t) => {
  const random = seededRandom(21)
  const one = new RingIndex((a, b) => a - b, placement(), 8)
  const many = new RingIndex((a, b) => a - b, placement(), 8)
  for (let batch = 0; batch < 20; batch++) {
    const ids = Array.from({ length: 37 }, (_, i) => batch * 37 + i)
    const keys = Float64Array.from(ids, () => Math.floor(random() * 100))
    // Positions near 2^64: both 32-bit halves of each one must survive the copy.
    const positions = BigUint64Array.from(keys, (key) => 2n ** 64n - 1n - BigInt(key) * 2n ** 40n)
    for (let i = 0; i < ids.length; i++) one.insert(ids[i], keys[i], positions[i])
    many.insertMany(ids, keys, positions)
  }
  t.is(many.size, one.size)
  t.deepEqual(scanAll(many, 0n, 2n ** 64n - 1n), scanAll(one, 0n, 2n ** 64n - 1n))
})
