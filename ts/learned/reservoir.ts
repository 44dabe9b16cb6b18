// Uniform reservoir sample of a key stream (Rust, Algorithm L): bounded memory, O(1) per key.
// It keeps the seed's 10k-key training sample representative however many keys arrive.

import { callNative, InvalidArgumentError } from '../errors.js'
import { NativeReservoir } from '../native.js'
import { toFloat64Array } from './rmi.js'

/** Options of `new ReservoirSampler`. */
export interface ReservoirOptions {
  /** Sample size. Default 10,000 (the seed's `reservoir_sample_size`). */
  capacity?: number
  /** Seed of the sampler's PRNG, for reproducible samples. Default: random. */
  seed?: number | bigint
}

/** Sample size of a ReservoirSampler given none (the seed's `reservoir_sample_size`). */
export const DEFAULT_RESERVOIR_CAPACITY = 10_000

function randomSeed(): bigint {
  return crypto.getRandomValues(new BigUint64Array(1))[0]
}

function toSeed(seed: number | bigint | undefined): bigint {
  if (seed === undefined) return randomSeed()
  if (typeof seed === 'bigint' && seed >= 0n && seed < 2n ** 64n) return seed
  if (typeof seed === 'number' && Number.isSafeInteger(seed) && seed >= 0) return BigInt(seed)
  throw new InvalidArgumentError(`seed must be a non-negative integer below 2^64, got ${String(seed)}`)
}

/** A uniform random sample of every key inserted so far. */
export class ReservoirSampler {
  #native: NativeReservoir

  constructor(options: ReservoirOptions = {}) {
    const capacity = options.capacity ?? DEFAULT_RESERVOIR_CAPACITY
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > 0xffffffff) {
      throw new InvalidArgumentError(`capacity must be a positive integer, got ${String(capacity)}`)
    }
    const seed = toSeed(options.seed)
    this.#native = callNative(() => new NativeReservoir(capacity, seed))
  }

  /** Offers one key to the sample. */
  insert(key: number): void {
    callNative(() => this.#native.insert(key))
  }

  /** Offers many keys at once; on a bad key nothing is inserted. */
  insertMany(keys: Float64Array | readonly number[]): void {
    const input = toFloat64Array(keys)
    callNative(() => this.#native.insertMany(input))
  }

  /** The sample, sorted ascending: ready for `RecursiveModelIndex.train`. */
  sample(): Float64Array {
    return this.#native.sample()
  }

  /** Keys offered so far. */
  get seen(): number {
    return this.#native.seen
  }

  /** Keys held now (at most `capacity`). */
  get size(): number {
    return this.#native.size
  }

  get capacity(): number {
    return this.#native.capacity
  }

  /** Empties the sample. */
  clear(): void {
    this.#native.clear()
  }
}
