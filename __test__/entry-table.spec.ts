// The entry table against a Map, with keys of every type and many removals (the hash's backward
// shifts), and the value arena through compactions: reads agree, and bytes read earlier never change.

import test from 'ava'
import type { NodeKey } from '../ts/shared/keys.js'
import { EntryTable } from '../ts/storage/entry-table.js'
import { ValueArena } from '../ts/storage/value-arena.js'
import { seededRandom } from './helpers/datasets.js'

/** A key of one of the five types, drawn from a small space so that keys repeat. */
function randomKey(random: () => number): NodeKey {
  const n = Math.floor(random() * 400)
  switch (n % 5) {
    case 0:
      return `key ${n}`
    case 1:
      return n === 1 ? -0 : n / 7
    case 2:
      return BigInt(n)
    case 3:
      return Uint8Array.from([n & 0xff, n >> 8])
    default:
      return [n, -n]
  }
}

/** How a Map tells keys apart: type and value (0 and -0 alike). */
function identity(key: NodeKey): string {
  if (key instanceof Uint8Array) return `bytes ${key.join(',')}`
  if (Array.isArray(key)) return `point ${key.join(',')}`
  return `${typeof key} ${String(key)}`
}

test('finds, adds and removes keys of every type as a Map does', (t) => {
  const random = seededRandom(3)
  const table = new EntryTable()
  const model = new Map<string, number>()
  for (let step = 0; step < 20_000; step++) {
    const key = randomKey(random)
    const id = table.find(key)
    t.is(id >= 0, model.has(identity(key)))
    if (id >= 0) {
      t.is(id, model.get(identity(key)) as number)
      if (random() < 0.5) {
        table.remove(id)
        model.delete(identity(key))
      }
    } else {
      const added = table.add(key, step)
      t.is(table.encodedOf(added), step)
      model.set(identity(key), added)
    }
  }
  t.is(table.size, model.size)
  const fresh = new EntryTable()
  const number = fresh.add(5, 5)
  t.not(fresh.find(5n), number, '5 and 5n are different keys')
  t.is(fresh.find(-0), -1)
  const zero = fresh.add(-0, 0)
  t.is(fresh.find(0), zero, '0 and -0 are one key')
})

test('the value arena keeps values through compactions, and bytes read before stay as they were', (t) => {
  const arena = new ValueArena()
  const lengths = new Map<number, number>()
  const value = (id: number, round: number) => new Uint8Array(1000).fill((id + round) & 0xff)
  const early = arena.get(0, 0)
  t.is(early, undefined)
  let kept: Uint8Array | undefined
  for (let round = 0; round < 40; round++) {
    for (let id = 0; id < 1000; id++) {
      if (lengths.has(id)) arena.delete(id, lengths.get(id) as number)
      arena.set(id, value(id, round))
      lengths.set(id, 1000)
    }
    arena.compactIfWasteful((id) => lengths.get(id) as number)
    if (round === 0) kept = arena.get(7, 1000)
  }
  for (let id = 0; id < 1000; id++) t.deepEqual(arena.get(id, 1000), value(id, 39))
  t.deepEqual(kept, value(7, 0))
  arena.set(5000, new Uint8Array(1 << 19).fill(9))
  t.is(arena.get(5000, 1 << 19)?.[100], 9)
})
