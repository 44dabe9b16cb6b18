// Counts of data-plane calls and their latency histograms, kept in plain arrays: a local get costs a
// few microseconds, so recording one must cost tens of nanoseconds (a prom-client observe costs ~1.5 µs).

/** Latency buckets, in seconds: 10 µs (a local get) to 5 s (a remote call's default deadline). */
export const LATENCY_BUCKETS: readonly number[] = [
  1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1, 5,
]

/** One in this many calls of a sampled series is timed (reading the clock costs ~0.25 µs here). */
export const LOCAL_TIMING_SAMPLE = 16

/** The calls of one operation and kind: every call counted, the timed ones in latency buckets. */
export class CallSeries {
  readonly labels: string
  /** Calls made, timed or not. */
  calls = 0
  /** Timed calls per bucket (not cumulative); the last counts those above every bucket. */
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length + 1)
  timed = 0
  seconds = 0
  /** Time one call in `sampleEvery` (1: every call). */
  readonly sampleEvery: number

  constructor(labels: string, sampleEvery: number) {
    this.labels = labels
    this.sampleEvery = sampleEvery
  }

  /** Counts a call; true when this one is to be timed. */
  count(): boolean {
    return this.calls++ % this.sampleEvery === 0
  }

  /** Records the latency of a timed call. */
  observe(seconds: number): void {
    let bucket = 0
    while (bucket < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[bucket]) bucket++
    this.buckets[bucket]++
    this.timed++
    this.seconds += seconds
  }
}

/** Every series, and their Prometheus text exposition. */
export class DataPlaneCalls {
  readonly #series = new Map<string, CallSeries>()

  /** The series of `operation` and `kind` (made on first use). */
  series(operation: string, kind: 'local' | 'remote'): CallSeries {
    const labels = `operation="${operation}",kind="${kind}"`
    let series = this.#series.get(labels)
    if (series === undefined) {
      series = new CallSeries(labels, kind === 'local' ? LOCAL_TIMING_SAMPLE : 1)
      this.#series.set(labels, series)
    }
    return series
  }

  /** `dlht_data_operations_total` and the `dlht_data_operation_duration_seconds` histogram, as text. */
  exposition(): string {
    const lines = [
      '# HELP dlht_data_operations_total Data-plane calls (put, putMany, get, getMany, delete, deleteMany, scan, extract) by kind: local store or remote peer',
      '# TYPE dlht_data_operations_total counter',
    ]
    for (const series of this.#series.values())
      lines.push(`dlht_data_operations_total{${series.labels}} ${series.calls}`)
    lines.push(
      `# HELP dlht_data_operation_duration_seconds Latency of data-plane calls by operation and kind; remote calls are all timed, local calls one in ${LOCAL_TIMING_SAMPLE}`,
      '# TYPE dlht_data_operation_duration_seconds histogram',
    )
    for (const series of this.#series.values()) {
      let cumulative = 0
      for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
        cumulative += series.buckets[i]
        lines.push(
          `dlht_data_operation_duration_seconds_bucket{${series.labels},le="${LATENCY_BUCKETS[i]}"} ${cumulative}`,
        )
      }
      lines.push(
        `dlht_data_operation_duration_seconds_bucket{${series.labels},le="+Inf"} ${series.timed}`,
        `dlht_data_operation_duration_seconds_sum{${series.labels}} ${series.seconds}`,
        `dlht_data_operation_duration_seconds_count{${series.labels}} ${series.timed}`,
      )
    }
    return `${lines.join('\n')}\n`
  }
}
