// Prometheus metrics of one LeadNode (prom-client, a registry per node): data-plane calls and their
// latency by kind, errors by code, and a snapshot of the node's stats taken at each scrape.

import { Counter, Gauge, Registry } from 'prom-client'
import type { RolloutState, RolloutStats } from '../federation/model-rollout.js'
import type { RoutingTableStats } from '../shared/router.js'
import { DataPlaneCalls } from './data-plane-calls.js'

/** The part of a node's stats (LeadNode's `getStats()`) the metrics read at each scrape. */
export interface StatsSnapshot {
  started: boolean
  keys: number
  bytes: number
  vnodes: ReadonlyArray<{ vnodeId: number; keys: number; bytes: number }>
  /** Operations counted by kind; `retrains` is a metric of its own. */
  operations: Readonly<Record<string, number>> & { retrains: number }
  modelVersion: number
  retraining: boolean
  rollout: Pick<RolloutStats, 'state' | 'migratingPeers' | 'migratedEntries' | 'migratedBytes'> | null
}

/** What the metrics read at each scrape (a LeadNode), and whose 'error' events they count. */
export interface MetricsSource extends EventTarget {
  getStats(): StatsSnapshot
  getRoutingTableStats(): RoutingTableStats
}

/** Overlay counters a Chord router reports in `getRoutingTableStats().overlay`. */
interface OverlayCounters {
  lookups?: number
  lookupHops?: number
  cacheHits?: number
}

const ROLLOUT_STATES: readonly RolloutState[] = ['idle', 'prepared', 'migrating', 'rebalancing']

/** The error code of a failure: a DlhtError's `code`, else its name. */
function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : ((err as Error | null)?.name ?? 'unknown')
}

/**
 * The metrics of one node, named `dlht_*`, each with its `# HELP`. Counters of calls are kept as they
 * happen; the rest is read from `getStats()` and `getRoutingTableStats()` when `text()` is asked.
 */
export class NodeMetrics {
  readonly registry = new Registry()
  /** Data-plane calls and their latency, recorded by the instrumented router. */
  readonly calls = new DataPlaneCalls()
  readonly #source: MetricsSource
  readonly #errors: Counter<'code'>
  readonly #snapshot: {
    operations: Counter<'operation'>
    keys: Gauge
    bytes: Gauge
    vnodeKeys: Gauge<'vnode'>
    vnodeBytes: Gauge<'vnode'>
    modelVersion: Gauge
    retrains: Counter
    retraining: Gauge
    rolloutState: Gauge<'state'>
    migratingPeers: Gauge
    migratedEntries: Counter
    migratedBytes: Counter
    lookups: Counter
    lookupHops: Counter
    cacheHits: Counter
  }

  constructor(source: MetricsSource) {
    this.#source = source
    const registers = [this.registry]
    this.#errors = new Counter({
      name: 'dlht_errors_total',
      help: 'Failed attempts of operations (those retried included) and background failures (error events), by error code',
      labelNames: ['code'],
      registers,
    })
    const gauge = (name: string, help: string, labelNames: string[] = []) =>
      new Gauge({ name, help, labelNames, registers })
    const counter = (name: string, help: string, labelNames: string[] = []) =>
      new Counter({ name, help, labelNames, registers })
    this.#snapshot = {
      operations: counter(
        'dlht_node_operations_total',
        'Operations asked of this node (puts, gets, hits, misses, deletes, rangeQueries)',
        ['operation'],
      ),
      keys: gauge('dlht_keys', 'Entries stored on this peer'),
      bytes: gauge('dlht_bytes', 'Bytes of the serialized values stored on this peer'),
      vnodeKeys: gauge('dlht_vnode_keys', 'Entries in the arc of each vnode of this peer', ['vnode']),
      vnodeBytes: gauge('dlht_vnode_bytes', 'Value bytes in the arc of each vnode of this peer', ['vnode']),
      modelVersion: gauge('dlht_model_version', 'Version of the learned model this peer routes by'),
      retrains: counter('dlht_retrains_total', 'Model versions this peer adopted'),
      retraining: gauge('dlht_retraining', '1 while a retrain runs on this peer'),
      rolloutState: gauge('dlht_rollout_state', '1 for the rollout state this peer is in', ['state']),
      migratingPeers: gauge('dlht_rollout_migrating_peers', 'Peers still moving entries of the last rollout'),
      migratedEntries: counter('dlht_rollout_migrated_entries_total', 'Entries this peer sent to new owners'),
      migratedBytes: counter('dlht_rollout_migrated_bytes_total', 'Value bytes this peer sent to new owners'),
      lookups: counter('dlht_lookups_total', 'Owner lookups that left the routing cache'),
      lookupHops: counter('dlht_lookup_hops_total', 'Remote hops of owner lookups'),
      cacheHits: counter('dlht_routing_cache_hits_total', 'Owner lookups answered by the routing cache'),
    }
    source.addEventListener('error', (event) => this.error((event as CustomEvent).detail))
  }

  /** Counts one failure by its error code. */
  error(err: unknown): void {
    this.#errors.inc({ code: codeOf(err) })
  }

  /** The Prometheus text exposition of every metric, the stats read now. */
  async text(): Promise<string> {
    this.#refresh()
    return (await this.registry.metrics()) + this.calls.exposition()
  }

  /** The exposition's content type (for an HTTP answer). */
  get contentType(): string {
    return this.registry.contentType
  }

  #refresh(): void {
    const stats = this.#source.getStats()
    const metrics = this.#snapshot
    // Totals kept by the node itself: the counter is set to the node's count.
    const total = (metric: Counter<string>, value: number, labels?: Record<string, string>) => {
      if (labels === undefined) {
        metric.reset()
        metric.inc(value)
      } else {
        metric.remove(labels)
        metric.inc(labels, value)
      }
    }
    for (const [operation, count] of Object.entries(stats.operations)) {
      if (operation !== 'retrains') total(metrics.operations, count, { operation })
    }
    metrics.keys.set(stats.keys)
    metrics.bytes.set(stats.bytes)
    metrics.vnodeKeys.reset()
    metrics.vnodeBytes.reset()
    for (const vnode of stats.vnodes) {
      metrics.vnodeKeys.set({ vnode: String(vnode.vnodeId) }, vnode.keys)
      metrics.vnodeBytes.set({ vnode: String(vnode.vnodeId) }, vnode.bytes)
    }
    metrics.modelVersion.set(stats.modelVersion)
    total(metrics.retrains, stats.operations.retrains)
    metrics.retraining.set(stats.retraining ? 1 : 0)
    const rollout = stats.rollout
    for (const state of ROLLOUT_STATES) metrics.rolloutState.set({ state }, rollout?.state === state ? 1 : 0)
    metrics.migratingPeers.set(rollout?.migratingPeers ?? 0)
    total(metrics.migratedEntries, rollout?.migratedEntries ?? 0)
    total(metrics.migratedBytes, rollout?.migratedBytes ?? 0)
    const overlay = (stats.started ? this.#source.getRoutingTableStats().overlay : undefined) as
      | OverlayCounters
      | undefined
    total(metrics.lookups, overlay?.lookups ?? 0)
    total(metrics.lookupHops, overlay?.lookupHops ?? 0)
    total(metrics.cacheHits, overlay?.cacheHits ?? 0)
  }
}
