// AdaptiveTrainingManager: every trigger fires at its threshold and not one step before it,
// with a fake clock for staleness; plus training data and metrics.

import test from 'ava'
import {
  AdaptiveTrainingManager,
  DEFAULT_TRAINING_CONFIG,
  InvalidConfigError,
  type TrainingConfig,
} from '../ts/index.js'

const S = 2n ** 62n
const HOUR = 3_600_000

/** A manager with only the given trigger enabled. */
function only(
  trigger: 'error' | 'volume' | 'staleness',
  config: Partial<TrainingConfig> = {},
  clock?: () => number,
) {
  return new AdaptiveTrainingManager(
    {
      enableErrorTrigger: trigger === 'error',
      enableVolumeTrigger: trigger === 'volume',
      enableStalenessTrigger: trigger === 'staleness',
      ...config,
    },
    { clock, seed: 1 },
  )
}

/** Feeds `count` predictions whose error is `fraction` of the hash space. */
function predict(manager: AdaptiveTrainingManager, count: number, fraction: number): void {
  const error = BigInt(Math.round(fraction * 1e6)) * (S / 1_000_000n)
  for (let i = 0; i < count; i++) manager.onPredictionMade(i, 1000n + error, 1000n)
}

test('defaults are the seed TrainingConfig', (t) => {
  const manager = new AdaptiveTrainingManager()
  t.like(manager.config, {
    enableErrorTrigger: true,
    maxMeanErrorThreshold: 0.05,
    errorTrendThreshold: 0.2,
    enableVolumeTrigger: true,
    newKeysTriggerCount: 1000,
    newKeysTriggerPercent: 0.1,
    enableStalenessTrigger: true,
    maxStalenessHours: 24,
    reservoirSampleSize: 10_000,
  })
  t.deepEqual(manager.config, DEFAULT_TRAINING_CONFIG)
  t.deepEqual(manager.shouldRetrain(), { retrain: false, reason: 'no_trigger' })
  t.deepEqual(manager.shouldRetrain(true), { retrain: true, reason: 'forced' })
})

test('invalid training config names the field', (t) => {
  for (const [field, value] of [
    ['maxMeanErrorThreshold', -1],
    ['newKeysTriggerCount', 1.5],
    ['enableErrorTrigger', 'yes'],
    ['reservoirSampleSize', 0],
    ['maxStalenessHours', Number.NaN],
  ] as const) {
    const error = t.throws(() => new AdaptiveTrainingManager({ [field]: value }), {
      instanceOf: InvalidConfigError,
    })
    t.is(error?.field, `training.${field}`)
    t.is(error?.code, 'ERR_DLHT_INVALID_CONFIG')
  }
  t.throws(() => new AdaptiveTrainingManager({ nope: 1 } as Partial<TrainingConfig>), {
    message: /training\.nope/,
  })
})

test('volume: the count trigger fires at newKeysTriggerCount new keys, not one before', (t) => {
  const manager = only('volume', { newKeysTriggerCount: 50 })
  for (let i = 0; i < 49; i++) manager.onKeyInserted(i)
  t.deepEqual(manager.shouldRetrain(), { retrain: false, reason: 'no_trigger' })
  manager.onKeyInserted(49)
  t.deepEqual(manager.shouldRetrain(), { retrain: true, reason: 'new_keys_count' })
  manager.afterTraining(50, 1)
  t.false(manager.shouldRetrain().retrain)
})

test('volume: the percent trigger fires at newKeysTriggerPercent of the training data size', (t) => {
  const manager = only('volume', { newKeysTriggerCount: 1_000_000, newKeysTriggerPercent: 0.1 })
  manager.afterTraining(500, 1)
  manager.onKeysInserted(Float64Array.from({ length: 49 }, (_, i) => i))
  t.false(manager.shouldRetrain().retrain)
  manager.onKeyInserted(49)
  t.deepEqual(manager.shouldRetrain(), { retrain: true, reason: 'new_keys_percent' })
})

test('volume trigger stays quiet when disabled', (t) => {
  const manager = only('error', { newKeysTriggerCount: 1 })
  manager.onKeysInserted([1, 2, 3])
  t.false(manager.shouldRetrain().retrain)
})

test('error: the threshold trigger fires when the mean error exceeds maxMeanErrorThreshold', (t) => {
  const below = only('error', { maxMeanErrorThreshold: 0.05, minErrorSamples: 10, errorWindowSize: 10 })
  below.afterTraining(100, 1)
  predict(below, 10, 0.05)
  t.false(below.shouldRetrain().retrain, 'an error equal to the threshold does not fire')
  const above = only('error', { maxMeanErrorThreshold: 0.05, minErrorSamples: 10, errorWindowSize: 10 })
  above.afterTraining(100, 1)
  predict(above, 10, 0.051)
  t.deepEqual(above.shouldRetrain(), { retrain: true, reason: 'error_threshold' })
})

test('error: no verdict before minErrorSamples predictions', (t) => {
  const manager = only('error', { minErrorSamples: 10, errorWindowSize: 10 })
  predict(manager, 9, 0.5)
  t.false(manager.shouldRetrain().retrain)
  t.is(manager.getMetrics().meanAbsoluteError, null)
  predict(manager, 1, 0.5)
  t.is(manager.shouldRetrain().reason, 'error_threshold')
})

test('error: the trend trigger fires when the error grows by more than errorTrendThreshold', (t) => {
  const config = {
    errorTrendThreshold: 0.2,
    minErrorSamples: 10,
    errorWindowSize: 10,
    maxMeanErrorThreshold: 0.9,
  }
  const steady = only('error', config)
  steady.afterTraining(100, 1)
  predict(steady, 10, 0.01) // baseline
  predict(steady, 10, 0.0119) // +19%: under the threshold
  t.false(steady.shouldRetrain().retrain)
  t.true(Math.abs((steady.getMetrics().baselineError ?? 0) - 0.01) < 1e-6)
  const growing = only('error', config)
  growing.afterTraining(100, 1)
  predict(growing, 10, 0.01)
  predict(growing, 10, 0.0121) // +21%: over it
  t.deepEqual(growing.shouldRetrain(), { retrain: true, reason: 'error_trend' })
})

test('staleness fires at maxStalenessHours on an injected clock, only when keys exist', (t) => {
  let now = 1_000_000
  const manager = only('staleness', { maxStalenessHours: 2 }, () => now)
  now += 3 * HOUR
  t.false(manager.shouldRetrain().retrain, 'an empty manager is never stale')
  manager.onKeyInserted(1)
  manager.afterTraining(1, 1)
  now += 2 * HOUR - 1
  t.false(manager.shouldRetrain().retrain)
  now += 1
  t.deepEqual(manager.shouldRetrain(), { retrain: true, reason: 'staleness' })
  t.is(manager.getMetrics().lastReason, 'staleness')
})

test('getTrainingData: the running reservoir sample, or a sample of given keys, sorted and bounded', (t) => {
  const manager = new AdaptiveTrainingManager({ reservoirSampleSize: 100 }, { seed: 3 })
  manager.onKeysInserted(Float64Array.from({ length: 1000 }, (_, i) => 1000 - i))
  const sample = manager.getTrainingData()
  t.is(sample.length, 100)
  t.true(sample.every((key, i) => i === 0 || sample[i - 1] <= key))
  const given = manager.getTrainingData([5, 3, 4])
  t.deepEqual(Array.from(given), [3, 4, 5])
})

test('afterTraining updates the metrics and resets the counters', (t) => {
  let now = 42
  const manager = new AdaptiveTrainingManager({}, { clock: () => now })
  manager.onKeysInserted([1, 2, 3])
  now = 100
  manager.afterTraining(3, 7, 12.5)
  t.like(manager.getMetrics(), {
    modelVersion: 7,
    trainingDataSize: 3,
    keysSinceTraining: 0,
    totalKeysSeen: 3,
    lastTrainingTime: 100,
    lastTrainingDurationMs: 12.5,
    trainingCount: 1,
    meanAbsoluteError: null,
  })
  t.throws(() => manager.afterTraining(-1, 8), { code: 'ERR_DLHT_INVALID_ARGUMENT' })
})
