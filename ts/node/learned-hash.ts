// The node's learned hash: user keys (scalars or points) to ring positions, through the key
// encoding (or a space-filling curve) and the current version of the Recursive Model Index.

import { InvalidArgumentError } from '../errors.js'
import { SpaceFillingCurve } from '../learned/curve.js'
import type { Key } from '../learned/keys.js'
import { RecursiveModelIndex, type RmiDict, type RmiOptions } from '../learned/rmi.js'
import { checkNodeKey, compareKeys, keyFamily, type NodeKey } from '../shared/keys.js'
import type { SpatialConfig } from './config.js'

/** A model with the version the ring knows it by. */
export interface LearnedHashDict {
  modelVersion: number
  model: RmiDict
}

/**
 * Maps user keys to positions in [0, hashSpaceSize) in key order. Version 0 is the untrained,
 * order-preserving default mapping; every training installs a new version.
 *
 * @example
 * const position = node.learnedHash.predict(Date.now())
 * const owner = await node.findSuccessor(position)
 */
export class LearnedHash {
  readonly options: Required<RmiOptions>
  /** The curve of point keys, when the node stores points. */
  readonly curve: SpaceFillingCurve | null
  #model: RecursiveModelIndex
  #version = 0
  /** The model this one replaced, kept while entries placed by it may still be on their old owners. */
  #previous: { model: RecursiveModelIndex; version: number } | null = null
  readonly #keyCodeListeners: Array<() => void> = []

  constructor(options: RmiOptions, spatial: SpatialConfig | null = null) {
    this.#model = new RecursiveModelIndex(options)
    this.options = this.#model.options
    this.curve = spatial === null ? null : new SpaceFillingCurve(spatial)
  }

  /** Version of the model in use. */
  get version(): number {
    return this.#version
  }

  get model(): RecursiveModelIndex {
    return this.#model
  }

  /** Dimensions of point keys, undefined for scalar keys. */
  get dims(): number | undefined {
    return this.curve?.dims
  }

  /** The replaced model and its version while a migration runs (see `install`), else null. */
  get previous(): { readonly model: RecursiveModelIndex; readonly version: number } | null {
    return this.#previous
  }

  /** Forgets the replaced model (every entry is where the current one places it). */
  dropPrevious(): void {
    this.#previous = null
  }

  /**
   * Calls `listener` (synchronously, inside `install`) whenever the installed model encodes byte
   * keys differently from the one it replaced: encoded keys kept elsewhere must be encoded again.
   */
  onKeyCodeChange(listener: () => void): void {
    this.#keyCodeListeners.push(listener)
  }

  /**
   * Installs a model as `version` (which must be newer than the current one). With `keepPrevious`
   * the replaced model stays available as `previous` until `dropPrevious()`. When its key code
   * differs, the `onKeyCodeChange` listeners run before this returns.
   */
  install(model: RecursiveModelIndex, version: number, keepPrevious = false): void {
    if (!Number.isSafeInteger(version) || version <= this.#version) {
      throw new InvalidArgumentError(
        `model version must be an integer above ${this.#version}, got ${version}`,
      )
    }
    if (model.options.hashSpaceSize !== this.options.hashSpaceSize) {
      throw new InvalidArgumentError('model hash space differs from the node hash space')
    }
    const recode = !model.sameKeyCode(this.#model)
    this.#previous = keepPrevious ? { model: this.#model, version: this.#version } : null
    this.#model = model
    this.#version = version
    if (recode) for (const listener of this.#keyCodeListeners) listener()
  }

  /**
   * The model's input for a key: its encoding under the current model's key code, or the curve
   * index of a point.
   * @throws InvalidKeyError for keys the node does not store
   */
  encode(key: NodeKey): number {
    checkNodeKey(key, this.dims)
    return this.curve === null
      ? this.#model.encodeKey(key as Key)
      : this.curve.index(key as readonly number[])
  }

  /** Encodes many keys (checked) in one pass, for the current model. */
  encodeMany(keys: readonly NodeKey[]): Float64Array {
    return this.encodeManyFor(this.#model, keys)
  }

  /** Encodes many keys (checked) for `model` (the current one or `previous.model`). */
  encodeManyFor(model: RecursiveModelIndex, keys: readonly NodeKey[]): Float64Array {
    for (const key of keys) checkNodeKey(key, this.dims)
    if (this.curve === null) return model.encodeKeys(keys as Key[])
    const flat = new Float64Array(keys.length * this.curve.dims)
    for (let i = 0; i < keys.length; i++) flat.set(keys[i] as readonly number[], i * this.curve.dims)
    return this.curve.indexMany(flat)
  }

  /** Position of a key. */
  predict(key: NodeKey): bigint {
    return this.#model.predict(this.encode(key))
  }

  /** Position of a key and the model's error bound around it. */
  predictWithError(key: NodeKey): { position: bigint; error: bigint } {
    return this.#model.predictWithError(this.encode(key))
  }

  /**
   * The arc that holds the position of every key in [keyMin, keyMax] (keys of one family).
   * @throws InvalidArgumentError when keyMin > keyMax or the keys are of different families
   */
  predictRange(keyMin: NodeKey, keyMax: NodeKey): { hashMin: bigint; hashMax: bigint } {
    const low = this.encode(keyMin)
    const high = this.encode(keyMax)
    if (keyFamily(keyMin) !== keyFamily(keyMax)) {
      throw new InvalidArgumentError('keyMin and keyMax must be keys of the same family')
    }
    if (compareKeys(keyMin, keyMax) > 0)
      throw new InvalidArgumentError('keyMin must not be greater than keyMax')
    return this.#model.predictRange(low, high)
  }

  /** The current model and its version, JSON-safe. */
  toDict(): LearnedHashDict {
    return { modelVersion: this.#version, model: this.#model.toDict() }
  }
}
