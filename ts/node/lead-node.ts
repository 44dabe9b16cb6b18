// LeadNode: the node an application embeds. It turns keys into ring positions
// with its learned hash, asks its Router who owns them, and runs the owners' data planes.

import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { TypedEventEmitter } from 'main-event'
import { unwrappedRanges } from '../chord/index.js'
import { DlhtError, InvalidArgumentError } from '../errors.js'
import type { RolloutStats } from '../federation/model-rollout.js'
import { KEY_ENCODING_VERSION } from '../learned/keys.js'
import { RecursiveModelIndex } from '../learned/rmi.js'
import type { CallSeries } from '../metrics/data-plane-calls.js'
import { instrumentRouter, observeCall } from '../metrics/instrument-router.js'
import { type MetricsServer, serveMetrics } from '../metrics/metrics-server.js'
import { NodeMetrics } from '../metrics/node-metrics.js'
import { chordRouter, type RouterComponents } from '../overlay/chord-router.js'
import { raceSignal } from '../protocol/service.js'
import type { ReplicationStats } from '../replication/replication.js'
import type { DataPlane, ScanFilter, ScannedRecord } from '../shared/data-plane.js'
import { NotStartedError, StorageMismatchError } from '../shared/errors.js'
import type { NodeKey } from '../shared/keys.js'
import type { RangeSegment, Router, RoutingTableStats, VnodeRef } from '../shared/router.js'
import { originOf } from '../shared/stamp.js'
import { ENTRY_FORMAT_VERSION, LmdbValueStore } from '../storage/lmdb-store.js'
import { MemoryValueStore } from '../storage/memory-store.js'
import type { ValueStore } from '../storage/value-store.js'
import {
  AdaptiveTrainingManager,
  type RetrainReason,
  type TrainingMetrics,
} from '../training/adaptive-training-manager.js'
import { type LeadConfig, type LeadConfigInit, resolveLeadConfig } from './config.js'
import type { LeadNodeEvents } from './events.js'
import { LearnedHash } from './learned-hash.js'
import { LocalRouter } from './local-router.js'
import { ABSENT, LocalStore } from './local-store.js'
import { trainOwnModel } from './local-training.js'
import { type LogLevel, nodeLog } from './node-log.js'
import { RangeEntry } from './range-entry.js'
import { checkLimit, iterateArcs, type RangeIterationOptions } from './range-iterator.js'
import { deserializeValue } from './value-codec.js'
import { toPosition } from './vnodes.js'
import { prepareWrite, prepareWrites, type WriteLimits } from './write-batch.js'

/** How a LeadNode is built besides its configuration (its router). */
export interface LeadNodeInit {
  /** Builds the router; default: the libp2p Chord overlay, or a LocalRouter when `config.network` is false. */
  router?: (components: RouterComponents) => Router
}

/** Options of an operation (put, get, delete, their batches, range queries). */
export interface OperationOptions {
  /**
   * Gives the operation up: its promise rejects with the signal's reason at once and no attempt
   * starts after it. Calls already sent finish in the background, bounded by the call timeout (so
   * a write already sent to its owner may still be stored); range queries stop their lookups.
   */
  signal?: AbortSignal
}

/** Options of `LeadNode.retrainModel`. */
export interface RetrainOptions {
  /** Keys to train on instead of the reservoir sample of inserted keys. */
  sampleKeys?: readonly NodeKey[]
  /** Train even if no trigger fires. */
  force?: boolean
  /**
   * Bounds the wait for a ring still busy with a previous rollout (a running round, migration
   * or vnode rebalance); the default bound is {@link DEFAULT_RETRAIN_WAIT_MS}. When it aborts
   * first, the call fails with RolloutBusyError.
   */
  signal?: AbortSignal
}

/** How long `retrainModel` waits for a busy ring when the caller gives no `signal`. */
export const DEFAULT_RETRAIN_WAIT_MS = 120_000

/** What `LeadNode.retrainModel` did: whether a model was trained and adopted, why, and its cost. */
export interface RetrainResult {
  retrained: boolean
  /** On a ring: peers that contributed a model to the federated round, and model bytes exchanged. */
  contributors?: number
  bytesExchanged?: number
  reason: RetrainReason
  modelVersion: number
  trainingDataSize: number
  /** Time spent training off the main thread. */
  trainingMs: number
  /** Time spent bringing stored entries' positions to the new version (in batches between other work). */
  repositionMs: number
}

export interface VnodeStats extends VnodeRef {
  arcStart: bigint
  keys: number
  bytes: number
}

/** A snapshot of a node, from `LeadNode.getStats()`. */
export interface NodeStats {
  peerId: string
  started: boolean
  storage: string
  keys: number
  /** Bytes of the serialized values stored on this peer. */
  bytes: number
  vnodes: VnodeStats[]
  operations: {
    puts: number
    gets: number
    hits: number
    misses: number
    deletes: number
    rangeQueries: number
    retrains: number
  }
  modelVersion: number
  retraining: boolean
  lastRetrainError: string | null
  training: TrainingMetrics
  /** On a ring: the rollout state, and entries and bytes this peer migrated (null on a single node). */
  rollout: RolloutStats | null
  /** On a ring: replication and repair counters (null on a single node). */
  replication: ReplicationStats | null
  /** Tombstones this peer keeps for deleted keys. */
  tombstones: number
}

type State = 'stopped' | 'starting' | 'started' | 'stopping'

/** Probes of the model's error taken at each trigger check. */
const ERROR_PROBES = 16
const MODEL_META = 'model'
/**
 * Attempts of an operation that meets the ring changing under it: peers on another model version
 * during a rollout, or a lookup that lands on a vnode still joining.
 */
const ROUTING_RETRIES = 10
const RETRYABLE = new Set(['ERR_DLHT_UNKNOWN_MODEL_VERSION', 'ERR_DLHT_LOOKUP_FAILED'])
/**
 * Repeatable operations (reads, and writes that store the same value again) also outlast a peer
 * that stopped or died under them: routed again once the ring has seen it go, they reach the new
 * owner. A delete is not repeated, since its answer says whether the key was there.
 */
const RETRYABLE_IF_REPEATABLE = new Set([
  ...RETRYABLE,
  'ERR_DLHT_PEER_UNAVAILABLE',
  'ERR_DLHT_REPLICAS_UNAVAILABLE',
])
/** Failures of an owner after which a replicated read asks the other replicas at once. */
const FAILOVER = new Set([
  'ERR_DLHT_PEER_UNAVAILABLE',
  'ERR_DLHT_REMOTE_CALL_TIMEOUT',
  'ERR_DLHT_LOOKUP_FAILED',
  'ERR_DLHT_VNODE_UNAVAILABLE',
])
const CONFIG_META = 'config'

/** The items at `indices`; the array itself when the indices are all of it (one owner: the common case). */
function pick<T>(items: readonly T[], indices: number[]): readonly T[] {
  return indices.length === items.length ? items : indices.map((i) => items[i])
}

/** The positions at `indices`, like `pick`. */
function pickPositions(positions: BigUint64Array, indices: number[]): ArrayLike<bigint> {
  return indices.length === positions.length ? positions : indices.map((i) => positions[i])
}

/** Merges sorted, possibly overlapping or touching arcs. */
function mergeArcs(arcs: Array<{ hashMin: bigint; hashMax: bigint }>): Array<[bigint, bigint]> {
  const merged: Array<[bigint, bigint]> = []
  for (const { hashMin, hashMax } of arcs) {
    const last = merged[merged.length - 1]
    if (last !== undefined && hashMin <= last[1] + 1n) {
      if (hashMax > last[1]) last[1] = hashMax
    } else merged.push([hashMin, hashMax])
  }
  return merged
}

/**
 * A dlht node. Start it, then put, get, delete and query; it retrains its learned hash when the
 * training manager's triggers fire. Its events ({@link LeadNodeEvents}) are typed:
 * `node.addEventListener('retrain', (event) => event.detail.modelVersion)`.
 *
 * @example
 * const node = new LeadNode({ numVirtualNodes: 3, branchingFactor: 100 })
 * await node.start()
 * await node.put('mykey', { data: 'value' })
 * await node.get('mykey') // { data: 'value' }
 * await node.stop()
 */
export class LeadNode extends TypedEventEmitter<LeadNodeEvents> {
  readonly config: Readonly<LeadConfig>
  readonly learnedHash: LearnedHash
  readonly #store: LocalStore
  readonly #values: ValueStore
  readonly #router: Router
  /** The only data plane of a single-node ring (this peer's store): no key needs placing to find its owner. */
  readonly #solePlane: DataPlane | null
  /** Series of the reads a single-node ring makes on its store directly (decoding values in place). */
  readonly #localReads: { get: CallSeries; getMany: CallSeries; scan: CallSeries }
  #trainingManager: AdaptiveTrainingManager
  #state: State = 'stopped'
  #transition: Promise<void> = Promise.resolve()
  #retraining: Promise<RetrainResult> | null = null
  /** Aborted by stop(): a retrain waiting for a busy ring gives up. */
  #stopping = new AbortController()
  #lastRetrainError: string | null = null
  #keysSinceCheck = 0
  readonly #operations = { puts: 0, gets: 0, hits: 0, misses: 0, deletes: 0, rangeQueries: 0, retrains: 0 }
  readonly #metrics = new NodeMetrics(this)
  #metricsServer: MetricsServer | null = null
  readonly #log: (level: LogLevel, message: string) => void = nodeLog(this, () => this.peerId)

  /** @throws InvalidConfigError naming the first invalid field */
  constructor(config: LeadConfigInit = {}, init: LeadNodeInit = {}) {
    super()
    this.config = resolveLeadConfig(config)
    const { hashSpaceSize, branchingFactor, modelType, stage1ModelType } = this.config
    this.learnedHash = new LearnedHash(
      { hashSpaceSize, branchingFactor, modelType, stage1ModelType },
      this.config.spatial,
    )
    this.#trainingManager = new AdaptiveTrainingManager(this.config.training, { hashSpaceSize })
    this.#values =
      this.config.dataDir === null
        ? new MemoryValueStore()
        : new LmdbValueStore(this.config.dataDir, this.config.durability)
    this.#store = new LocalStore({
      learnedHash: this.learnedHash,
      values: this.#values,
      maxValueBytes: this.config.maxValueBytes,
      maxKeyBytes: this.config.maxKeyBytes,
      onNewKeys: (encoded) => this.#onNewKeys(encoded),
    })
    const components: RouterComponents = {
      config: this.config,
      store: this.#store,
      learnedHash: this.learnedHash,
      modelAdopted: (model, version) => this.#modelAdopted(model, version),
      log: (message) => this.#log('warn', message),
    }
    const router =
      init.router ??
      (this.config.network
        ? chordRouter()
        : () =>
            new LocalRouter({
              peerId: `local-${randomUUID()}`,
              hashSpaceSize,
              numVirtualNodes: this.config.numVirtualNodes,
              dataPlane: this.#store,
            }))
    this.#router = instrumentRouter(router(components), this.#metrics)
    this.#solePlane =
      this.#router instanceof LocalRouter ? this.#router.dataPlane(this.#router.localVnodes()[0]) : null
    const calls = this.#metrics.calls
    this.#localReads = {
      get: calls.series('get', 'local'),
      getMany: calls.series('getMany', 'local'),
      scan: calls.series('scan', 'local'),
    }
    this.#store.origin = originOf(this.#router.peerId)
  }

  /** The manager that decides when to retrain; replaceable (`node.trainingManager = ...`). */
  get trainingManager(): AdaptiveTrainingManager {
    return this.#trainingManager
  }

  set trainingManager(manager: AdaptiveTrainingManager) {
    if (!(manager instanceof AdaptiveTrainingManager)) {
      throw new InvalidArgumentError('trainingManager must be an AdaptiveTrainingManager')
    }
    if (manager.hashSpaceSize !== this.config.hashSpaceSize) {
      throw new InvalidArgumentError('trainingManager.hashSpaceSize must equal config.hashSpaceSize')
    }
    if (this.#store.size > 0) manager.onKeysInserted(this.#store.encodedKeys())
    this.#trainingManager = manager
  }

  get peerId(): string {
    return this.#router.peerId
  }

  get isStarted(): boolean {
    return this.#state === 'started'
  }

  /** Opens the store (restoring a durable one and its model) and starts the router. Idempotent. */
  start(): Promise<void> {
    return this.#transitionTo(async () => {
      if (this.#state === 'started') return
      this.#state = 'starting'
      this.#stopping = new AbortController()
      try {
        await this.#store.open()
        await this.#restoreModel()
        await this.#router.start()
        if (this.config.metricsPort !== null)
          this.#metricsServer = await serveMetrics(this.#metrics, this.config.ip, this.config.metricsPort)
        this.#state = 'started'
      } catch (err) {
        this.#state = 'stopped'
        await this.#router.stop().catch(() => {})
        await this.#store.close().catch(() => {})
        throw err
      }
    })
  }

  /**
   * Waits for a running retrain, stops the router and closes the store. Idempotent. An in-memory
   * node forgets its entries here; a node with a `dataDir` finds them again at the next start.
   */
  stop(): Promise<void> {
    return this.#transitionTo(async () => {
      if (this.#state !== 'started') return
      this.#state = 'stopping'
      this.#stopping.abort(new NotStartedError('the node is stopping'))
      await this.#retraining?.catch(() => {})
      try {
        await this.#metricsServer?.close()
        this.#metricsServer = null
        await this.#router.stop()
      } finally {
        await this.#store.close()
        this.#state = 'stopped'
      }
    })
  }

  /** Runs start and stop one after the other, whatever the previous one's outcome. */
  #transitionTo(step: () => Promise<void>): Promise<void> {
    const next = this.#transition.then(step, step)
    this.#transition = next.catch(() => {})
    return next
  }

  async #restoreModel(): Promise<void> {
    const expected = JSON.stringify({
      hashSpaceSize: String(this.config.hashSpaceSize),
      spatial: this.config.spatial,
      keyEncoding: KEY_ENCODING_VERSION,
      entryFormat: ENTRY_FORMAT_VERSION,
    })
    const written = this.#values.readMeta(CONFIG_META)
    if (written !== undefined && Buffer.from(written).toString() !== expected) {
      throw new StorageMismatchError(
        `data directory was written with ${Buffer.from(written).toString()}, this node has ${expected}`,
      )
    }
    if (written === undefined) await this.#values.writeMeta(CONFIG_META, Buffer.from(expected))
    const keys = this.#store.encodedKeys()
    if (keys.length > 0) this.#trainingManager.onKeysInserted(keys)
    const saved = this.#values.readMeta(MODEL_META)
    if (saved === undefined || this.learnedHash.version > 0) return
    const version = Buffer.from(saved).readUInt32BE(0)
    const model = RecursiveModelIndex.deserialize(saved.subarray(4))
    this.learnedHash.install(model, version)
    this.#trainingManager.afterTraining(model.numKeys, version)
  }

  get #writeLimits(): WriteLimits {
    const { maxKeyBytes, maxValueBytes } = this.config
    return { maxKeyBytes, maxValueBytes, dims: this.learnedHash.dims }
  }

  #assertStarted(): void {
    if (this.#state !== 'started') throw new NotStartedError(`the node is ${this.#state}`)
  }

  /** The owner's data plane of a key, and the key's position (which remote planes send along). */
  async #owner(key: NodeKey): Promise<{ plane: DataPlane; position: bigint }> {
    const position = this.learnedHash.predict(key)
    if (this.#solePlane !== null) return { plane: this.#solePlane, position }
    return { plane: this.#router.dataPlane(await this.#router.findSuccessor(position)), position }
  }

  /** Stores one value at its owner: after any hold on writes, so that the key is placed by the model then. */
  #putOne(key: NodeKey, value: Uint8Array): Promise<void> {
    const held = this.#router.beforeWrite?.() // No extra turn unless writes are held.
    if (held !== undefined) return held.then(() => this.#putAtOwner(key, value))
    return this.#putAtOwner(key, value)
  }

  #putAtOwner(key: NodeKey, value: Uint8Array): Promise<void> {
    if (this.#solePlane !== null) return this.#solePlane.put({ key, value })
    const position = this.learnedHash.predict(key)
    return this.#router
      .findSuccessor(position)
      .then((owner) => this.#router.dataPlane(owner).put({ key, value }, position))
  }

  /**
   * The bytes of one key, from its owner (remote planes are sent the key's position along), or
   * from its other replicas when the owner does not answer or `readQuorum` asks for more.
   */
  #getOne(key: NodeKey): Promise<Uint8Array | undefined> {
    if (this.#solePlane !== null) return this.#solePlane.get(key)
    const position = this.learnedHash.predict(key)
    const quorum = this.config.readQuorum
    if (quorum > 1 && this.#router.readReplicas !== undefined)
      return this.#router.readReplicas([key], [position], undefined, quorum).then((values) => values[0])
    let owner: string | undefined
    return this.#router
      .findSuccessor(position)
      .then((found) => {
        owner = found.peerId
        return this.#router.dataPlane(found).get(key, position)
      })
      .catch((err: unknown) => this.#fromReplicas(err, [key], [position], owner).then((values) => values[0]))
  }

  /** Reads keys from their other replicas when the error says their owner did not answer; else rethrows. */
  #fromReplicas(
    err: unknown,
    keys: readonly NodeKey[],
    positions: ArrayLike<bigint>,
    skip?: string,
  ): Promise<Array<Uint8Array | undefined>> {
    const router = this.#router
    if (router.readReplicas === undefined || !(err instanceof DlhtError && FAILOVER.has(err.code)))
      return Promise.reject(err)
    // The owner's failure is counted even when the replicas serve the read.
    this.#metrics.error(err)
    return router.readReplicas(keys, positions, skip)
  }

  /** Owners' data planes of many keys, with the indices of the keys each owns, and the keys' positions. */
  async #owners(
    keys: readonly NodeKey[],
  ): Promise<{ groups: Map<DataPlane, number[]>; positions: BigUint64Array }> {
    const positions = this.learnedHash.model.predictMany(this.learnedHash.encodeMany(keys))
    const owners = await this.#router.findSuccessorMany(positions)
    const groups = new Map<DataPlane, number[]>()
    // Owners are a few refs shared by many keys: ask each one's plane once.
    const groupOf = new Map<VnodeRef, number[]>()
    for (let i = 0; i < owners.length; i++) {
      let group = groupOf.get(owners[i])
      if (group === undefined) {
        const plane = this.#router.dataPlane(owners[i])
        group = groups.get(plane) ?? []
        groups.set(plane, group)
        groupOf.set(owners[i], group)
      }
      group.push(i)
    }
    return { groups, positions }
  }

  /**
   * Stores a value under a key (replacing any previous value).
   * @throws InvalidKeyError, ValueNotSerializableError, ValueTooLargeError, NotStartedError
   */
  async put(key: NodeKey, value: unknown, options: OperationOptions = {}): Promise<void> {
    this.#assertStarted()
    const { value: bytes } = prepareWrite(key, value, this.#writeLimits)
    await this.#routed({ repeatable: true, signal: options.signal }, () => this.#putOne(key, bytes))
    this.#operations.puts++
  }

  /**
   * Stores many entries. Every key and value is checked before any entry leaves this node, so a
   * batch rejected for its input stores nothing.
   * @throws InvalidKeyError, ValueNotSerializableError, ValueTooLargeError, NotStartedError
   */
  async putMany(
    entries: Iterable<readonly [NodeKey, unknown]>,
    options: OperationOptions = {},
  ): Promise<void> {
    this.#assertStarted()
    const records = prepareWrites(entries, this.#writeLimits)
    await this.#routed({ repeatable: true, signal: options.signal }, async () => {
      if (this.#solePlane !== null) return this.#solePlane.putMany(records)
      const held = this.#router.beforeWrite?.() // No extra turn unless writes are held.
      if (held !== undefined) await held
      const { groups, positions } = await this.#owners(records.map((record) => record.key))
      await Promise.all(
        Array.from(groups, ([plane, indices]) =>
          plane.putMany(pick(records, indices), pickPositions(positions, indices)),
        ),
      )
    })
    this.#operations.puts += records.length
  }

  /** The value stored under `key`, or undefined. */
  async get<V = unknown>(key: NodeKey, options: OperationOptions = {}): Promise<V | undefined> {
    this.#assertStarted()
    if (this.#solePlane !== null) {
      const store = this.#store
      const value = await this.#routed({ signal: options.signal }, () =>
        observeCall(this.#localReads.get, async () => store.decode(key)),
      )
      this.#countGets(value === ABSENT ? 0 : 1, 1)
      return value === ABSENT ? undefined : (value as V)
    }
    const bytes = await this.#routed({ repeatable: true, signal: options.signal }, () => this.#getOne(key))
    this.#countGets(bytes === undefined ? 0 : 1, 1)
    return bytes === undefined ? undefined : (deserializeValue(bytes) as V)
  }

  /** Values of many keys, in order (undefined where absent). */
  async getMany<V = unknown>(
    keys: readonly NodeKey[],
    options: OperationOptions = {},
  ): Promise<Array<V | undefined>> {
    this.#assertStarted()
    if (this.#solePlane !== null) {
      const store = this.#store
      const { values, hits } = await this.#routed({ signal: options.signal }, () =>
        observeCall(this.#localReads.getMany, async () => store.decodeMany(keys)),
      )
      this.#countGets(hits, keys.length)
      return values as Array<V | undefined>
    }
    const found = new Array<Uint8Array | undefined>(keys.length)
    await this.#routed({ repeatable: true, signal: options.signal }, async () => {
      const quorum = this.config.readQuorum
      if (quorum > 1 && this.#router.readReplicas !== undefined) {
        const positions = this.learnedHash.model.predictMany(this.learnedHash.encodeMany(keys))
        const values = await this.#router.readReplicas(keys, positions, undefined, quorum)
        for (let i = 0; i < keys.length; i++) found[i] = values[i]
        return
      }
      const { groups, positions } = await this.#owners(keys)
      await Promise.all(
        Array.from(groups, async ([plane, indices]) => {
          const groupKeys = pick(keys, indices)
          const groupPositions = pickPositions(positions, indices)
          const values = await plane
            .getMany(groupKeys, groupPositions)
            .catch((err: unknown) => this.#fromReplicas(err, groupKeys, groupPositions))
          for (let j = 0; j < indices.length; j++) found[indices[j]] = values[j]
        }),
      )
    })
    let hits = 0
    const values = new Array<V | undefined>(keys.length).fill(undefined)
    for (let i = 0; i < keys.length; i++) {
      const bytes = found[i]
      if (bytes !== undefined) {
        values[i] = deserializeValue(bytes) as V
        hits++
      }
    }
    this.#countGets(hits, keys.length)
    return values
  }

  /**
   * Runs a routed operation again when the ring changed under it: a peer was on another model
   * version (a rollout was committing; this node has caught up since), a lookup met a vnode
   * still joining, or (`repeatable` operations only) the owner's peer was gone. Routing again, a
   * moment later, reaches the right owners. A `signal` that aborts rejects it at once and starts
   * no further attempt.
   */
  #routed<T>(
    { repeatable = false, signal }: { repeatable?: boolean; signal?: AbortSignal },
    operation: () => Promise<T>,
  ): Promise<T> {
    let first: Promise<T>
    try {
      signal?.throwIfAborted()
      first = operation()
    } catch (err) {
      first = Promise.reject(err)
    }
    const retryable = repeatable ? RETRYABLE_IF_REPEATABLE : RETRYABLE
    const routed = first.catch((err: unknown) => this.#routedAgain(operation, err, retryable, signal))
    if (signal === undefined) return routed
    routed.catch(() => {}) // Once given up, its failure is no one's to handle.
    return raceSignal(routed, signal)
  }

  /** The attempts after the first of `#routed`, which failed with `err`. */
  async #routedAgain<T>(
    operation: () => Promise<T>,
    err: unknown,
    retryable: Set<string>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      this.#metrics.error(err)
      if (!(err instanceof DlhtError && retryable.has(err.code)) || attempt >= ROUTING_RETRIES) throw err
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt))
      signal?.throwIfAborted()
      try {
        return await operation()
      } catch (next) {
        err = next
      }
    }
  }

  #countGets(hits: number, gets: number): void {
    this.#operations.gets += gets
    this.#operations.hits += hits
    this.#operations.misses += gets - hits
  }

  /** Removes a key; true when it was present. */
  async delete(key: NodeKey, options: OperationOptions = {}): Promise<boolean> {
    this.#assertStarted()
    const deleted = await this.#routed({ signal: options.signal }, async () => {
      const held = this.#router.beforeWrite?.() // No extra turn unless writes are held.
      if (held !== undefined) await held
      const { plane, position } = await this.#owner(key)
      return plane.delete(key, position)
    })
    this.#operations.deletes++
    return deleted
  }

  /**
   * Entries whose position lies in [hashMin, hashMax] (inclusive), in ring order starting at
   * hashMin. A Chord ring wraps: when hashMin > hashMax the range runs from hashMin to the end of
   * the ring and on from 0 to hashMax.
   */
  async rangeQuery<V = unknown>(
    hashMin: bigint | number,
    hashMax: bigint | number,
    options: OperationOptions = {},
  ): Promise<Array<RangeEntry<V>>> {
    this.#assertStarted()
    const size = this.config.hashSpaceSize
    const arcs = unwrappedRanges(
      toPosition(hashMin, size, 'hashMin'),
      toPosition(hashMax, size, 'hashMax'),
      size,
    )
    return this.#query<V>(arcs, {}, options.signal)
  }

  /**
   * Entries whose key lies in [keyMin, keyMax] (keys of one family: numbers and bigints, or
   * strings and byte arrays), exactly; only the arc the model predicts for the range is scanned.
   */
  async rangeQueryKeys<V = unknown>(
    keyMin: NodeKey,
    keyMax: NodeKey,
    options: OperationOptions = {},
  ): Promise<Array<RangeEntry<V>>> {
    this.#assertStarted()
    if (this.learnedHash.curve !== null)
      throw new InvalidArgumentError('use rangeQueryBox on a node of point keys')
    const { hashMin, hashMax } = this.learnedHash.predictRange(keyMin, keyMax)
    return this.#query<V>([[hashMin, hashMax]], { keyRange: { min: keyMin, max: keyMax } }, options.signal)
  }

  /**
   * Point entries inside the box (inclusive in every dimension): the box is decomposed into
   * space-filling-curve intervals, only their arcs are scanned, and points are filtered exactly.
   */
  async rangeQueryBox<V = unknown>(
    box: { min: readonly number[]; max: readonly number[] },
    options: OperationOptions = {},
  ): Promise<Array<RangeEntry<V>>> {
    this.#assertStarted()
    const curve = this.learnedHash.curve
    if (curve === null)
      throw new InvalidArgumentError('rangeQueryBox needs a node configured with spatial bounds')
    if (typeof box !== 'object' || box === null) throw new InvalidArgumentError('box must be { min, max }')
    const intervals = curve.decomposeBox(box.min, box.max)
    for (let d = 0; d < curve.dims; d++) {
      if (box.min[d] > box.max[d])
        throw new InvalidArgumentError(`box.min[${d}] is greater than box.max[${d}]`)
    }
    const model = this.learnedHash.model
    const arcs = mergeArcs(intervals.map(([low, high]) => model.predictRange(low, high)))
    return this.#query<V>(arcs, { box: { min: [...box.min], max: [...box.max] } }, options.signal)
  }

  async #query<V>(
    arcs: Array<[bigint, bigint]>,
    filter: ScanFilter,
    signal: AbortSignal | undefined,
  ): Promise<Array<RangeEntry<V>>> {
    if (this.#solePlane !== null) return this.#queryStore<V>(arcs, filter, signal)
    const scanned: ScannedRecord[][] = []
    for (const [hashMin, hashMax] of arcs) {
      const segments = await this.#router.coveringSegments(hashMin, hashMax, { signal })
      const pieces = this.#byPeer(segments)
      scanned.push(
        ...(await this.#routed({ signal }, () =>
          Promise.all(
            pieces.map((piece) =>
              piece.plane
                .scan(piece.hashMin, piece.hashMax, filter)
                .catch((err: unknown) => this.#scanFromReplicas(err, piece, filter)),
            ),
          ),
        )),
      )
    }
    this.#operations.rangeQueries++
    const entries: Array<RangeEntry<V>> = []
    for (const records of scanned) for (const record of records) entries.push(new RangeEntry<V>(record))
    return entries
  }

  /** `#query` on a single-node ring: this peer's store scanned directly, values decoded when read. */
  async #queryStore<V>(
    arcs: Array<[bigint, bigint]>,
    filter: ScanFilter,
    signal: AbortSignal | undefined,
  ): Promise<Array<RangeEntry<V>>> {
    const store = this.#store
    let entries: Array<RangeEntry<V>> | null = null
    for (const [hashMin, hashMax] of arcs) {
      const found = await this.#routed({ signal }, () =>
        observeCall(this.#localReads.scan, async () => store.scanEntries<V>(hashMin, hashMax, filter)),
      )
      if (entries === null) entries = found
      else for (const entry of found) entries.push(entry)
    }
    this.#operations.rangeQueries++
    return entries ?? []
  }

  /**
   * The entries of `rangeQuery(hashMin, hashMax)` as an async iterator: owners are asked one piece
   * (one peer's part) at a time as entries are read, and none further once `limit` were given.
   */
  iterateRange<V = unknown>(
    hashMin: bigint | number,
    hashMax: bigint | number,
    options: RangeIterationOptions = {},
  ): AsyncGenerator<RangeEntry<V>, void, undefined> {
    this.#assertStarted()
    const size = this.config.hashSpaceSize
    const arcs = unwrappedRanges(
      toPosition(hashMin, size, 'hashMin'),
      toPosition(hashMax, size, 'hashMax'),
      size,
    )
    return this.#iterate<V>(arcs, {}, options)
  }

  /** The entries of `rangeQueryKeys(keyMin, keyMax)` as an async iterator, as `iterateRange` gives them. */
  iterateRangeKeys<V = unknown>(
    keyMin: NodeKey,
    keyMax: NodeKey,
    options: RangeIterationOptions = {},
  ): AsyncGenerator<RangeEntry<V>, void, undefined> {
    this.#assertStarted()
    if (this.learnedHash.curve !== null)
      throw new InvalidArgumentError('use rangeQueryBox on a node of point keys')
    const { hashMin, hashMax } = this.learnedHash.predictRange(keyMin, keyMax)
    return this.#iterate<V>([[hashMin, hashMax]], { keyRange: { min: keyMin, max: keyMax } }, options)
  }

  #iterate<V>(arcs: Array<[bigint, bigint]>, filter: ScanFilter, options: RangeIterationOptions) {
    checkLimit(options.limit ?? Number.POSITIVE_INFINITY)
    this.#operations.rangeQueries++
    return iterateArcs<V>(
      arcs,
      async (from, to, signal) => {
        const [piece] = this.#byPeer(await this.#router.coveringSegments(from, to, { signal }))
        return {
          hashMax: piece.hashMax,
          scan: () => this.#routed({ signal }, () => piece.plane.scan(piece.hashMin, piece.hashMax, filter)),
        }
      },
      options,
    )
  }

  /** Scans a piece of a range on its other replicas when the error says its owner did not answer; else rethrows. */
  #scanFromReplicas(
    err: unknown,
    piece: { peerId: string; hashMin: bigint; hashMax: bigint },
    filter: ScanFilter,
  ): Promise<ScannedRecord[]> {
    const router = this.#router
    if (router.scanReplicas === undefined || !(err instanceof DlhtError && FAILOVER.has(err.code)))
      return Promise.reject(err)
    this.#metrics.error(err)
    return router.scanReplicas(piece.hashMin, piece.hashMax, filter, piece.peerId)
  }

  /** Joins consecutive segments owned by one peer, so each peer is asked once per contiguous piece. */
  #byPeer(
    segments: RangeSegment[],
  ): Array<{ plane: DataPlane; peerId: string; hashMin: bigint; hashMax: bigint }> {
    const pieces: Array<{ plane: DataPlane; peerId: string; hashMin: bigint; hashMax: bigint }> = []
    for (const { owner, hashMin, hashMax } of segments) {
      const last = pieces[pieces.length - 1]
      if (last !== undefined && last.peerId === owner.peerId) last.hashMax = hashMax
      else pieces.push({ plane: this.#router.dataPlane(owner), peerId: owner.peerId, hashMin, hashMax })
    }
    return pieces
  }

  /** The vnode that owns a ring position (e.g. `learnedHash.predict(timestamp)`). */
  async findSuccessor(position: bigint | number): Promise<VnodeRef> {
    this.#assertStarted()
    return this.#router.findSuccessor(toPosition(position, this.config.hashSpaceSize))
  }

  #onNewKeys(encoded: Float64Array): void {
    this.#trainingManager.onKeysInserted(encoded)
    this.#keysSinceCheck += encoded.length
    if (this.#keysSinceCheck < this.config.modelUpdateThreshold) return
    this.#keysSinceCheck = 0
    for (const probe of this.#store.probePredictions(ERROR_PROBES)) {
      this.#trainingManager.onPredictionMade(probe.encoded, probe.predicted, probe.actual)
    }
    if (!this.config.autoRetrain || this.#retraining !== null || this.#state !== 'started') return
    if (!this.#trainingManager.shouldRetrain().retrain) return
    this.#retrainInTurn({}, null).catch((err: unknown) => {
      // Another peer's round is running: the ring retrains anyway, and this trigger fires again if needed.
      if (err instanceof DlhtError && err.code === 'ERR_DLHT_ROLLOUT_BUSY') return
      this.#lastRetrainError = (err as Error).message
      this.safeDispatchEvent('error', { detail: err as Error })
    })
  }

  /**
   * Retrains the learned hash when a trigger fires (or `force`): trains a new model off the main
   * thread on the reservoir sample (or `sampleKeys`), installs it as the next version, then brings
   * stored entries' positions up to date in batches. Gets and puts keep being served throughout.
   * On a ring busy with a previous rollout, the call joins a round not yet committed, or waits
   * for the migration or rebalance to end and then runs its own.
   * @throws RolloutBusyError when the ring is still busy once `options.signal` (by default
   *   {@link DEFAULT_RETRAIN_WAIT_MS}) aborts; NotStartedError when the node stops meanwhile
   */
  async retrainModel(options: RetrainOptions = {}): Promise<RetrainResult> {
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal))
      throw new InvalidArgumentError('retrainModel: signal must be an AbortSignal')
    const signal = AbortSignal.any([
      options.signal ?? AbortSignal.timeout(DEFAULT_RETRAIN_WAIT_MS),
      this.#stopping.signal,
    ])
    return this.#retrainInTurn(options, signal)
  }

  /**
   * Runs one retrain after any other on this node. `waitSignal` bounds the wait for a ring busy
   * with a previous rollout; null refuses a busy ring at once (an automatic trigger fires again).
   */
  async #retrainInTurn(options: RetrainOptions, waitSignal: AbortSignal | null): Promise<RetrainResult> {
    this.#assertStarted()
    while (this.#retraining !== null) await this.#retraining.catch(() => {})
    this.#assertStarted()
    const retraining = this.#retrain(options, waitSignal ?? undefined)
    this.#retraining = retraining
    try {
      return await retraining
    } finally {
      this.#retraining = null
    }
  }

  async #retrain(
    { sampleKeys, force = false }: RetrainOptions,
    waitSignal: AbortSignal | undefined,
  ): Promise<RetrainResult> {
    const { retrain, reason } = this.#trainingManager.shouldRetrain(force)
    const result: RetrainResult = {
      retrained: false,
      reason,
      modelVersion: this.learnedHash.version,
      trainingDataSize: 0,
      trainingMs: 0,
      repositionMs: 0,
    }
    if (!retrain) return result
    if (this.#router.retrainCluster !== undefined) {
      // On a ring every peer must route by the same model: train across the ring and roll out.
      const outcome = await this.#router.retrainCluster(sampleKeys, waitSignal)
      if (outcome === null) return result
      Object.assign(result, {
        retrained: true,
        modelVersion: outcome.modelVersion,
        trainingDataSize: outcome.trainingDataSize,
        trainingMs: outcome.roundMs,
        contributors: outcome.contributors,
        bytesExchanged: outcome.bytesExchanged,
      })
      return result
    }
    const started = performance.now()
    const own = await trainOwnModel(this.learnedHash, this.#store, sampleKeys, () =>
      this.#trainingManager.getTrainingData(),
    )
    if (own === null) return result
    const { model, trainingDataSize } = own
    const trained = performance.now()
    const version = this.learnedHash.version + 1
    this.learnedHash.install(model, version)
    await this.#modelAdopted(model, version, trained - started, trainingDataSize)
    await this.#store.reposition()
    Object.assign(result, {
      retrained: true,
      modelVersion: version,
      trainingDataSize,
      trainingMs: trained - started,
      repositionMs: performance.now() - trained,
    })
    return result
  }

  /** Bookkeeping of a newly installed model: training metrics, the durable copy, the 'retrain' event. */
  async #modelAdopted(
    model: RecursiveModelIndex,
    version: number,
    trainingMs: number | null = null,
    dataSize = model.numKeys,
  ): Promise<void> {
    this.#trainingManager.afterTraining(dataSize, version, trainingMs)
    const header = Buffer.alloc(4)
    header.writeUInt32BE(version)
    await this.#values.writeMeta(MODEL_META, Buffer.concat([header, model.serialize()]))
    this.#operations.retrains++
    this.#log('info', `adopted model version ${version} (${dataSize} keys)`)
    this.safeDispatchEvent('retrain', { detail: { modelVersion: version, trainingDataSize: dataSize } })
  }

  /** Keys, bytes, per-vnode accounting, operation counters and training metrics (O(keys) for the vnode counts). */
  getStats(): NodeStats {
    const routing = this.#router.getRoutingTableStats()
    const vnodes = this.#state === 'started' ? routing.vnodes : []
    return {
      peerId: this.peerId,
      started: this.#state === 'started',
      storage: this.#values.kind,
      keys: this.#store.size,
      bytes: this.#store.bytes,
      vnodes: vnodes.map((vnode) => ({ ...vnode, ...this.#measureArc(vnode.arcStart, vnode.id) })),
      operations: { ...this.#operations },
      modelVersion: this.learnedHash.version,
      retraining: this.#retraining !== null,
      lastRetrainError: this.#lastRetrainError,
      training: this.#trainingManager.getMetrics(),
      rollout: (routing.rollout as RolloutStats | undefined) ?? null,
      replication: (routing.replication as ReplicationStats | undefined) ?? null,
      tombstones: this.#store.tombstones,
    }
  }

  /** Keys and bytes in the arc (arcStart, id], which wraps when arcStart >= id. */
  #measureArc(arcStart: bigint, id: bigint): { keys: number; bytes: number } {
    const size = this.config.hashSpaceSize
    let keys = 0
    let bytes = 0
    const from = arcStart + 1n === size ? 0n : arcStart + 1n
    for (const [hashMin, hashMax] of unwrappedRanges(from, id, size)) {
      const measured = this.#store.measure(hashMin, hashMax)
      keys += measured.keys
      bytes += measured.bytes
    }
    return { keys, bytes }
  }

  /** Prometheus text exposition of this node's `dlht_*` metrics (what `metricsPort` serves at /metrics). */
  metrics(): Promise<string> {
    return this.#metrics.text()
  }

  /** Where `metricsPort` serves the metrics ("http://ip:port/metrics") while started; null otherwise. */
  get metricsUrl(): string | null {
    return this.#metricsServer?.url ?? null
  }

  /** The keys whose values this peer stores itself, as owner or replica, in ring order (O(keys)). */
  storedKeys(): NodeKey[] {
    this.#assertStarted()
    return this.#store.keys()
  }

  /** The router's view of the ring: this peer's vnodes and their arcs, and router details. */
  getRoutingTableStats(): RoutingTableStats {
    return this.#router.getRoutingTableStats()
  }
}
