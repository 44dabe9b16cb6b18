// LeadNode on one machine: the seed's Quick Start, key identity, values, bad input, lifecycle,
// range queries against brute force on real words, stats, and retraining under concurrent puts.

import test from 'ava'
import {
  AdaptiveTrainingManager,
  InvalidArgumentError,
  InvalidConfigError,
  InvalidKeyError,
  type LeadConfigInit,
  LeadNode,
  type NodeKey,
  NotStartedError,
  ValueNotSerializableError,
  ValueTooLargeError,
} from '../ts/index.js'
import { englishWords, seededRandom } from './helpers/datasets.js'

async function started(config: LeadConfigInit = {}): Promise<LeadNode> {
  const node = new LeadNode({ network: false, ...config })
  await node.start()
  return node
}

test('seed quick start: put, get, range query, stop', async (t) => {
  const node = new LeadNode({
    ip: 'localhost',
    basePort: 0,
    numVirtualNodes: 3,
    branchingFactor: 100,
    modelType: 'linear',
  })
  await node.start()
  await node.put('mykey', { data: 'value' })
  t.deepEqual(await node.get('mykey'), { data: 'value' })
  const results = await node.rangeQuery(1000, 5000)
  t.true(Array.isArray(results))
  const all = await node.rangeQuery(0n, node.config.hashSpaceSize - 1n)
  t.deepEqual(
    all.map((entry) => entry.key),
    ['mykey'],
  )
  await node.stop()
})

test('config defaults are the seed LEADConfig', (t) => {
  const { config } = new LeadNode()
  t.like(config, {
    ip: 'localhost',
    basePort: 9000,
    numVirtualNodes: 3,
    bootstrapPeer: null,
    hashSpaceSize: 2n ** 62n,
    branchingFactor: 100,
    modelType: 'linear',
    stage1ModelType: 'linear',
    stabilizeInterval: 30,
    modelUpdateThreshold: 100,
    maxWorkers: 10,
  })
})

test('invalid config is rejected at construction, naming the field', (t) => {
  const cases: Array<[string, unknown]> = [
    ['ip', ''],
    ['basePort', 70000],
    ['basePort', -1],
    ['numVirtualNodes', 0],
    ['numVirtualNodes', 2.5],
    ['bootstrapPeer', 42],
    ['hashSpaceSize', 2n ** 64n],
    ['hashSpaceSize', 100],
    ['branchingFactor', 0],
    ['modelType', 'quadratic'],
    ['stage1ModelType', 'cubicish'],
    ['stabilizeInterval', 0],
    ['modelUpdateThreshold', -5],
    ['maxWorkers', 0],
    ['dataDir', ''],
    ['maxValueBytes', 0],
    ['maxKeyBytes', 5000],
    ['autoRetrain', 'yes'],
    ['network', 1],
    ['spatial', { min: [0], max: [0] }],
  ]
  for (const [field, value] of cases) {
    const error = t.throws(() => new LeadNode({ [field]: value } as LeadConfigInit), {
      instanceOf: InvalidConfigError,
    })
    t.is(error?.field, field, `${field} = ${String(value)}`)
    t.regex(error?.message ?? '', new RegExp(`config\\.${field}`))
  }
  t.throws(() => new LeadNode({ base_port: 9000 } as LeadConfigInit), {
    message: /config\.base_port is not a LeadConfig field/,
  })
  t.throws(() => new LeadNode({ training: { newKeysTriggerCount: 0 } }), {
    message: /training\.newKeysTriggerCount/,
  })
})

test('operations before start and after stop throw NotStartedError; start and stop are idempotent', async (t) => {
  const node = new LeadNode({ network: false })
  await t.throwsAsync(node.put('a', 1), { instanceOf: NotStartedError, code: 'ERR_DLHT_NOT_STARTED' })
  await t.throwsAsync(node.get('a'), { instanceOf: NotStartedError })
  await Promise.all([node.start(), node.start()])
  await node.put('a', 1)
  await node.stop()
  await node.stop()
  for (const call of [
    () => node.get('a'),
    () => node.delete('a'),
    () => node.putMany([['a', 1]]),
    () => node.getMany(['a']),
    () => node.rangeQuery(0, 1),
    () => node.rangeQueryKeys('a', 'b'),
    () => node.retrainModel({ force: true }),
    () => node.findSuccessor(0),
  ]) {
    await t.throwsAsync(call(), { instanceOf: NotStartedError })
  }
})

test('keys of every type keep their exact identity', async (t) => {
  const node = await started()
  const keys: NodeKey[] = [
    5,
    5n,
    '5',
    new Uint8Array([0x35]),
    'internationalization',
    'internationalizations', // shares its encoded prefix with the key above
    2n ** 80n,
    2n ** 80n + 1n, // encodes like 2^80 (beyond double precision)
    -0.5,
    '',
    new Uint8Array(),
  ]
  for (let i = 0; i < keys.length; i++) await node.put(keys[i], i)
  for (let i = 0; i < keys.length; i++) t.is(await node.get(keys[i]), i)
  t.is(await node.get(0), undefined)
  t.is(await node.get(-0.5), 8)
  t.is(node.getStats().keys, keys.length)
  const bytes = new Uint8Array([1, 2, 3])
  await node.put(bytes, 'bytes')
  bytes[0] = 9
  t.is(await node.get(new Uint8Array([1, 2, 3])), 'bytes', 'the node keeps its own copy of a byte key')
  t.is(await node.get(new Uint8Array([9, 2, 3])), undefined)
  t.true(await node.delete(5))
  t.false(await node.delete(5))
  t.is(await node.get(5), undefined)
  t.is(await node.get(5n), 1)
  await node.stop()
})

test('values keep their structured-clone form and are copies', async (t) => {
  const node = await started()
  const value = {
    map: new Map<unknown, unknown>([[1, { deep: [1, 2] }]]),
    set: new Set(['a']),
    date: new Date(1234),
    big: 2n ** 70n,
    bytes: new Uint8Array([1, 2]),
    floats: new Float64Array([1.5, -0]),
    nested: [null, undefined, Number.NaN, -0],
  }
  await node.put('v', value)
  const back = (await node.get<typeof value>('v')) as typeof value
  t.deepEqual(back, value)
  t.true(back.map instanceof Map && back.date instanceof Date)
  back.set.add('mutated')
  t.deepEqual(await node.get('v'), value, 'mutating a returned value changes nothing stored')
  await node.stop()
})

test('bad keys and values get typed errors and change nothing', async (t) => {
  const node = await started({ maxValueBytes: 1000 })
  await node.put('kept', 'original')
  for (const key of [Number.NaN, Number.POSITIVE_INFINITY, null, undefined, {}, [1, 2], true, Symbol('s')]) {
    await t.throwsAsync(node.put(key as NodeKey, 1), { instanceOf: InvalidKeyError })
    await t.throwsAsync(node.get(key as NodeKey), { instanceOf: InvalidKeyError })
    await t.throwsAsync(node.delete(key as NodeKey), { instanceOf: InvalidKeyError })
  }
  await t.throwsAsync(node.put('x'.repeat(2000), 1), { instanceOf: InvalidKeyError, message: /maxKeyBytes/ })
  const tooLarge = await t.throwsAsync(node.put('kept', 'x'.repeat(2000)), { instanceOf: ValueTooLargeError })
  t.is(tooLarge?.code, 'ERR_DLHT_VALUE_TOO_LARGE')
  const defaults = await started()
  await t.throwsAsync(defaults.put('huge', new Uint8Array(2 * 1024 * 1024)), {
    instanceOf: ValueTooLargeError,
  })
  t.is(await defaults.get('huge'), undefined)
  await defaults.stop()
  for (const value of [() => 1, Symbol('s'), { f() {} }, undefined, new WeakMap()]) {
    await t.throwsAsync(node.put('kept', value), { instanceOf: ValueNotSerializableError })
  }
  await t.throwsAsync(
    node.putMany([
      ['new', 1],
      ['kept', () => 2],
    ]),
    { instanceOf: ValueNotSerializableError },
  )
  await t.throwsAsync(
    node.putMany([
      ['new', 1],
      [Number.NaN, 2],
    ]),
    { instanceOf: InvalidKeyError },
  )
  t.is(await node.get('kept'), 'original')
  t.is(await node.get('new'), undefined, 'a failed putMany stores nothing')
  t.is(node.getStats().keys, 1)
  await t.throwsAsync(node.rangeQuery(-1, 5), { instanceOf: InvalidArgumentError })
  await t.throwsAsync(node.rangeQuery(0, node.config.hashSpaceSize), { instanceOf: InvalidArgumentError })
  await t.throwsAsync(node.rangeQuery(0.5, 5), { instanceOf: InvalidArgumentError })
  await t.throwsAsync(node.rangeQueryKeys('b', 'a'), { instanceOf: InvalidArgumentError })
  await t.throwsAsync(node.rangeQueryKeys(1, 'a'), { instanceOf: InvalidArgumentError })
  await t.throwsAsync(node.rangeQueryBox({ min: [0], max: [1] }), { instanceOf: InvalidArgumentError })
  await node.stop()
})

test('putMany and getMany on 20k English words', async (t) => {
  const node = await started()
  const words = englishWords().slice(0, 20_000)
  await node.putMany(words.map((word, i) => [word, { i }]))
  const values = await node.getMany<{ i: number }>([...words, 'not-a-word-xyz'])
  t.true(words.every((_, i) => values[i]?.i === i))
  t.is(values[words.length], undefined)
  const stats = node.getStats()
  t.is(stats.keys, words.length)
  t.like(stats.operations, { puts: words.length, gets: words.length + 1, hits: words.length, misses: 1 })
  await node.stop()
})

test('rangeQueryKeys is exact on English words (vs brute force), before and after training', async (t) => {
  const node = await started({ autoRetrain: false })
  const random = seededRandom(7)
  const words = englishWords().filter(() => random() < 0.2)
  await node.putMany(words.map((word) => [word, word.length]))
  const sortedWords = [...words].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  const check = async (label: string) => {
    for (let q = 0; q < 30; q++) {
      const i = Math.floor(random() * sortedWords.length)
      const j = Math.min(sortedWords.length - 1, i + Math.floor(random() * 300))
      const [low, high] =
        q % 3 === 0 ? [sortedWords[i].slice(0, 3), `${sortedWords[j]}zz`] : [sortedWords[i], sortedWords[j]]
      const expected = sortedWords.filter(
        (word) =>
          Buffer.compare(Buffer.from(word), Buffer.from(low)) >= 0 &&
          Buffer.compare(Buffer.from(word), Buffer.from(high)) <= 0,
      )
      const found = await node.rangeQueryKeys(low, high)
      t.deepEqual(
        found
          .map((entry) => entry.key)
          .sort((a, b) => Buffer.compare(Buffer.from(a as string), Buffer.from(b as string))),
        expected,
        `${label} [${low}, ${high}]`,
      )
      t.true(
        found.every((entry, k) => k === 0 || found[k - 1].position <= entry.position),
        'in position order',
      )
    }
  }
  await check('untrained')
  await node.retrainModel({ force: true })
  t.is(node.learnedHash.version, 1)
  await check('trained')
  await node.stop()
})

test('rangeQueryKeys on numbers and bigints', async (t) => {
  const node = await started()
  const keys: NodeKey[] = [-5, -1.5, 0, 1, 2n, 3, 3n, 10, 2n ** 70n]
  await node.putMany(keys.map((key, i) => [key, i]))
  await node.retrainModel({ force: true })
  const found = await node.rangeQueryKeys(1n, 3)
  t.deepEqual(found.map((entry) => entry.value).sort(), [3, 4, 5, 6])
  t.deepEqual((await node.rangeQueryKeys(-10, 2n ** 80n)).length, keys.length)
  t.deepEqual(await node.rangeQueryKeys('a', 'z'), [])
  await node.stop()
})

test('rangeQuery returns exactly the entries whose position is in range; hashMin > hashMax wraps', async (t) => {
  const node = await started({ numVirtualNodes: 5 })
  const random = seededRandom(11)
  const keys = Array.from({ length: 3000 }, () => Math.floor(random() * 1e9))
  await node.putMany(keys.map((key) => [key, key]))
  await node.retrainModel({ force: true })
  const size = node.config.hashSpaceSize
  const all = await node.rangeQuery(0n, size - 1n)
  t.is(all.length, new Set(keys).size)
  t.true(all.every((entry) => entry.position === node.learnedHash.predict(entry.key)))
  for (let q = 0; q < 20; q++) {
    const a = BigInt(Math.floor(random() * 2 ** 52)) * (size / 2n ** 52n)
    const b = BigInt(Math.floor(random() * 2 ** 52)) * (size / 2n ** 52n)
    const found = await node.rangeQuery(a, b)
    const inRange = (p: bigint) => (a <= b ? p >= a && p <= b : p >= a || p <= b)
    const expected = all.filter((entry) => inRange(entry.position))
    if (a > b) expected.sort((x, y) => Number(x.position < a) - Number(y.position < a))
    t.deepEqual(
      found.map((entry) => entry.key),
      expected.map((entry) => entry.key),
    )
  }
  await node.stop()
})

test('learnedHash and findSuccessor: the seed use cases', async (t) => {
  const node = await started({ numVirtualNodes: 4 })
  const timestamp = 1_700_000_000_000
  const taskHash = node.learnedHash.predict(timestamp)
  const owner = await node.findSuccessor(taskHash)
  t.is(owner.peerId, node.peerId)
  t.true(owner.id >= taskHash)
  const { position, error } = node.learnedHash.predictWithError('key')
  t.is(typeof position, 'bigint')
  t.true(error >= 0n)
  const { hashMin, hashMax } = node.learnedHash.predictRange('a', 'b')
  t.true(hashMin <= hashMax)
  const dict = node.learnedHash.toDict()
  t.is(dict.modelVersion, 0)
  t.is(JSON.parse(JSON.stringify(dict)).model.formatVersion, 3)
  const last = await node.findSuccessor(node.config.hashSpaceSize - 1n)
  t.is(last.vnodeId, 3)
  const first = await node.findSuccessor(0)
  t.is(first.vnodeId, 0)
  await node.stop()
})

test('stats: per-vnode keys and bytes add up; routing table lists the arcs', async (t) => {
  const node = await started({ numVirtualNodes: 4, autoRetrain: false })
  await node.putMany(
    englishWords()
      .slice(0, 5000)
      .map((word) => [word, word]),
  )
  await node.retrainModel({ force: true })
  const stats = node.getStats()
  t.is(stats.vnodes.length, 4)
  t.is(
    stats.vnodes.reduce((sum, vnode) => sum + vnode.keys, 0),
    stats.keys,
  )
  t.is(
    stats.vnodes.reduce((sum, vnode) => sum + vnode.bytes, 0),
    stats.bytes,
  )
  t.true(
    stats.vnodes.every((vnode) => vnode.keys > 500),
    'a trained model spreads keys over the vnodes',
  )
  t.is(stats.storage, 'memory')
  t.is(stats.modelVersion, 1)
  t.is(stats.training.modelVersion, 1)
  const routing = node.getRoutingTableStats()
  t.is(routing.vnodes.length, 4)
  t.is(routing.vnodes[0].arcStart, routing.vnodes[3].id)
  await node.stop()
})

test('retrainModel respects triggers unless forced, and trains on sampleKeys when given', async (t) => {
  const node = await started({
    autoRetrain: false,
    training: { newKeysTriggerCount: 100, enableErrorTrigger: false },
  })
  await node.putMany(Array.from({ length: 50 }, (_, i) => [i, i]))
  const skipped = await node.retrainModel()
  t.like(skipped, { retrained: false, reason: 'no_trigger', modelVersion: 0 })
  await node.putMany(Array.from({ length: 50 }, (_, i) => [100 + i, i]))
  t.like(await node.retrainModel(), {
    retrained: true,
    reason: 'new_keys_count',
    modelVersion: 1,
    trainingDataSize: 100,
  })
  const withSample = await node.retrainModel({ force: true, sampleKeys: [1, 2, 3, 4] })
  t.like(withSample, { retrained: true, reason: 'forced', modelVersion: 2, trainingDataSize: 4 })
  t.is(node.learnedHash.model.numKeys, 4)
  t.is(node.trainingManager.getMetrics().trainingDataSize, 4)
  await node.stop()
})

test('the node retrains by itself when a trigger fires', async (t) => {
  const node = await started({ modelUpdateThreshold: 50, training: { newKeysTriggerCount: 200 } })
  const retrained = new Promise((resolve) => node.addEventListener('retrain', resolve, { once: true }))
  await node.putMany(Array.from({ length: 250 }, (_, i) => [i * 3, i]))
  await retrained
  t.true(node.learnedHash.version >= 1)
  t.true(node.getStats().operations.retrains >= 1)
  await node.stop()
})

test('trainingManager is replaceable and learns the keys already stored', async (t) => {
  const node = await started({ autoRetrain: false })
  await node.putMany([
    [1, 1],
    [2, 2],
  ])
  node.trainingManager = new AdaptiveTrainingManager({ newKeysTriggerCount: 2 })
  t.is(node.trainingManager.getMetrics().totalKeysSeen, 2)
  t.like(await node.retrainModel(), { retrained: true, reason: 'new_keys_count' })
  t.throws(() => {
    node.trainingManager = new AdaptiveTrainingManager({}, { hashSpaceSize: 2n ** 40n })
  })
  await node.stop()
})

test('retraining under concurrent puts loses and hides nothing', async (t) => {
  const node = await started({ autoRetrain: false, numVirtualNodes: 3 })
  const words = englishWords()
  const random = seededRandom(5)
  const keys = Array.from({ length: 60_000 }, (_, i) =>
    i % 2 === 0 ? words[i] : Math.floor(random() * 1e12),
  )
  await node.putMany(keys.slice(0, 20_000).map((key) => [key, String(key)]))
  const writers = (async () => {
    for (let i = 20_000; i < keys.length; i += 500) {
      await node.putMany(keys.slice(i, i + 500).map((key) => [key, String(key)]))
      const sample = keys.slice(Math.max(0, i - 50), i)
      const read = await node.getMany(sample)
      t.deepEqual(read, sample.map(String), 'reads during the retrain see every entry')
    }
  })()
  const retrains = (async () => {
    for (let r = 0; r < 3; r++) await node.retrainModel({ force: true })
  })()
  await Promise.all([writers, retrains])
  t.is(node.learnedHash.version, 3)
  const distinct = new Set(keys)
  t.is(node.getStats().keys, distinct.size)
  const values = await node.getMany(keys)
  t.true(values.every((value, i) => value === String(keys[i])))
  const all = await node.rangeQuery(0n, node.config.hashSpaceSize - 1n)
  t.is(all.length, distinct.size, 'a full-ring scan sees every entry once')
  t.true(all.every((entry, i) => i === 0 || all[i - 1].position <= entry.position))
  t.true(all.every((entry) => entry.position === node.learnedHash.predict(entry.key)))
  await node.stop()
})
