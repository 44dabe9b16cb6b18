// The learned core through N-API against what a user would write instead (binary search over
// the same sorted Float64Array in JS; a string's first 8 bytes as its key), measured in the same
// run; writes results/learned-core.json.

import {
  cities,
  englishWords,
  lognormalKeys,
  seededRandom,
  sorted,
  uniformKeys,
} from '../__test__/helpers/datasets.js'
import { encodeKeys, RecursiveModelIndex } from '../ts/index.js'
import { medianMs, rate, writeResults } from './measure.js'

/** Index of the first key >= probe: the JS baseline for "where does this key go". */
function lowerBound(keys: Float64Array, probe: number): number {
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (keys[mid] < probe) lo = mid + 1
    else hi = mid
  }
  return lo
}

const training: Record<string, number> = {}
for (const modelType of ['linear', 'cubic'] as const) {
  for (const n of [1_000, 10_000, 1_000_000]) {
    const keys = sorted(lognormalKeys(n, n))
    const rmi = new RecursiveModelIndex({ modelType })
    training[`${modelType} ${n}`] = medianMs(() => rmi.train(keys), n >= 1_000_000 ? 5 : 21)
  }
}

const keys = sorted(uniformKeys(1_000_000, 21))
const rmi = new RecursiveModelIndex()
rmi.train(keys)
const random = seededRandom(5)
const probes = Float64Array.from({ length: 1_000_000 }, () => keys[Math.floor(random() * keys.length)])
const out = new BigUint64Array(probes.length)

const predictMany = rate(() => rmi.predictMany(probes, out), probes.length, { minMs: 300 })
// Skewed keys take the other root (on the log scale of their bits).
const lognormal = sorted(lognormalKeys(1_000_000, 21))
const lognormalRmi = new RecursiveModelIndex()
lognormalRmi.train(lognormal)
const lognormalProbes = Float64Array.from(
  { length: 1_000_000 },
  () => lognormal[Math.floor(random() * lognormal.length)],
)
const predictManyLognormal = rate(() => lognormalRmi.predictMany(lognormalProbes, out), out.length, {
  minMs: 300,
})
let sink = 0
const binarySearchBatch = rate(
  () => {
    for (let i = 0; i < probes.length; i++) sink += lowerBound(keys, probes[i])
  },
  probes.length,
  { minMs: 300, rounds: 3 },
)
let cursor = 0
const predictSingle = rate(() => {
  for (let i = 0; i < 1000; i++) rmi.predict(probes[cursor++ & 0x7ffff])
}, 1000)
const binarySearchSingle = rate(() => {
  for (let i = 0; i < 1000; i++) sink += lowerBound(keys, probes[cursor++ & 0x7ffff])
}, 1000)

/** Key encoding 1, the baseline: a string's first 8 UTF-8 bytes as a big-endian number. */
const head = new Uint8Array(8)
const headView = new DataView(head.buffer)
const textEncoder = new TextEncoder()
function firstEightBytes(word: string): number {
  head.fill(0)
  textEncoder.encodeInto(word, head)
  return Number(headView.getBigUint64(0))
}

/** How many keys are distinct and how many share the fullest one. */
function resolution(encoded: Float64Array): { distinct: number; mostSharingOneKey: number } {
  const counts = new Map<number, number>()
  for (const key of encoded) counts.set(key, (counts.get(key) ?? 0) + 1)
  let most = 0
  for (const count of counts.values()) most = Math.max(most, count)
  return { distinct: counts.size, mostSharingOneKey: most }
}

const words = englishWords()
const textCode = rate(() => encodeKeys(words), words.length, { minMs: 300, rounds: 3 })
const firstBytes = rate(
  () => {
    for (const word of words) sink += firstEightBytes(word)
  },
  words.length,
  { minMs: 300, rounds: 3 },
)
const encoding = {
  words: words.length,
  textCodeKeysPerSecond: textCode.opsPerSecond,
  firstEightBytesKeysPerSecond: firstBytes.opsPerSecond,
  textCodeVsFirstEightBytes: textCode.opsPerSecond / firstBytes.opsPerSecond,
  textCode: resolution(encodeKeys(words)),
  firstEightBytes: resolution(Float64Array.from(words, firstEightBytes)),
}

const H = Number(rmi.options.hashSpaceSize)
const accuracy: Record<string, object> = {}
const datasets: Array<[string, Float64Array]> = [
  ['city longitudes', sorted(Float64Array.from(cities(), (city) => city.coordinates[0]))],
  ['city populations', sorted(Float64Array.from(cities(), (city) => city.population))],
  ['english words', sorted(encodeKeys(englishWords()))],
  ['lognormal 1M', sorted(lognormalKeys(1_000_000))],
  ['uniform 1M', keys],
]
for (const [name, data] of datasets) {
  for (const modelType of ['linear', 'cubic'] as const) {
    const model = new RecursiveModelIndex({ modelType })
    model.train(data)
    const stats = model.stats()
    accuracy[`${name}, ${modelType}`] = {
      keys: data.length,
      meanErrorPercentOfSpace: (stats.meanError / H) * 100,
      maxErrorPercentOfSpace: (stats.maxError / H) * 100,
      modelBytes: stats.modelBytes,
      modelPercentOfData: (stats.modelBytes / (data.length * 8)) * 100,
    }
  }
}

const results = {
  trainMs: training,
  predictManyKeysPerSecond: predictMany.opsPerSecond,
  predictManyLognormalKeysPerSecond: predictManyLognormal.opsPerSecond,
  predictManyTargetKeysPerSecond: 150_000_000,
  binarySearchBatchKeysPerSecond: binarySearchBatch.opsPerSecond,
  predictManyVsBinarySearch: predictMany.opsPerSecond / binarySearchBatch.opsPerSecond,
  predictSingleNs: predictSingle.nsPerOp,
  binarySearchSingleNs: binarySearchSingle.nsPerOp,
  encoding,
  accuracy,
}
console.log('train (ms, median):', training)
console.log(
  `predictMany ${(predictMany.opsPerSecond / 1e6).toFixed(1)}M keys/s vs JS binary search ` +
    `${(binarySearchBatch.opsPerSecond / 1e6).toFixed(1)}M keys/s: ${results.predictManyVsBinarySearch.toFixed(1)}x`,
)
console.log(`predictMany on lognormal keys ${(predictManyLognormal.opsPerSecond / 1e6).toFixed(1)}M keys/s`)
console.log(
  `single predict ${predictSingle.nsPerOp.toFixed(0)} ns vs JS binary search ${binarySearchSingle.nsPerOp.toFixed(0)} ns`,
)
console.log(
  `encodeKeys on ${words.length} English words: text code ${(textCode.opsPerSecond / 1e6).toFixed(1)}M keys/s ` +
    `(${encoding.textCode.distinct} distinct, at most ${encoding.textCode.mostSharingOneKey} sharing a key) vs ` +
    `first 8 bytes in JS ${(firstBytes.opsPerSecond / 1e6).toFixed(1)}M keys/s (${encoding.firstEightBytes.distinct} distinct, ` +
    `at most ${encoding.firstEightBytes.mostSharingOneKey}): ${encoding.textCodeVsFirstEightBytes.toFixed(2)}x`,
)
console.table(accuracy)
console.log(`baseline checksum ${sink} (keeps the JS loops from being optimised away)`)
console.log(`written to ${writeResults('learned-core', results)}`)
