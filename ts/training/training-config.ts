// TrainingConfig: when the learned model should be retrained (error, volume and staleness
// triggers), with defaults and validation that names the offending field.

import { InvalidConfigError } from '../shared/errors.js'

/** Triggers of automatic retraining. */
export interface TrainingConfig {
  /** Retrain when the model's mean error is too high or growing. Default true. */
  enableErrorTrigger: boolean
  /** Mean absolute prediction error, as a fraction of the hash space, that triggers a retrain. Default 0.05. */
  maxMeanErrorThreshold: number
  /** Relative growth of the mean error since the last training that triggers a retrain (0.2 = +20%). Default 0.2. */
  errorTrendThreshold: number
  /** Retrain after many new keys. Default true. */
  enableVolumeTrigger: boolean
  /** New keys since the last training that trigger a retrain. Default 1000. */
  newKeysTriggerCount: number
  /** New keys, as a fraction of the last training's data size, that trigger a retrain. Default 0.1. */
  newKeysTriggerPercent: number
  /** Retrain a model that has grown old. Default true. */
  enableStalenessTrigger: boolean
  /** Age of the model, in hours, that triggers a retrain (when keys exist). Default 24. */
  maxStalenessHours: number
  /** Size of the reservoir sample the model is trained on. Default 10,000. */
  reservoirSampleSize: number
  /** Number of recent predictions whose mean error is tracked. Default 1000. */
  errorWindowSize: number
  /** Predictions needed (since the last training) before the error triggers may fire. Default 100. */
  minErrorSamples: number
}

/** The default training triggers, used for every field a TrainingConfig leaves out. */
export const DEFAULT_TRAINING_CONFIG: Readonly<TrainingConfig> = Object.freeze({
  enableErrorTrigger: true,
  maxMeanErrorThreshold: 0.05,
  errorTrendThreshold: 0.2,
  enableVolumeTrigger: true,
  newKeysTriggerCount: 1000,
  newKeysTriggerPercent: 0.1,
  enableStalenessTrigger: true,
  maxStalenessHours: 24,
  reservoirSampleSize: 10_000,
  errorWindowSize: 1000,
  minErrorSamples: 100,
})

type Check = (value: unknown) => string | undefined

const boolean: Check = (value) => (typeof value === 'boolean' ? undefined : 'must be a boolean')
const positive: Check = (value) =>
  typeof value === 'number' && Number.isFinite(value) && value > 0 ? undefined : 'must be a positive number'
const positiveInteger: Check = (value) =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0
    ? undefined
    : 'must be a positive integer'

/** `check`, then at most `max` (named `maxText` in the message). */
const atMost =
  (check: Check, max: number, maxText = String(max)): Check =>
  (value) =>
    check(value) ?? ((value as number) > max ? `must be at most ${maxText}` : undefined)

/** Largest error window: the window is one Float64Array of this many predictions (8 MB). */
export const MAX_ERROR_WINDOW = 1_000_000

const CHECKS: Record<keyof TrainingConfig, Check> = {
  enableErrorTrigger: boolean,
  maxMeanErrorThreshold: atMost(positive, 1),
  errorTrendThreshold: positive,
  enableVolumeTrigger: boolean,
  newKeysTriggerCount: positiveInteger,
  newKeysTriggerPercent: positive,
  enableStalenessTrigger: boolean,
  maxStalenessHours: positive,
  reservoirSampleSize: atMost(positiveInteger, 0xffffffff, '2^32 - 1'),
  errorWindowSize: atMost(positiveInteger, MAX_ERROR_WINDOW),
  minErrorSamples: positiveInteger,
}

/**
 * Fills in defaults and validates every field.
 * @throws InvalidConfigError naming the first invalid or unknown field (as `training.<field>`)
 */
export function resolveTrainingConfig(init: Partial<TrainingConfig> = {}): Readonly<TrainingConfig> {
  if (typeof init !== 'object' || init === null || Array.isArray(init))
    throw new InvalidConfigError('training', 'must be an object')
  for (const field of Object.keys(init)) {
    if (!(field in CHECKS)) throw new InvalidConfigError(`training.${field}`, 'is not a TrainingConfig field')
  }
  const resolved = { ...DEFAULT_TRAINING_CONFIG }
  for (const field of Object.keys(CHECKS) as Array<keyof TrainingConfig>) {
    const value = init[field] ?? DEFAULT_TRAINING_CONFIG[field]
    const problem = CHECKS[field](value)
    if (problem) throw new InvalidConfigError(`training.${field}`, `${problem}, got ${String(value)}`)
    ;(resolved as Record<string, unknown>)[field] = value
  }
  if (resolved.minErrorSamples > resolved.errorWindowSize) {
    throw new InvalidConfigError('training.minErrorSamples', 'must not exceed training.errorWindowSize')
  }
  return Object.freeze(resolved)
}
