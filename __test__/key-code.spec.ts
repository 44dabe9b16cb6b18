// The learned key code: string keys with long shared prefixes spread over the ring once a node
// retrains, every key keeps its order, and the code travels with the model (bytes, dict, LMDB).

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import { CorruptModelError, encodeKey, encodeKeys, LeadNode, RecursiveModelIndex } from '../ts/index.js'
import { compareUtf8 } from '../ts/shared/keys.js'
import { englishWords } from './helpers/datasets.js'
import { keyShapes, urlKeys, userKeys } from './helpers/key-shapes.js'

const ARCS = 1000

async function keysIn(node: LeadNode, low: string | number, high: string | number) {
  return (await node.rangeQueryKeys(low, high)).map((entry) => entry.key)
}

/** Share of distinct keys on distinct positions, and the busiest of ARCS equal arcs over the mean. */
function spread(positions: readonly bigint[], distinctKeys: number, hashSpaceSize: bigint) {
  const arcs = new Array<number>(ARCS).fill(0)
  for (const position of positions) arcs[Number((position * BigInt(ARCS)) / hashSpaceSize)]++
  return {
    distinct: new Set(positions).size / distinctKeys,
    busiest: Math.max(...arcs) / (positions.length / ARCS),
  }
}

for (const [name, keys] of [...keyShapes(), ['English words', englishWords()] as [string, string[]]]) {
  test(`${name}: a retrained node puts 99 % of keys on distinct positions, no arc above 1.5x`, async (t) => {
    const node = new LeadNode({ network: false, autoRetrain: false })
    await node.start()
    t.teardown(() => node.stop())
    for (let i = 0; i < keys.length; i += 10_000) {
      await node.putMany(keys.slice(i, i + 10_000).map((key) => [key, 1] as const))
    }
    // The same keys on a model trained by the fixed text code, for the record.
    const textCoded = encodeKeys(keys)
    const textModel = await RecursiveModelIndex.trainNew(textCoded.slice().sort())
    const before = spread([...textModel.predictMany(textCoded)], new Set(keys).size, 2n ** 62n)
    await node.retrainModel({ force: true })
    t.true(node.learnedHash.model.hasKeyCode)
    const after = spread(
      keys.map((key) => node.learnedHash.predict(key)),
      new Set(keys).size,
      node.config.hashSpaceSize,
    )
    t.log(
      `text code: ${(before.distinct * 100).toFixed(2)} % distinct, busiest ${before.busiest.toFixed(2)}x; ` +
        `key code: ${(after.distinct * 100).toFixed(2)} %, ${after.busiest.toFixed(2)}x`,
    )
    t.true(after.distinct >= 0.99)
    t.true(after.busiest <= 1.5)
    // Every key is still found, and a range of keys is one arc.
    const sample = keys.filter((_, i) => i % 997 === 0)
    t.deepEqual(
      await node.getMany(sample),
      sample.map(() => 1),
    )
    const ordered = [...new Set(keys)].sort(compareUtf8)
    const [low, high] = [ordered[1000], ordered[1999]]
    t.deepEqual(await keysIn(node, low, high), ordered.slice(1000, 2000))
  })
}

test('a batch of strings encodes as each string alone, ASCII or not', (t) => {
  const ascii = ['user:1', 'a', '', 'zz~']
  const mixed = ['user:1', 'é', '日本', '\u{1F600}', '\uD800', 'a\uE000']
  for (const keys of [ascii, mixed, [...mixed, new Uint8Array([1, 2])]])
    t.deepEqual(
      Array.from(encodeKeys(keys)),
      keys.map((key) => encodeKey(key)),
    )
})

test('the code keeps the order of keys it never saw, strings and bytes alike', async (t) => {
  const trained = userKeys(20_000)
  const model = await RecursiveModelIndex.trainOnKeys([...trained, 7, 3n], { branchingFactor: 64 })
  const unseen = [
    ...urlKeys(2000),
    ...userKeys(5000, 99),
    'user:',
    'user:~',
    '',
    'zzz',
    '\u{1f600}',
    'user:0',
  ]
  const ordered = [...trained, ...unseen].sort(compareUtf8)
  const positions = model.predictMany(model.encodeKeys(ordered))
  for (let i = 1; i < positions.length; i++) {
    if (positions[i - 1] > positions[i]) t.fail(`${ordered[i - 1]} is placed after ${ordered[i]}`)
  }
  const bytes = new TextEncoder().encode('user:00012345')
  t.is(model.encodeKey(bytes), model.encodeKey('user:00012345'))
  t.is(model.encodeKey(7), 7, 'numbers keep their own encoding')
  t.notDeepEqual(model.encodeKeys(trained), encodeKeys(trained), 'the fixed text code is not used')
})

test('the key code travels in the model bytes and dict, and damage to it is refused', async (t) => {
  const keys = urlKeys(5000)
  const model = await RecursiveModelIndex.trainOnKeys(keys)
  const encoded = model.encodeKeys(keys)
  for (const copy of [
    RecursiveModelIndex.deserialize(model.serialize()),
    RecursiveModelIndex.fromDict(JSON.parse(JSON.stringify(model.toDict()))),
  ]) {
    t.true(copy.hasKeyCode && copy.sameKeyCode(model))
    t.deepEqual(copy.encodeKeys(keys), encoded)
  }
  const dict = model.toDict()
  t.throws(() => RecursiveModelIndex.fromDict({ ...dict, keyCode: 'AAAA' }), {
    instanceOf: CorruptModelError,
  })
  t.throws(() => RecursiveModelIndex.fromDict({ ...dict, keyCode: 42 as unknown as string }), {
    instanceOf: CorruptModelError,
  })
  const { keyCode: _keyCode, ...withoutCode } = dict
  t.false(RecursiveModelIndex.fromDict({ ...withoutCode, formatVersion: 2 as 3 }).hasKeyCode)
  t.throws(() => RecursiveModelIndex.fromDict({ ...dict, formatVersion: 2 as 3 }), {
    instanceOf: CorruptModelError,
  })
})

test('numbers and strings in one store stay in ring order across a key code change and a restart', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'dlht-keycode-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const words = urlKeys(20_000)
  const numbers = Array.from({ length: 2000 }, (_, i) => i * 1e15)
  const first = new LeadNode({ network: false, dataDir, autoRetrain: false })
  await first.start()
  await first.putMany([...words.map((word) => [word, word] as const), ...numbers.map((n) => [n, n] as const)])
  await first.retrainModel({ force: true })
  const byCode = first.learnedHash.model
  t.true(byCode.hasKeyCode)
  const ordered = [...new Set(words)].sort(compareUtf8)
  t.deepEqual(await keysIn(first, ordered[100], ordered[5000]), ordered.slice(100, 5001))
  t.deepEqual(await keysIn(first, numbers[10], numbers[1500]), numbers.slice(10, 1501))
  await first.stop()

  const second = new LeadNode({ network: false, dataDir, autoRetrain: false })
  await second.start()
  t.teardown(() => second.stop())
  t.true(second.learnedHash.model.sameKeyCode(byCode))
  t.is(second.getStats().keys, new Set(words).size + numbers.length)
  t.deepEqual(await keysIn(second, ordered[100], ordered[5000]), ordered.slice(100, 5001))
  t.deepEqual(await keysIn(second, numbers[10], numbers[1500]), numbers.slice(10, 1501))
  t.is(await second.get(words[7]), words[7])
  // Written under the code, then retrained again: still found, still in order.
  await second.putMany(userKeys(3000).map((key) => [key, 0] as const))
  await second.retrainModel({ force: true })
  t.is(await second.get(words[8]), words[8])
  t.deepEqual(await keysIn(second, ordered[100], ordered[5000]), ordered.slice(100, 5001))
})
