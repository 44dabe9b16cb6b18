// The ordered index against a sorted array: random inserts and removals with many tied keys,
// small chunks so that splits and emptied chunks happen often.

import test from 'ava'
import { OrderedIndex } from '../ts/storage/ordered-index.js'
import { seededRandom } from './helpers/datasets.js'

interface Item {
  key: number
  id: number
}

const compare = (a: Item, b: Item) => a.key - b.key || a.id - b.id

function contents(index: OrderedIndex<Item>): Item[] {
  const all: Item[] = []
  for (const chunk of index.chunks()) all.push(...chunk)
  return all
}

test('inserts and removals keep the order of a sorted array', (t) => {
  const random = seededRandom(9)
  const index = new OrderedIndex<Item>(
    (item) => item.key,
    (a, b) => a.id - b.id,
    8,
  )
  const model: Item[] = []
  for (let step = 0; step < 5000; step++) {
    if (model.length > 0 && random() < 0.4) {
      const victim = model.splice(Math.floor(random() * model.length), 1)[0]
      t.true(index.remove(victim))
      t.false(index.remove(victim))
    } else {
      const item = { key: Math.floor(random() * 50), id: step }
      index.insert(item)
      model.push(item)
    }
  }
  model.sort(compare)
  t.is(index.size, model.length)
  t.deepEqual(contents(index), model)
  const ranks = [0, 3, Math.floor(model.length / 2), model.length - 1]
  t.deepEqual(
    index.atRanks(ranks),
    ranks.map((rank) => model[rank]),
  )
  const cursor = index.lowerBound((item) => item.key < 25)
  const scanned: Item[] = []
  index.scanFrom(cursor, (item) => {
    scanned.push(item)
    return item.key < 30
  })
  const first = model.findIndex((item) => item.key >= 25)
  const last = model.findIndex((item) => item.key >= 30)
  t.deepEqual(scanned, model.slice(first, last + 1))
  index.load(model)
  t.deepEqual(contents(index), model)
  index.insert({ key: -1, id: -1 })
  t.deepEqual(contents(index)[0], { key: -1, id: -1 })
})

test('lowerBound past the end and on an empty index', (t) => {
  const index = new OrderedIndex<Item>(
    (item) => item.key,
    (a, b) => a.id - b.id,
  )
  t.deepEqual(
    index.lowerBound(() => true),
    { chunk: 0, index: 0 },
  )
  index.insert({ key: 1, id: 1 })
  t.deepEqual(
    index.lowerBound(() => true),
    { chunk: 1, index: 0 },
  )
  t.false(index.remove({ key: 2, id: 2 }))
})
