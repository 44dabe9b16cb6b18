// Decides when the learned model should be retrained (error, volume and staleness triggers) and
// keeps the reservoir sample it is trained on.

import { InvalidArgumentError } from '../errors.js'
import { ReservoirSampler } from '../learned/reservoir.js'
import { DEFAULT_HASH_SPACE_SIZE, toFloat64Array } from '../learned/rmi.js'
import { resolveTrainingConfig, type TrainingConfig } from './training-config.js'

/** Why a retrain is (or is not) due. */
export type RetrainReason =
  | 'forced'
  | 'error_threshold'
  | 'error_trend'
  | 'new_keys_count'
  | 'new_keys_percent'
  | 'staleness'
  | 'no_trigger'

/** Whether to retrain now, and the trigger that decided it. */
export interface RetrainDecision {
  retrain: boolean
  reason: RetrainReason
}

/** What the manager has observed; errors are fractions of the hash space. */
export interface TrainingMetrics {
  modelVersion: number
  /** Keys the current model was trained on. */
  trainingDataSize: number
  /** Mean absolute prediction error over the recent window (null before `minErrorSamples` predictions). */
  meanAbsoluteError: number | null
  /** Mean error of the first `minErrorSamples` predictions after the last training: the trend's base. */
  baselineError: number | null
  /** Predictions observed since the last training. */
  predictionsSinceTraining: number
  keysSinceTraining: number
  totalKeysSeen: number
  /** Clock time of the last training (ms), null before the first. */
  lastTrainingTime: number | null
  lastTrainingDurationMs: number | null
  /** Reason of the last `shouldRetrain` that answered yes. */
  lastReason: RetrainReason | null
  trainingCount: number
  /** Keys held by the reservoir sample. */
  sampleSize: number
}

/** Options of `new AdaptiveTrainingManager` besides its TrainingConfig. */
export interface AdaptiveTrainingManagerOptions {
  /** Milliseconds since an epoch; default Date.now. Tests inject a fake clock. */
  clock?: () => number
  /** Hash space the predictions are in, to express errors as fractions of it. Default 2^62. */
  hashSpaceSize?: bigint
  /** Seed of the reservoir sampler, for reproducible training. */
  seed?: number | bigint
}

const HOUR_MS = 3_600_000

/**
 * Tracks inserted keys and prediction errors and answers `shouldRetrain`.
 *
 * @example
 * const manager = new AdaptiveTrainingManager({ newKeysTriggerCount: 1000 })
 * manager.onKeyInserted(42)
 * manager.shouldRetrain() // { retrain: false, reason: 'no_trigger' }
 */
export class AdaptiveTrainingManager {
  readonly config: Readonly<TrainingConfig>
  readonly hashSpaceSize: bigint
  readonly #clock: () => number
  readonly #reservoir: ReservoirSampler
  readonly #errors: Float64Array
  #errorCount = 0
  #errorSum = 0
  #baselineSum = 0
  #baseline: number | null = null
  #predictionsSinceTraining = 0
  #modelVersion = 0
  #trainingDataSize = 0
  #keysSinceTraining = 0
  #lastTrainingTime: number | null = null
  #lastTrainingDurationMs: number | null = null
  #lastReason: RetrainReason | null = null
  #trainingCount = 0
  readonly #createdAt: number

  constructor(config: Partial<TrainingConfig> = {}, options: AdaptiveTrainingManagerOptions = {}) {
    this.config = resolveTrainingConfig(config)
    this.hashSpaceSize = options.hashSpaceSize ?? DEFAULT_HASH_SPACE_SIZE
    this.#clock = options.clock ?? Date.now
    this.#reservoir = new ReservoirSampler({ capacity: this.config.reservoirSampleSize, seed: options.seed })
    this.#errors = new Float64Array(this.config.errorWindowSize)
    this.#createdAt = this.#clock()
  }

  /** Records a new key (its encoded number) in the volume counters and the reservoir sample. */
  onKeyInserted(key: number): void {
    this.#reservoir.insert(key)
    this.#keysSinceTraining++
  }

  /** Records many new keys at once. */
  onKeysInserted(keys: Float64Array | readonly number[]): void {
    const input = toFloat64Array(keys)
    this.#reservoir.insertMany(input)
    this.#keysSinceTraining += input.length
  }

  /**
   * Records one prediction: where the model placed `key` and where it belongs (its rank scaled
   * to the hash space). The absolute difference feeds the error triggers.
   */
  onPredictionMade(_key: unknown, predicted: bigint | number, actual: bigint | number): void {
    const error = Math.abs(Number(predicted) - Number(actual)) / Number(this.hashSpaceSize)
    const window = this.#errors.length
    const slot = this.#errorCount % window
    if (this.#errorCount >= window) this.#errorSum -= this.#errors[slot]
    this.#errors[slot] = error
    this.#errorSum += error
    this.#errorCount++
    this.#predictionsSinceTraining++
    if (this.#baseline === null) {
      this.#baselineSum += error
      if (this.#predictionsSinceTraining === this.config.minErrorSamples) {
        this.#baseline = this.#baselineSum / this.config.minErrorSamples
      }
    }
  }

  #meanError(): number | null {
    if (this.#predictionsSinceTraining < this.config.minErrorSamples) return null
    return this.#errorSum / Math.min(this.#errorCount, this.#errors.length)
  }

  /** Whether the model should be retrained now, and why; the first trigger that fires wins. */
  shouldRetrain(force = false): RetrainDecision {
    const reason = force ? 'forced' : this.#firedTrigger()
    if (reason === 'no_trigger') return { retrain: false, reason }
    this.#lastReason = reason
    return { retrain: true, reason }
  }

  #firedTrigger(): RetrainReason {
    const { config } = this
    if (config.enableErrorTrigger) {
      const mean = this.#meanError()
      if (mean !== null && mean > config.maxMeanErrorThreshold) return 'error_threshold'
      if (mean !== null && this.#baseline !== null && this.#baseline > 0) {
        if ((mean - this.#baseline) / this.#baseline > config.errorTrendThreshold) return 'error_trend'
      }
    }
    if (config.enableVolumeTrigger && this.#keysSinceTraining > 0) {
      if (this.#keysSinceTraining >= config.newKeysTriggerCount) return 'new_keys_count'
      if (
        this.#trainingDataSize > 0 &&
        this.#keysSinceTraining >= config.newKeysTriggerPercent * this.#trainingDataSize
      ) {
        return 'new_keys_percent'
      }
    }
    if (config.enableStalenessTrigger && (this.#trainingDataSize > 0 || this.#keysSinceTraining > 0)) {
      const since = this.#lastTrainingTime ?? this.#createdAt
      if (this.#clock() - since >= config.maxStalenessHours * HOUR_MS) return 'staleness'
    }
    return 'no_trigger'
  }

  /**
   * Keys to train on, sorted: a reservoir sample of `allKeys` when given, else the running
   * sample of every key inserted so far.
   */
  getTrainingData(allKeys?: Float64Array | readonly number[]): Float64Array {
    if (allKeys === undefined) return this.#reservoir.sample()
    const sampler = new ReservoirSampler({ capacity: this.config.reservoirSampleSize })
    sampler.insertMany(allKeys)
    return sampler.sample()
  }

  /** Records a finished training: resets the volume and error counters and restarts the staleness clock. */
  afterTraining(dataSize: number, version: number, durationMs: number | null = null): void {
    if (!Number.isSafeInteger(dataSize) || dataSize < 0) {
      throw new InvalidArgumentError(`dataSize must be a non-negative integer, got ${dataSize}`)
    }
    if (!Number.isSafeInteger(version) || version < 0) {
      throw new InvalidArgumentError(`version must be a non-negative integer, got ${version}`)
    }
    this.#trainingDataSize = dataSize
    this.#modelVersion = version
    this.#keysSinceTraining = 0
    this.#lastTrainingTime = this.#clock()
    this.#lastTrainingDurationMs = durationMs
    this.#trainingCount++
    this.#errorCount = 0
    this.#errorSum = 0
    this.#baselineSum = 0
    this.#baseline = null
    this.#predictionsSinceTraining = 0
  }

  /** The model version, training data size, error and counters the triggers look at. */
  getMetrics(): TrainingMetrics {
    return {
      modelVersion: this.#modelVersion,
      trainingDataSize: this.#trainingDataSize,
      meanAbsoluteError: this.#meanError(),
      baselineError: this.#baseline,
      predictionsSinceTraining: this.#predictionsSinceTraining,
      keysSinceTraining: this.#keysSinceTraining,
      totalKeysSeen: this.#reservoir.seen,
      lastTrainingTime: this.#lastTrainingTime,
      lastTrainingDurationMs: this.#lastTrainingDurationMs,
      lastReason: this.#lastReason,
      trainingCount: this.#trainingCount,
      sampleSize: this.#reservoir.size,
    }
  }
}
