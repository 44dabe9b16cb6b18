// Federated averaging through the facade on real skewed data (lognormal, city populations, English
// words) at 3 and 8 in-process contributors, and validation of proposed models, poisoned ones included.

import { crc32 } from 'node:zlib'
import test from 'ava'
import {
  encodeKeys,
  InvalidArgumentError,
  ModelRejectedError,
  modelDigest,
  RecursiveModelIndex,
  type RejectionReason,
  validateProposal,
} from '../ts/index.js'
import { cities, englishWords, lognormalKeys, sorted, splitByRange } from './helpers/datasets.js'
import { meanPositionError } from './helpers/model-error.js'

const OPTIONS = { branchingFactor: 100, modelType: 'linear', stage1ModelType: 'linear' } as const

/** City populations have 11% zeros under keys over eight decades: the case the root's cells are for. */
const datasets: Array<[string, () => Float64Array]> = [
  ['lognormal', () => sorted(lognormalKeys(100_000, 5))],
  ['city populations', () => sorted(Float64Array.from(cities(), (city) => city.population))],
  ['English words', () => sorted(encodeKeys(englishWords()))],
]

for (const [name, load] of datasets) {
  for (const nodes of [3, 8]) {
    test(`federated model within 1.5x of central on ${name}, ${nodes} contributors`, async (t) => {
      const keys = load()
      const central = await RecursiveModelIndex.trainNew(keys, OPTIONS)
      // Each node trains on its own keys and ships its model bytes and key count.
      const contributions = splitByRange(keys, nodes).map((part) => {
        const local = new RecursiveModelIndex(OPTIONS)
        local.train(part)
        return { model: local.serialize(), weight: part.length }
      })
      const federated = await RecursiveModelIndex.federatedAverage(contributions, OPTIONS)
      const ratio = meanPositionError(federated, keys) / meanPositionError(central, keys)
      const modelBytes = contributions.reduce((sum, c) => sum + c.model.byteLength, 0)
      t.log(
        `error ratio ${ratio.toFixed(3)}; ${modelBytes} model bytes per round vs ${keys.length * 8} key bytes`,
      )
      t.true(ratio <= 1.5)
    })
  }
}

test('federated averaging refuses unusable contributions with typed errors', async (t) => {
  const model = new RecursiveModelIndex(OPTIONS)
  model.train(sorted(lognormalKeys(1000, 1)))
  await t.throwsAsync(() => RecursiveModelIndex.federatedAverage([]), { instanceOf: InvalidArgumentError })
  await t.throwsAsync(() => RecursiveModelIndex.federatedAverage([{ model, weight: Number.NaN }]), {
    instanceOf: InvalidArgumentError,
  })
  await t.throwsAsync(
    () => RecursiveModelIndex.federatedAverage([{ model: new RecursiveModelIndex(OPTIONS), weight: 1 }]),
    { instanceOf: InvalidArgumentError },
  )
  const copy = await RecursiveModelIndex.federatedAverage([
    { model, weight: 3 },
    { model, weight: 0 },
  ])
  t.true(copy.isTrained)
})

// --- validation of proposed models --------------------------------------------------------------

const HEADER = 21
const KEY_RANGE = 24
/** Type, scale, key range, 4 coefficients, the cell count and one first cell per leaf (100). */
const ROOT = 50 + 4 + 4 * 100
const LEAF = 89

/** Overwrites an f64 field of leaf `leaf` (0: key_lo … 2: c0, 3: c1 … 6: position_lo) and re-seals the CRC. */
function poison(bytes: Uint8Array, leaf: number, field: number, value: number): Uint8Array {
  const copy = Buffer.from(bytes)
  copy.writeDoubleLE(value, HEADER + KEY_RANGE + ROOT + leaf * LEAF + 1 + field * 8)
  copy.writeUInt32LE(crc32(copy.subarray(0, copy.length - 4)), copy.length - 4)
  return new Uint8Array(copy)
}

function proposal(bytes: Uint8Array, version = 2) {
  return { version, digest: modelDigest(bytes), bytes }
}

test('a valid proposal passes; poisoned ones are refused with their reason', (t) => {
  const model = new RecursiveModelIndex(OPTIONS)
  model.train(sorted(lognormalKeys(5000, 3)))
  const bytes = model.serialize()
  const policy = { options: model.options, currentVersion: 1 }
  t.deepEqual(validateProposal(proposal(bytes), policy).serialize(), bytes)
  const refused = (candidate: Parameters<typeof validateProposal>[0], reason: RejectionReason) => {
    const err = t.throws(() => validateProposal(candidate, policy), { instanceOf: ModelRejectedError })
    t.is(err?.reason, reason, err?.message)
    t.is(err?.code, 'ERR_DLHT_MODEL_REJECTED')
  }
  refused(proposal(poison(bytes, 10, 3, Number.NaN)), 'corrupt')
  refused(proposal(poison(bytes, 10, 3, -1e18)), 'corrupt')
  refused(proposal(poison(bytes, 20, 6, 1e10)), 'corrupt')
  refused(proposal(bytes, 1), 'stale-version')
  refused({ ...proposal(bytes), digest: modelDigest(poison(bytes, 10, 3, Number.NaN)) }, 'digest-mismatch')
  const narrow = new RecursiveModelIndex({ ...OPTIONS, branchingFactor: 50 })
  narrow.train(sorted(lognormalKeys(5000, 3)))
  refused(proposal(narrow.serialize()), 'wrong-shape')
  refused(proposal(new RecursiveModelIndex(OPTIONS).serialize()), 'wrong-shape')
  t.throws(() => validateProposal(proposal(bytes), { ...policy, maxErrorFraction: 1e-12 }), {
    instanceOf: ModelRejectedError,
    message: /error-bound/,
  })
})
