// dlht: a distributed learned hash table. The public API of the package.

export {
  CorruptModelError,
  DlhtError,
  InvalidArgumentError,
  InvalidKeyError,
} from './errors.js'
export { type CurveKind, type CurveOptions, SpaceFillingCurve } from './learned/curve.js'
export { encodeKey, encodeKeys, type Key } from './learned/keys.js'
export { DEFAULT_RESERVOIR_CAPACITY, type ReservoirOptions, ReservoirSampler } from './learned/reservoir.js'
export {
  DEFAULT_HASH_SPACE_SIZE,
  type LeafStats,
  type ModelDict,
  type ModelType,
  RecursiveModelIndex,
  type RmiDict,
  type RmiOptions,
  type TrainingStats,
} from './learned/rmi.js'
