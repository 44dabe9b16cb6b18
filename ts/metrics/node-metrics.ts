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
  /** Tombstones of deleted keys kept for the repair horizon. */
  tombstones?: number
  /** Replication of a node on a ring (null on a single node). */
  replication?: ReplicationCounters | null
}

/** What the metrics read of `getStats().replication`. */
interface ReplicationCounters {
  replicationFactor: number
  replicatedRecords: number
  failedSends: number
  fallbackReads: number
  readRepairs: number
  droppedStrays: number
  hints: { held: number; heldBytes: number; delivered: number; dropped: number }
  repair: {
    rounds: number
    lastRoundAt: number | null
    differingBuckets: number
    unreachableReplicas: number
    underReplicated: number
    pushedRecords: number
    pulledRecords: number
    repairBytes: number
  }
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
    tombstones: Gauge
    replicationFactor: Gauge
    replicated: Counter
    failedSends: Counter
    fallbackReads: Counter
    readRepairs: Counter
    droppedStrays: Counter
    hintsHeld: Gauge
    hintBytes: Gauge
    hintsDelivered: Counter
    hintsDropped: Counter
    repairRounds: Counter
    repairLastRound: Gauge
    repairDiffering: Gauge
    repairUnreachable: Gauge
    underReplicated: Gauge
    repairRecords: Counter<'direction'>
    repairBytes: Counter
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
      tombstones: gauge('dlht_tombstones', 'Tombstones of deleted keys kept until the repair horizon'),
      replicationFactor: gauge('dlht_replication_factor', 'Copies the ring keeps of each entry'),
      replicated: counter(
        'dlht_replicated_records_total',
        'Records other replicas stored for writes this peer owns',
      ),
      failedSends: counter(
        'dlht_replica_failed_sends_total',
        'Messages to replicas that failed (their records became hints)',
      ),
      fallbackReads: counter(
        'dlht_fallback_reads_total',
        'Reads answered by replicas because the owner did not answer',
      ),
      readRepairs: counter('dlht_read_repairs_total', 'Records written back to replicas a read found stale'),
      droppedStrays: counter('dlht_dropped_strays_total', 'Copies handed to their owners and dropped here'),
      hintsHeld: gauge('dlht_hints_held', 'Records held for replicas that did not answer (hinted hand-off)'),
      hintBytes: gauge('dlht_hints_held_bytes', 'Value bytes of the records held as hints'),
      hintsDelivered: counter(
        'dlht_hints_delivered_total',
        'Hinted records delivered once their replica answered',
      ),
      hintsDropped: counter('dlht_hints_dropped_total', 'Hinted records dropped by the size or age bound'),
      repairRounds: counter('dlht_repair_rounds_total', 'Anti-entropy rounds run by this peer'),
      repairLastRound: gauge('dlht_repair_last_round_timestamp_seconds', 'When the last repair round ended'),
      repairDiffering: gauge(
        'dlht_repair_differing_buckets',
        'Buckets whose digests differed in the last round',
      ),
      repairUnreachable: gauge(
        'dlht_repair_unreachable_replicas',
        'Replicas that did not answer the last round',
      ),
      underReplicated: gauge(
        'dlht_under_replicated_entries',
        'Entries a replica lacked in the last repair round',
      ),
      repairRecords: counter(
        'dlht_repair_records_total',
        'Records repair pushed to or pulled from replicas',
        ['direction'],
      ),
      repairBytes: counter('dlht_repair_bytes_total', 'Bytes repair shipped'),
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
    metrics.tombstones.set(stats.tombstones ?? 0)
    const replication = stats.replication
    metrics.replicationFactor.set(replication?.replicationFactor ?? 1)
    total(metrics.replicated, replication?.replicatedRecords ?? 0)
    total(metrics.failedSends, replication?.failedSends ?? 0)
    total(metrics.fallbackReads, replication?.fallbackReads ?? 0)
    total(metrics.readRepairs, replication?.readRepairs ?? 0)
    total(metrics.droppedStrays, replication?.droppedStrays ?? 0)
    metrics.hintsHeld.set(replication?.hints.held ?? 0)
    metrics.hintBytes.set(replication?.hints.heldBytes ?? 0)
    total(metrics.hintsDelivered, replication?.hints.delivered ?? 0)
    total(metrics.hintsDropped, replication?.hints.dropped ?? 0)
    const repair = replication?.repair
    total(metrics.repairRounds, repair?.rounds ?? 0)
    metrics.repairLastRound.set((repair?.lastRoundAt ?? 0) / 1000)
    metrics.repairDiffering.set(repair?.differingBuckets ?? 0)
    metrics.repairUnreachable.set(repair?.unreachableReplicas ?? 0)
    metrics.underReplicated.set(repair?.underReplicated ?? 0)
    total(metrics.repairRecords, repair?.pushedRecords ?? 0, { direction: 'pushed' })
    total(metrics.repairRecords, repair?.pulledRecords ?? 0, { direction: 'pulled' })
    total(metrics.repairBytes, repair?.repairBytes ?? 0)
  }
}
