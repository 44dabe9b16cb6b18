// Cluster-wide retraining. A federated round: every peer trains on its own keys and sends only its
// model and key count; the coordinator averages them (Rust core). A two-phase rollout: every peer
// validates and holds the model (prepare), then adopts it (commit). Then each peer moves the
// entries it no longer owns to their new owners, in bounded batches, while every peer keeps
// finding them (see MigratingDataPlane).
//
// Agreement on the version: a peer that is sent a request of a newer version it has prepared
// commits at once; one that is sent an older version answers UnknownModelVersionError and the
// sender catches up. So requests are always served under the version their sender routed by.

import { performance } from 'node:perf_hooks'
import { sleep } from '../abortable-sleep.js'
import { CodedError } from '../errors.js'
import { RecursiveModelIndex } from '../learned/rmi.js'
import type { LearnedHash, LearnedHashDict } from '../node/learned-hash.js'
import type { LocalStore } from '../node/local-store.js'
import { PeerUnavailableError } from '../protocol/errors.js'
import { KeySample, type KeySampleAnswer } from '../protocol/key-sample.js'
import {
  Abort,
  type ClusterConfig,
  Commit,
  Contribute,
  type Contribution,
  type MessageCodec,
  type ModelOffer,
  type PeerRef,
  Prepare,
  type PrepareAnswer,
  type PrepareRequest,
  RolloutStatus,
  type RolloutStatusAnswer,
  type RolloutStatusRequest,
} from '../protocol/messages.js'
import type { ScannedRecord } from '../shared/data-plane.js'
import type { NodeKey } from '../shared/keys.js'
import type { ClusterRetrainOutcome } from '../shared/router.js'
import { KEY_SAMPLE_LIMIT, learnRoundKeyCode, sampleByteKeys, trainContribution } from './key-code-round.js'
import {
  ModelRejectedError,
  modelDigest,
  type RejectionReason,
  validateProposal,
} from './model-validation.js'

/**
 * Largest leaf error a proposal may have, as a fraction of the ring: beyond a quarter the model is
 * broken, not merely fitted to skewed keys (its error only costs range-query width, never correctness).
 */
const MAX_ERROR_FRACTION = 0.25
/** Entries moved per migration batch. */
const MIGRATION_BATCH = 2000

/** Status polls in a row a migrating peer may miss before it is taken for gone. */
const UNREACHABLE_POLLS = 5

/** A round could not run: another is being prepared, or the previous one is still migrating. */
export class RolloutBusyError extends CodedError {
  static override readonly code = 'ERR_DLHT_ROLLOUT_BUSY'
}

export type RolloutState = 'idle' | 'prepared' | 'migrating' | 'rebalancing'

/** Largest over mean keys per peer before and after the vnode moves a rebalance made. */
export interface RebalanceOutcome {
  before: number
  after: number
  moves: number
  /** Vnodes on the ring and keys in the profile the plan was made from. */
  vnodes: number
  profiled: number
}

/** Rollout figures of one peer, in `LeadNode.getStats().rollout`. */
export interface RolloutStats {
  modelVersion: number
  state: RolloutState
  /** Rounds this peer coordinated that installed a model, and those that failed. */
  rounds: number
  failedRounds: number
  /** Why the last refused proposal was refused (here or, for a coordinator, at a peer). */
  lastRejection: string | null
  /** Peers (this one included) still moving entries of the last rollout. */
  migratingPeers: number
  /** Entries and value bytes this peer sent to new owners, over every rollout. */
  migratedEntries: number
  migratedBytes: number
  /** Duration of this peer's last finished migration. */
  lastMigrationMs: number | null
  lastMigrationError: string | null
  /** The last rebalance this peer ran after coordinating a round. */
  lastRebalance: RebalanceOutcome | null
  lastRebalanceError: string | null
}

/** What the rollout needs from the router. */
export interface RolloutHost {
  readonly peerId: string
  readonly learnedHash: LearnedHash
  readonly store: LocalStore
  /** This peer as a member of a round. */
  self(): PeerRef
  /** Every peer on the ring, this one included. */
  members(signal: AbortSignal): Promise<PeerRef[]>
  /** A ring-protocol call to another peer. */
  call<Request, Answer>(
    peer: PeerRef,
    codec: MessageCodec<Request, Answer>,
    request: Request,
    signal?: AbortSignal,
  ): Promise<Answer>
  /** Whether one of this peer's vnodes owns the position now. */
  ownsLocally(position: bigint): boolean
  /**
   * Moves vnodes so that every peer carries its share of about `totalKeys` keys; null when the
   * router does not rebalance.
   */
  rebalance?(totalKeys: number, signal: AbortSignal): Promise<RebalanceOutcome>
  /** Stores records at their owners (routed and forwarded); resolves once every owner has them. */
  migrate(records: ScannedRecord[], signal: AbortSignal): Promise<void>
  /** Bookkeeping once a model is adopted (persist it, reset the training manager). */
  adopted(model: RecursiveModelIndex, version: number): Promise<void>
  log(message: string): void
}

interface Prepared {
  offer: ModelOffer
  model: RecursiveModelIndex
  members: PeerRef[]
  coordinator: string
  at: number
}

/** How often a retrain waiting for a busy ring looks again. */
const BUSY_POLL_MS = 50

function busyUntilAborted(signal: AbortSignal, cause?: unknown): RolloutBusyError {
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason)
  return new RolloutBusyError(
    `the ring was still busy with a previous rollout when the wait ended (${reason})`,
    { cause: cause ?? signal.reason },
  )
}

/** One peer's part in cluster-wide retraining: contributor, validator, coordinator and migrator. */
export class ModelRollout {
  readonly #host: RolloutHost
  /** How long a prepared model waits for its commit before another round may replace it. */
  readonly #prepareTtlMs: number
  #prepared: Prepared | null = null
  #decidedWaiters: Array<() => void> = []
  /** Peers still migrating entries of the last adopted model (this one included), by peer id. */
  #migrating = new Map<string, PeerRef>()
  /** Polls in a row that could not reach a migrating peer, by peer id. */
  #unreachable = new Map<string, number>()
  #installedDigest: string | null = null
  #ownMigration: Promise<void> | null = null
  #round: Promise<ClusterRetrainOutcome | null> | null = null
  readonly #running = new AbortController()
  /** Resolved once this peer's vnodes are on the ring: migration needs to know what it owns. */
  readonly #opened: Promise<void>
  #open!: () => void
  readonly #stats = {
    rounds: 0,
    failedRounds: 0,
    lastRejection: null as string | null,
    migratedEntries: 0,
    migratedBytes: 0,
    lastMigrationMs: null as number | null,
    lastMigrationError: null as string | null,
    lastRebalance: null as RebalanceOutcome | null,
    lastRebalanceError: null as string | null,
  }
  #rebalancing: Promise<void> | null = null
  /** Set once this peer prepares to leave: no rebalance starts any more. */
  #leaving = false

  constructor(host: RolloutHost, options: { prepareTtlMs: number }) {
    this.#host = host
    this.#prepareTtlMs = options.prepareTtlMs
    this.#opened = new Promise((resolve) => {
      this.#open = resolve
    })
  }

  /** True while entries placed by the previous model may still be on their old owners. */
  get migrating(): boolean {
    return this.#migrating.size > 0
  }

  /** Whether `peerId` may still hold entries for their previous owner. */
  isMigrating(peerId: string): boolean {
    return this.#migrating.has(peerId)
  }

  /** Whether a model is prepared here, waiting for its commit or abort. */
  get prepared(): boolean {
    return this.#prepared !== null
  }

  get state(): RolloutState {
    if (this.migrating) return 'migrating'
    if (this.#rebalancing !== null) return 'rebalancing'
    return this.#prepared === null ? 'idle' : 'prepared'
  }

  stats(): RolloutStats {
    return {
      modelVersion: this.#host.learnedHash.version,
      state: this.state,
      migratingPeers: this.#migrating.size,
      ...this.#stats,
    }
  }

  /** This peer's status, as it asks others. */
  #statusRequest(): RolloutStatusRequest {
    return {
      modelVersion: this.#host.learnedHash.version,
      peer: this.#host.self(),
      migrating: this.#ownMigration !== null,
    }
  }

  /** Answers a RolloutStatus poll, and watches the asking peer while it migrates under our version. */
  status(request: RolloutStatusRequest): RolloutStatusAnswer {
    if (request.migrating) this.#watch(request.peer, request.modelVersion)
    return {
      modelVersion: this.#host.learnedHash.version,
      migrating: this.#ownMigration !== null,
      watching: [...this.#migrating.values()],
    }
  }

  /** Watches a peer migrating entries of our model version (reads then also ask it). */
  #watch(peer: PeerRef, version: number): void {
    if (peer.peerId === this.#host.peerId || version !== this.#host.learnedHash.version) return
    if (this.#migrating.size === 0) this.#host.store.trackWrites()
    this.#migrating.set(peer.peerId, peer)
  }

  /** The rollout part of this peer's GetConfig answer. */
  config(): Pick<ClusterConfig, 'prepared' | 'previousModel' | 'migrating'> {
    const previous = this.#host.learnedHash.previous
    return {
      prepared: this.#prepared?.offer ?? null,
      previousModel:
        previous === null || previous.version === 0 || !this.migrating
          ? null
          : JSON.stringify({
              modelVersion: previous.version,
              model: previous.model.toDict(),
            } satisfies LearnedHashDict),
      migrating: [...this.#migrating.values()],
    }
  }

  // --- contributor and validator --------------------------------------------------------------

  /**
   * This peer's model, trained on its keys (or on `sampleKeys`) encoded by the round's key code
   * (the model in `keyCode`; null: the fixed text code), and its key count.
   * @throws CorruptModelError when `keyCode` holds no valid model
   */
  async contribution(keyCode: Uint8Array | null, sampleKeys?: readonly NodeKey[]): Promise<Contribution> {
    const code = keyCode === null ? null : RecursiveModelIndex.deserialize(keyCode)
    return trainContribution(this.#host.learnedHash, this.#host.store, code, sampleKeys)
  }

  /** Up to `limit` of this peer's byte keys and their number, for a round's key code. */
  keySample(limit: number): KeySampleAnswer {
    return sampleByteKeys(this.#host.store, Math.min(limit, KEY_SAMPLE_LIMIT))
  }

  /** Phase one: validate the offer and hold it; refusals are logged and answered, never thrown. */
  prepare(request: PrepareRequest): PrepareAnswer {
    const refuse = (reason: RejectionReason | 'busy', message: string): PrepareAnswer => {
      this.#stats.lastRejection = `${reason}: ${message}`
      this.#host.log(
        `refused model version ${request.version} from ${request.coordinator}: ${reason}: ${message}`,
      )
      return { accepted: false, reason, message }
    }
    if (this.#prepared?.offer.digest === request.digest)
      return { accepted: true, reason: null, message: null }
    if (this.migrating || this.#rebalancing !== null)
      return refuse('busy', 'the previous rollout is still migrating entries or moving vnodes')
    if (this.#prepared !== null && performance.now() - this.#prepared.at < this.#prepareTtlMs) {
      return refuse(
        'busy',
        `version ${this.#prepared.offer.version} of ${this.#prepared.coordinator} is being rolled out`,
      )
    }
    let model: RecursiveModelIndex
    try {
      model = validateProposal(request, {
        options: this.#host.learnedHash.options,
        currentVersion: this.#host.learnedHash.version,
        maxErrorFraction: MAX_ERROR_FRACTION,
      })
    } catch (err) {
      if (err instanceof ModelRejectedError) return refuse(err.reason, err.detail)
      throw err
    }
    const members = request.members.some((peer) => peer.peerId === this.#host.peerId)
      ? request.members
      : [...request.members, this.#host.self()]
    this.#prepared = {
      offer: request,
      model,
      members,
      coordinator: request.coordinator,
      at: performance.now(),
    }
    return { accepted: true, reason: null, message: null }
  }

  #clearPrepared(): void {
    this.#prepared = null
    const waiters = this.#decidedWaiters
    this.#decidedWaiters = []
    for (const wake of waiters) wake()
  }

  /**
   * Resolves once no model is prepared here (committed or aborted), or after `timeoutMs`. Writes
   * wait here: a write under the old version accepted after some peer committed could land
   * behind a newer write made under the new one.
   */
  async decided(timeoutMs: number): Promise<void> {
    if (this.#prepared === null) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      this.#decidedWaiters.push(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  /** Drops the prepared model of a failed round. */
  abort(offer: { version: number; digest: string }): void {
    if (this.#prepared?.offer.digest === offer.digest) this.#clearPrepared()
  }

  /**
   * Phase two: adopts the prepared model with this version and digest (idempotent).
   * @throws RolloutBusyError when no such model is prepared here
   */
  commit(offer: { version: number; digest: string }): void {
    if (this.#host.learnedHash.version >= offer.version) return
    const prepared = this.#prepared
    if (
      prepared === null ||
      prepared.offer.version !== offer.version ||
      prepared.offer.digest !== offer.digest
    ) {
      throw new RolloutBusyError(`model version ${offer.version} is not prepared on ${this.#host.peerId}`)
    }
    this.#adopt(prepared.model, offer.version, offer.digest, prepared.members)
  }

  /** Commits the prepared model when it has `version`; true when this peer now uses it. */
  commitPrepared(version: number): boolean {
    const prepared = this.#prepared
    if (prepared === null || prepared.offer.version !== version) return false
    this.commit(prepared.offer)
    return true
  }

  /**
   * Catches up with a peer's configuration: adopts its newer model (or commits the matching
   * prepared one), prepares what it has prepared, and watches the peers it sees migrating.
   */
  catchUp(config: ClusterConfig, source: { peerId: string; multiaddrs: readonly string[] }): void {
    const learnedHash = this.#host.learnedHash
    // The source is watched too: the first poll tells it (and through it every peer) that this
    // one migrates, and drops it if it does not.
    const watched = [...config.migrating, { peerId: source.peerId, multiaddrs: [...source.multiaddrs] }]
    if (config.modelVersion > learnedHash.version && config.model !== null) {
      if (!this.commitPrepared(config.modelVersion)) {
        const dict = JSON.parse(config.model) as LearnedHashDict
        const model = RecursiveModelIndex.fromDict(dict.model)
        const bytes = model.serialize()
        validateProposal(
          { version: dict.modelVersion, digest: modelDigest(bytes), bytes },
          {
            options: learnedHash.options,
            currentVersion: learnedHash.version,
            maxErrorFraction: MAX_ERROR_FRACTION,
          },
        )
        if (config.previousModel !== null && this.#host.store.size === 0) {
          // A joiner with nothing stored routes fallback reads by the ring's previous model.
          const previous = JSON.parse(config.previousModel) as LearnedHashDict
          if (previous.modelVersion > learnedHash.version) {
            learnedHash.install(RecursiveModelIndex.fromDict(previous.model), previous.modelVersion)
          }
        }
        this.#adopt(model, dict.modelVersion, modelDigest(bytes), watched)
      }
    }
    for (const peer of config.migrating) this.#watch(peer, config.modelVersion)
    const offer = config.prepared
    if (offer !== null && offer.version > learnedHash.version && this.#prepared === null && !this.migrating) {
      this.prepare({ ...offer, coordinator: 'catch-up', members: watched.slice(-1) })
    }
  }

  // --- adoption and migration -------------------------------------------------------------------

  #adopt(model: RecursiveModelIndex, version: number, digest: string, members: PeerRef[]): void {
    const { store, learnedHash } = this.#host
    // Before the new model routes anything here, so that every write from now on is remembered.
    store.trackWrites()
    learnedHash.install(model, version, true)
    this.#clearPrepared()
    this.#installedDigest = digest
    this.#migrating = new Map(members.map((peer) => [peer.peerId, peer]))
    this.#migrating.set(this.#host.peerId, this.#host.self())
    this.#host
      .adopted(model, version)
      .catch((err: unknown) => this.#host.log(`could not persist the model: ${err}`))
    const migration = this.#migrateOwn().finally(() => {
      if (this.#ownMigration === migration) this.#ownMigration = null
      this.#migrating.delete(this.#host.peerId)
      this.#finishIfDone()
    })
    this.#ownMigration = migration
  }

  /** Moves every entry this peer no longer owns to its owner, a batch at a time. */
  async #migrateOwn(): Promise<void> {
    const { store } = this.#host
    const signal = this.#running.signal
    await this.#opened
    const started = performance.now()
    await store.reposition()
    const owns = (position: bigint) => this.#host.ownsLocally(position)
    let from: bigint | null = 0n
    let failures = 0
    while (from !== null && !signal.aborted) {
      const since = store.writeCount
      const batch = store.misplaced(from, MIGRATION_BATCH, owns)
      if (batch.records.length > 0) {
        try {
          await this.#host.migrate(batch.records, signal)
        } catch (err) {
          // The owner left or died: wait for the ring to repair, then route the batch again.
          this.#stats.lastMigrationError = (err as Error).message
          if (++failures > 20) {
            this.#host.log(`migration gave up after ${failures} failures: ${(err as Error).message}`)
            return
          }
          await sleep(Math.min(2000, 100 * failures), signal)
          continue
        }
        await store.removeMigrated(batch.records, since, owns)
        this.#stats.migratedEntries += batch.records.length
        for (const record of batch.records) this.#stats.migratedBytes += record.value.byteLength
      }
      from = batch.next
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    this.#stats.lastMigrationMs = performance.now() - started
  }

  #finishIfDone(): void {
    if (this.#migrating.size > 0) return
    this.#host.store.stopTrackingWrites()
    this.#host.learnedHash.dropPrevious()
  }

  /**
   * One round of watching the migration (each stabilization): asks every peer still migrating how
   * far it is, sends the commit again to one that has not adopted the model yet, and ends the
   * migration state when all are done (or gone).
   */
  async poll(signal: AbortSignal): Promise<void> {
    if (this.#prepared !== null && performance.now() - this.#prepared.at > this.#prepareTtlMs * 4) {
      this.#host.log(`dropping model version ${this.#prepared.offer.version}: its commit never came`)
      this.#clearPrepared()
    }
    const version = this.#host.learnedHash.version
    for (const peer of [...this.#migrating.values()]) {
      if (peer.peerId === this.#host.peerId || signal.aborted) continue
      try {
        const status = await this.#host.call(peer, RolloutStatus, this.#statusRequest(), signal)
        this.#unreachable.delete(peer.peerId)
        if (status.modelVersion === version) for (const other of status.watching) this.#watch(other, version)
        if (status.modelVersion < version && this.#installedDigest !== null) {
          await this.#host.call(peer, Commit, { version, digest: this.#installedDigest }, signal)
        } else if (!status.migrating) this.#migrating.delete(peer.peerId)
      } catch (err) {
        // A connection lost for a moment must not end the fallback reads to a peer still
        // holding entries: only one that stays unreachable is taken for gone.
        const failures =
          err instanceof PeerUnavailableError ? (this.#unreachable.get(peer.peerId) ?? 0) + 1 : 0
        if (failures >= UNREACHABLE_POLLS) {
          this.#migrating.delete(peer.peerId)
          this.#unreachable.delete(peer.peerId)
        } else if (failures > 0) this.#unreachable.set(peer.peerId, failures)
      }
    }
    this.#finishIfDone()
  }

  /** Once every peer has migrated, moves vnodes so that each peer carries its share of the keys. */
  async #rebalanceWhenMigrated(totalKeys: number): Promise<void> {
    const signal = this.#running.signal
    while (this.migrating && !signal.aborted && !this.#leaving) await sleep(100, signal)
    if (signal.aborted || this.#leaving) return
    try {
      this.#stats.lastRebalance = (await this.#host.rebalance?.(totalKeys, signal)) ?? null
      this.#stats.lastRebalanceError = null
    } catch (err) {
      this.#stats.lastRebalanceError = (err as Error).message
      this.#host.log(`rebalancing vnodes failed: ${(err as Error).message}`)
    }
  }

  /**
   * Resolves when this peer may leave: no round running and its own migration finished. A
   * rebalance still waiting for other peers to migrate is dropped (a plan would count this peer),
   * one already moving vnodes finishes.
   */
  async settle(): Promise<void> {
    this.#leaving = true
    await this.#round?.catch(() => {})
    await this.#ownMigration
    await this.#rebalancing
  }

  /** The peer's vnodes have joined the ring: migration may start. */
  open(): void {
    this.#open()
  }

  /** Stops migrating (the peer is going away after handing everything over). */
  stop(): void {
    this.#running.abort()
    this.#open()
  }

  // --- coordinator -----------------------------------------------------------------------------

  /**
   * Runs a federated round and rolls its model out; concurrent calls on this peer share one round.
   * Resolves null when no peer has keys to train on.
   * @throws RolloutBusyError when another round or migration is in progress somewhere;
   *   ModelRejectedError when a peer refused the model; PeerUnavailableError and timeouts when a
   *   peer could not take part (the ring then stays on its current version)
   */
  coordinate(sampleKeys?: readonly NodeKey[]): Promise<ClusterRetrainOutcome | null> {
    this.#round ??= this.#runRound(sampleKeys).finally(() => {
      this.#round = null
    })
    return this.#round
  }

  /**
   * Like {@link coordinate}, but a busy ring is waited for rather than refused: the call joins a
   * round that has not committed yet, or waits for the running migration or rebalance and for
   * busy peers, then runs its own round.
   * @throws RolloutBusyError when `signal` aborts while the ring is still busy
   */
  async coordinateWhenFree(
    sampleKeys: readonly NodeKey[] | undefined,
    signal: AbortSignal,
  ): Promise<ClusterRetrainOutcome | null> {
    for (let attempt = 1; ; attempt++) {
      while (this.#round === null && (this.migrating || this.#rebalancing !== null) && !signal.aborted)
        await sleep(BUSY_POLL_MS, signal)
      if (signal.aborted) throw busyUntilAborted(signal)
      try {
        return await this.coordinate(sampleKeys)
      } catch (err) {
        if (!(err instanceof RolloutBusyError)) throw err
        // Another peer is migrating or preparing its own round: it finishes within a few polls.
        await sleep(Math.min(BUSY_POLL_MS * attempt, 1000), signal)
        if (signal.aborted) throw busyUntilAborted(signal, err)
      }
    }
  }

  async #runRound(sampleKeys: readonly NodeKey[] | undefined): Promise<ClusterRetrainOutcome | null> {
    const host = this.#host
    const signal = this.#running.signal
    if (this.migrating || this.#rebalancing !== null)
      throw new RolloutBusyError('the previous rollout is still migrating entries or moving vnodes')
    const started = performance.now()
    const members = await host.members(signal)
    const version = host.learnedHash.version + 1
    const others = members.filter((peer) => peer.peerId !== host.peerId)
    const samples = [
      sampleByteKeys(host.store, KEY_SAMPLE_LIMIT, sampleKeys),
      ...(await Promise.all(
        others.map((peer) => host.call(peer, KeySample, { version, limit: KEY_SAMPLE_LIMIT }, signal)),
      )),
    ]
    const codeModel = await learnRoundKeyCode(samples, host.learnedHash.options)
    const keyCode = codeModel?.serialize() ?? null
    const contributions = [
      await trainContribution(host.learnedHash, host.store, codeModel, sampleKeys),
      ...(await Promise.all(others.map((peer) => host.call(peer, Contribute, { version, keyCode }, signal)))),
    ].filter((contribution) => contribution.model !== null && contribution.weight > 0)
    if (contributions.length === 0) return null
    let bytesExchanged = contributions.reduce((sum, { model }) => sum + (model?.byteLength ?? 0), 0)
    bytesExchanged += samples.reduce(
      (sum, { keys }) =>
        sum +
        keys.reduce(
          (bytes, key) => bytes + (typeof key === 'string' ? Buffer.byteLength(key) : key.length),
          0,
        ),
      0,
    )
    bytesExchanged += (keyCode?.byteLength ?? 0) * others.length
    const model =
      contributions.length === 1
        ? RecursiveModelIndex.deserialize(contributions[0].model as Uint8Array)
        : await RecursiveModelIndex.federatedAverage(
            contributions.map(({ model, weight }) => ({ model: model as Uint8Array, weight })),
            host.learnedHash.options,
          )
    const bytes = model.serialize()
    const offer: PrepareRequest = {
      version,
      digest: modelDigest(bytes),
      bytes,
      coordinator: host.peerId,
      members,
    }
    bytesExchanged += bytes.byteLength * others.length
    try {
      const answers = [
        this.prepare(offer),
        ...(await Promise.all(others.map((peer) => host.call(peer, Prepare, offer, signal)))),
      ]
      const refusal = answers.find((answer) => !answer.accepted)
      if (refusal !== undefined) {
        const message = `${refusal.reason}: ${refusal.message}`
        this.#stats.lastRejection = message
        if (refusal.reason === 'busy') throw new RolloutBusyError(message)
        throw new ModelRejectedError(refusal.reason as RejectionReason, refusal.message ?? '')
      }
    } catch (err) {
      this.#stats.failedRounds++
      this.abort(offer)
      await Promise.allSettled(others.map((peer) => host.call(peer, Abort, offer)))
      throw err
    }
    this.commit(offer)
    await Promise.allSettled(others.map((peer) => host.call(peer, Commit, offer)))
    this.#stats.rounds++
    const totalKeys = contributions.reduce((sum, { weight }) => sum + weight, 0)
    if (host.rebalance !== undefined) {
      this.#rebalancing = this.#rebalanceWhenMigrated(totalKeys).finally(() => {
        this.#rebalancing = null
      })
    }
    return {
      modelVersion: version,
      trainingDataSize: contributions.reduce((sum, { weight }) => sum + weight, 0),
      contributors: contributions.length,
      roundMs: performance.now() - started,
      bytesExchanged,
    }
  }
}
