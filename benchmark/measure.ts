// Small timing helpers shared by the Node benchmarks: repeat a body, report rates and
// percentiles, and write one results file per benchmark under benchmark/results/.

import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Rate {
  /** Operations per second over the whole run. */
  opsPerSecond: number
  /** Mean nanoseconds per operation. */
  nsPerOp: number
}

/** Runs `body` (which performs `opsPerCall` operations) until `minMs` have passed; returns the best rate of `rounds`. */
export function rate(body: () => void, opsPerCall = 1, { minMs = 200, rounds = 5 } = {}): Rate {
  body() // warm up
  let best = Number.POSITIVE_INFINITY
  for (let round = 0; round < rounds; round++) {
    let calls = 0
    const start = process.hrtime.bigint()
    let elapsed = 0
    while (elapsed < minMs * 1e6) {
      body()
      calls++
      elapsed = Number(process.hrtime.bigint() - start)
    }
    best = Math.min(best, elapsed / (calls * opsPerCall))
  }
  return { opsPerSecond: 1e9 / best, nsPerOp: best }
}

/** Milliseconds of one call of `body`, the median of `runs`. */
export function medianMs(body: () => void, runs = 7): number {
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint()
    body()
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  return percentile(times, 50)
}

/** The p-th percentile (0-100) of samples, nearest rank. */
export function percentile(samples: number[], p: number): number {
  const ordered = samples.slice().sort((a, b) => a - b)
  return ordered[Math.min(ordered.length - 1, Math.max(0, Math.ceil((p / 100) * ordered.length) - 1))]
}

/** Writes `benchmark/results/<name>.json` with the machine it ran on. */
export function writeResults(name: string, results: unknown): string {
  const file = join(dirname(fileURLToPath(import.meta.url)), 'results', `${name}.json`)
  mkdirSync(dirname(file), { recursive: true })
  const os = {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpus: navigator.hardwareConcurrency,
  }
  writeFileSync(
    file,
    `${JSON.stringify({ date: new Date().toISOString(), machine: os, results }, null, 2)}\n`,
  )
  return file
}

export interface Latencies {
  opsPerSecond: number
  p50Ms: number
  p99Ms: number
}

/** Runs `count` operations with `inFlight` of them outstanding at any time; rate and latency percentiles. */
export async function closedLoop(
  count: number,
  inFlight: number,
  operation: (i: number) => Promise<unknown>,
): Promise<Latencies> {
  const latencies: number[] = []
  let next = 0
  const start = performance.now()
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const i = next++
        const began = performance.now()
        await operation(i)
        latencies.push(performance.now() - began)
      }
    }),
  )
  const seconds = (performance.now() - start) / 1000
  return { opsPerSecond: count / seconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) }
}
