// The two-stage Recursive Model Index: keys to positions in [0, hashSpaceSize), in key order.
// A thin facade over the Rust model: defaults, input checks that need JavaScript types, typed errors.

import { CorruptModelError, callNative, DlhtError, InvalidArgumentError, InvalidKeyError } from '../errors.js'
import { federatedAverage, type ModelParts, NativeRmi, type RmiParts, type RootParts } from '../native.js'
import { encodeKey, encodeKeys, type Key, packByteKeys } from './keys.js'

/** The model of an RMI stage: a line, or a cubic polynomial. */
export type ModelType = 'linear' | 'cubic'

/** Options of a model; every field has the seed's default. */
export interface RmiOptions {
  /** Number of leaf models (stage 2). Default 100. */
  branchingFactor?: number
  /** Model type of the leaves. Default 'linear'. */
  modelType?: ModelType
  /** Model type of the root (stage 1). Default 'linear'. */
  stage1ModelType?: ModelType
  /** Size of the position space; positions lie in [0, hashSpaceSize). Default 2^62. */
  hashSpaceSize?: bigint
}

/** Prediction errors are in positions (units of the hash space). */
export interface LeafStats {
  numKeys: number
  meanError: number
  maxError: number
}

export interface TrainingStats extends LeafStats {
  /** Size of the serialized model in bytes. */
  modelBytes: number
  leaves: LeafStats[]
}

/**
 * The root's parameters: it reads keys on a linear or a logarithmic (float-bit) scale, its
 * polynomial maps them to one of `cells` cells, and leaf `i` takes the cells from `leafStarts[i]` on.
 */
export interface RootDict {
  modelType: ModelType
  keyScale: 'linear' | 'log'
  keyMin: number
  keyMax: number
  coefficients: number[]
  cells: number
  leafStarts: number[]
}

/** A leaf's parameters, as stored in a dict. */
export interface ModelDict {
  modelType: ModelType
  keyLo: number
  keyHi: number
  coefficients: number[]
  positionLo: number
  positionHi: number
  maxError: number
  meanError: number
  numKeys: number
}

/** JSON-safe form of a model (`JSON.stringify` works on it; the hash space is a decimal string). */
export interface RmiDict {
  /** 3; dicts of version 2 (no key code) and 1 (no cells either: one per leaf) are still read. */
  formatVersion: 3
  config: Required<Omit<RmiOptions, 'hashSpaceSize'>> & { hashSpaceSize: string }
  numKeys: number
  keyRange: [number, number]
  root: RootDict
  leaves: ModelDict[]
  /** The key code byte keys are encoded with (its bytes in base64), when the model learned one. */
  keyCode?: string
}

/** One node's share of a federated round: its local model and its weight (its key count). */
export interface ModelContribution {
  /** The local model, or its `serialize()` bytes as received from a peer. */
  model: RecursiveModelIndex | Uint8Array
  weight: number
}

/** Options of `RecursiveModelIndex.federatedAverage`: the global model's shape, and its training set. */
export interface FederatedAverageOptions extends RmiOptions {
  /** Keys drawn from the averaged CDF (its quantiles) to fit the global model on. Default 32768. */
  syntheticKeys?: number
}

/** Size of the ring positions are predicted in, when no `hashSpaceSize` is given: 2^62. */
export const DEFAULT_HASH_SPACE_SIZE = 2n ** 62n
const DEFAULT_SYNTHETIC_KEYS = 32_768
const DICT_FORMAT_VERSION = 3

function withDefaults(options: RmiOptions = {}): Required<RmiOptions> {
  if (typeof options !== 'object' || options === null)
    throw new InvalidArgumentError('options must be an object')
  const resolved = {
    branchingFactor: options.branchingFactor ?? 100,
    modelType: options.modelType ?? 'linear',
    stage1ModelType: options.stage1ModelType ?? 'linear',
    hashSpaceSize: options.hashSpaceSize ?? DEFAULT_HASH_SPACE_SIZE,
  }
  if (typeof resolved.branchingFactor !== 'number') {
    throw new InvalidArgumentError(`branchingFactor must be a number, got ${typeof resolved.branchingFactor}`)
  }
  for (const field of ['modelType', 'stage1ModelType'] as const) {
    if (typeof resolved[field] !== 'string') {
      throw new InvalidArgumentError(`${field} must be 'linear' or 'cubic', got ${typeof resolved[field]}`)
    }
  }
  if (typeof resolved.hashSpaceSize !== 'bigint') {
    throw new InvalidArgumentError(`hashSpaceSize must be a bigint, got ${typeof resolved.hashSpaceSize}`)
  }
  return resolved
}

export function toFloat64Array(keys: Float64Array | readonly number[], what = 'keys'): Float64Array {
  if (keys instanceof Float64Array) return keys
  if (!Array.isArray(keys))
    throw new InvalidArgumentError(`${what} must be a Float64Array or an array of numbers`)
  for (let i = 0; i < keys.length; i++) {
    if (typeof keys[i] !== 'number') {
      throw new InvalidKeyError(`${what}[${i}] must be a number, got ${typeof keys[i]}`)
    }
  }
  return Float64Array.from(keys)
}

function checkKey(key: number, what = 'key'): void {
  if (typeof key !== 'number' || !Number.isFinite(key)) {
    throw new InvalidKeyError(
      `${what} must be a finite number, got ${typeof key === 'number' ? key : typeof key}`,
    )
  }
}

function checkNumbers(model: object, fields: readonly string[], where: string): void {
  for (const field of fields) {
    if (typeof (model as Record<string, unknown>)[field] !== 'number') {
      throw new CorruptModelError(`${where}.${field} must be a number`)
    }
  }
}

function checkStage(model: unknown, where: string, numbers: readonly string[]): void {
  if (typeof model !== 'object' || model === null) throw new CorruptModelError(`${where} is not an object`)
  const stage = model as { modelType?: unknown; coefficients?: unknown }
  if (typeof stage.modelType !== 'string') throw new CorruptModelError(`${where}.modelType must be a string`)
  if (!Array.isArray(stage.coefficients) || !stage.coefficients.every((c) => typeof c === 'number')) {
    throw new CorruptModelError(`${where}.coefficients must be an array of numbers`)
  }
  checkNumbers(model, numbers, where)
}

const LEAF_NUMBERS = [
  'keyLo',
  'keyHi',
  'positionLo',
  'positionHi',
  'maxError',
  'meanError',
  'numKeys',
] as const

function leafFromDict(dict: unknown, where: string): ModelParts {
  checkStage(dict, where, LEAF_NUMBERS)
  return { ...(dict as ModelDict) }
}

function rootFromDict(dict: unknown, formatVersion: number, branchingFactor: number): RootParts {
  checkStage(dict, 'root', ['keyMin', 'keyMax'])
  const root = dict as RootDict
  if (typeof root.keyScale !== 'string') throw new CorruptModelError('root.keyScale must be a string')
  // Version 1 roots picked the leaf directly: one cell per leaf.
  if (formatVersion === 1) {
    return {
      ...root,
      cells: branchingFactor,
      leafStarts: Array.from({ length: branchingFactor }, (_, i) => i),
    }
  }
  checkNumbers(root, ['cells'], 'root')
  if (
    !Array.isArray(root.leafStarts) ||
    !root.leafStarts.every((start) => Number.isInteger(start) && start >= 0)
  ) {
    throw new CorruptModelError('root.leafStarts must be an array of cell indices')
  }
  return { ...root }
}

/** The key code's bytes from a dict's base64 string (dicts before version 3 have none). */
function keyCodeFromDict(keyCode: unknown, formatVersion: number): Uint8Array | undefined {
  if (keyCode === undefined) return undefined
  if (formatVersion < 3 || typeof keyCode !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(keyCode)) {
    throw new CorruptModelError('keyCode must be a base64 string (in a dict of version 3)')
  }
  return Buffer.from(keyCode, 'base64')
}

/**
 * A two-stage learned index (Kraska et al.): the root model picks a leaf, the leaf predicts
 * where the key's rank falls in [0, hashSpaceSize). Positions are monotone in the key, so a
 * key range maps to one contiguous arc of the ring.
 *
 * @example
 * const rmi = new RecursiveModelIndex({ branchingFactor: 100 })
 * rmi.train(new Float64Array([1, 2, 3, 5, 8, 13]))
 * rmi.predict(5) // a bigint near 3/6 of 2^62
 */
export class RecursiveModelIndex {
  readonly options: Required<RmiOptions>
  #native: NativeRmi

  constructor(options?: RmiOptions) {
    this.options = withDefaults(options)
    this.#native = callNative(() => new NativeRmi(this.options))
  }

  /** Wraps a native model; the throwaway untrained model it replaces costs a few microseconds. */
  static #wrap(model: NativeRmi): RecursiveModelIndex {
    const options = model.options()
    const rmi = new RecursiveModelIndex({
      ...options,
      modelType: options.modelType as ModelType,
      stage1ModelType: options.stage1ModelType as ModelType,
    })
    rmi.#native = model
    return rmi
  }

  /** True once the model has been trained (before that, a fixed order-preserving mapping is used). */
  get isTrained(): boolean {
    return this.#native.isTrained
  }

  /** Number of keys the model was trained on. */
  get numKeys(): number {
    return this.#native.numKeys
  }

  /** True when byte keys are encoded by a key code this model learned (else by the fixed text code). */
  get hasKeyCode(): boolean {
    return this.#native.hasKeyCode
  }

  /** Whether this model and `other` encode byte keys alike (numbers always encode alike). */
  sameKeyCode(other: RecursiveModelIndex): boolean {
    return this.#native.sameKeyCode(other.#native)
  }

  /** This model, encoding byte keys by `other`'s key code; its keys must have been encoded so. */
  withKeyCodeOf(other: RecursiveModelIndex): RecursiveModelIndex {
    return RecursiveModelIndex.#wrap(callNative(() => this.#native.withKeyCodeOf(other.#native)))
  }

  /**
   * A user key as this model's input: numbers as themselves, bigints by value, strings and byte
   * arrays by the model's key code (or the fixed text code). Order-preserving within each family.
   * @throws InvalidKeyError for any other type, NaN or ±Infinity
   */
  encodeKey(key: Key): number {
    return encodeKey(key, this.#native)
  }

  /** `encodeKey` of many keys at once. @throws InvalidKeyError naming the first bad key */
  encodeKeys(keys: readonly Key[]): Float64Array {
    return encodeKeys(keys, this.#native)
  }

  /**
   * Trains a new model off the main thread on user keys in any order. Strings and byte arrays get
   * a key code learned from them: an order-preserving code that spends the f64's 53 bits on what
   * the keys do not share (a common `user:` or `https://host/` prefix costs nothing), carried in
   * the model's bytes and dict. Encode keys for it with `encodeKeys`.
   * @throws InvalidKeyError for a key of no supported type; InvalidArgumentError for no keys
   */
  static async trainOnKeys(keys: readonly Key[], options?: RmiOptions): Promise<RecursiveModelIndex> {
    if (!Array.isArray(keys)) throw new InvalidArgumentError('keys must be an array')
    const numbers: number[] = []
    const byteKeys: Array<string | Uint8Array> = []
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      if (typeof key === 'string' || key instanceof Uint8Array) byteKeys.push(key)
      else {
        try {
          numbers.push(encodeKey(key))
        } catch (err) {
          throw new InvalidKeyError(`keys[${i}]: ${(err as Error).message}`, { cause: err })
        }
      }
    }
    const resolved = withDefaults(options)
    const { data, offsets } = packByteKeys(byteKeys)
    const trained = await callNative(() =>
      NativeRmi.trainOnKeys(resolved, Float64Array.from(numbers), data, offsets),
    )
    return RecursiveModelIndex.#wrap(trained)
  }

  /** Trains on keys sorted ascending (duplicates allowed), on the calling thread. */
  train(sortedKeys: Float64Array | readonly number[]): void {
    const keys = toFloat64Array(sortedKeys)
    callNative(() => this.#native.train(keys))
  }

  /** Trains off the main thread, then swaps the new model in; predictions use the old one until then. */
  async trainAsync(sortedKeys: Float64Array | readonly number[]): Promise<void> {
    const trained = await RecursiveModelIndex.trainNew(sortedKeys, this.options)
    this.#native = trained.#native
  }

  /** Trains a new model off the main thread (libuv pool); no existing model is touched. */
  static async trainNew(
    sortedKeys: Float64Array | readonly number[],
    options?: RmiOptions,
  ): Promise<RecursiveModelIndex> {
    const untrained = new RecursiveModelIndex(options)
    const keys = toFloat64Array(sortedKeys)
    return RecursiveModelIndex.#wrap(await callNative(() => untrained.#native.trainNew(keys)))
  }

  /**
   * FedAvg of local models, off the main thread: the global CDF is the weight-averaged CDF of the
   * contributions (`F(x) = Σ wᵢ·predictᵢ(x)/H / Σ wᵢ`, which holds however their key ranges overlap),
   * and the result is a model of `options` fitted to `syntheticKeys` quantiles of it. No raw key is
   * needed: each node ships its model and key count.
   * @throws InvalidArgumentError for no contribution of positive weight, a negative or non-finite
   *   weight, an untrained model; CorruptModelError for contribution bytes that are no valid model
   */
  static async federatedAverage(
    contributions: readonly ModelContribution[],
    options: FederatedAverageOptions = {},
  ): Promise<RecursiveModelIndex> {
    if (!Array.isArray(contributions))
      throw new InvalidArgumentError('contributions must be an array of { model, weight }')
    const { syntheticKeys = DEFAULT_SYNTHETIC_KEYS, ...modelOptions } = options
    if (!Number.isInteger(syntheticKeys) || syntheticKeys < 2) {
      throw new InvalidArgumentError(`syntheticKeys must be an integer of at least 2, got ${syntheticKeys}`)
    }
    const models = contributions.map(({ model }, i) => {
      if (model instanceof RecursiveModelIndex) return model.serialize()
      if (model instanceof Uint8Array) return model
      throw new InvalidArgumentError(`contributions[${i}].model must be a RecursiveModelIndex or its bytes`)
    })
    const weights = Float64Array.from(contributions, ({ weight }) => weight)
    const resolved = withDefaults(modelOptions)
    return RecursiveModelIndex.#wrap(
      await callNative(() => federatedAverage(models, weights, resolved, syntheticKeys)),
    )
  }

  /** Position of a key in [0, hashSpaceSize). */
  predict(key: number): bigint {
    checkKey(key)
    return this.#native.predict(key)
  }

  /** Position and an error bound: for every trained key the true scaled rank is within `position ± error`. */
  predictWithError(key: number): { position: bigint; error: bigint } {
    checkKey(key)
    return this.#native.predictWithError(key)
  }

  /** The arc [hashMin, hashMax] that holds the position of every key in [keyMin, keyMax]. */
  predictRange(keyMin: number, keyMax: number): { hashMin: bigint; hashMax: bigint } {
    checkKey(keyMin, 'keyMin')
    checkKey(keyMax, 'keyMax')
    return callNative(() => this.#native.predictRange(keyMin, keyMax))
  }

  /** Positions of many keys in one call; the input is read in place (no copy) when it is a Float64Array. */
  predictMany(keys: Float64Array | readonly number[], out?: BigUint64Array): BigUint64Array {
    const input = toFloat64Array(keys)
    const positions = out ?? new BigUint64Array(input.length)
    callNative(() => this.#native.predictInto(input, positions))
    return positions
  }

  /** The leaf (stage-2 model) that serves a key. */
  bucketOf(key: number): number {
    checkKey(key)
    return this.#native.bucketOf(key)
  }

  /** Refits one leaf on the given keys and positions, keeping positions monotone across leaves. */
  updateLeaf(
    bucketId: number,
    sortedKeys: Float64Array | readonly number[],
    positions: BigUint64Array | readonly bigint[],
  ): void {
    if (!Number.isInteger(bucketId) || bucketId < 0) {
      throw new InvalidArgumentError(`bucketId must be a non-negative integer, got ${bucketId}`)
    }
    const keys = toFloat64Array(sortedKeys)
    const targets = positions instanceof BigUint64Array ? positions : BigUint64Array.from(positions)
    callNative(() => this.#native.updateLeaf(bucketId, keys, targets))
  }

  /** Training statistics: overall and per-leaf mean/max error, and model size. */
  stats(): TrainingStats {
    return this.#native.stats()
  }

  /** The model as a JSON-safe object. */
  toDict(): RmiDict {
    const parts = this.#native.toParts()
    return {
      formatVersion: DICT_FORMAT_VERSION,
      config: {
        branchingFactor: parts.options.branchingFactor,
        modelType: parts.options.modelType as ModelType,
        stage1ModelType: parts.options.stage1ModelType as ModelType,
        hashSpaceSize: parts.options.hashSpaceSize.toString(),
      },
      numKeys: parts.numKeys,
      keyRange: [parts.keyMin, parts.keyMax],
      root: {
        ...parts.root,
        modelType: parts.root.modelType as ModelType,
        keyScale: parts.root.keyScale as RootDict['keyScale'],
      },
      leaves: parts.leaves.map((leaf) => ({ ...leaf, modelType: leaf.modelType as ModelType })),
      ...(parts.keyCode ? { keyCode: Buffer.from(parts.keyCode).toString('base64') } : {}),
    }
  }

  /**
   * Rebuilds a model from `toDict()` output, validating it fully.
   * @throws CorruptModelError when the dict is malformed or describes an invalid model
   */
  static fromDict(dict: RmiDict): RecursiveModelIndex {
    if (typeof dict !== 'object' || dict === null) throw new CorruptModelError('model dict must be an object')
    const formatVersion: number = dict.formatVersion
    if (formatVersion !== DICT_FORMAT_VERSION && formatVersion !== 2 && formatVersion !== 1) {
      throw new CorruptModelError(
        `unsupported model dict version ${typeof formatVersion === 'number' ? formatVersion : typeof formatVersion}`,
        'ERR_DLHT_UNSUPPORTED_FORMAT_VERSION',
      )
    }
    const { config } = dict
    if (typeof config !== 'object' || config === null || typeof config.hashSpaceSize !== 'string') {
      throw new CorruptModelError('model dict has no valid config')
    }
    if (!/^[0-9]+$/.test(config.hashSpaceSize))
      throw new CorruptModelError('config.hashSpaceSize is not an integer')
    if (!Array.isArray(dict.leaves) || !Array.isArray(dict.keyRange) || typeof dict.numKeys !== 'number') {
      throw new CorruptModelError('model dict needs leaves, keyRange and numKeys')
    }
    const options = withDefaults({ ...config, hashSpaceSize: BigInt(config.hashSpaceSize) })
    const parts: RmiParts = {
      options,
      root: rootFromDict(dict.root, formatVersion, options.branchingFactor),
      leaves: dict.leaves.map((leaf, i) => leafFromDict(leaf, `leaves[${i}]`)),
      numKeys: dict.numKeys,
      keyMin: dict.keyRange[0],
      keyMax: dict.keyRange[1],
      keyCode: keyCodeFromDict(dict.keyCode, formatVersion),
    }
    try {
      return RecursiveModelIndex.#wrap(callNative(() => NativeRmi.fromParts(parts)))
    } catch (err) {
      // The binding refuses fields of the wrong type (a string for a number) with its own error.
      if (err instanceof DlhtError) throw err
      throw new CorruptModelError(
        `model dict has a field of the wrong type: ${(err as Error).message}`,
        undefined,
        {
          cause: err,
        },
      )
    }
  }

  /** Compact binary form: magic, format version, parameters, CRC32. */
  serialize(): Uint8Array {
    return this.#native.serialize()
  }

  /**
   * Reads `serialize()` output back, bit-exactly.
   * @throws CorruptModelError when the bytes are truncated, altered, or of an unknown format version
   */
  static deserialize(bytes: Uint8Array): RecursiveModelIndex {
    if (!(bytes instanceof Uint8Array))
      throw new InvalidArgumentError('serialized model must be a Uint8Array')
    return RecursiveModelIndex.#wrap(callNative(() => NativeRmi.deserialize(bytes)))
  }
}
