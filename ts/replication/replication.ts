// Replication on a peer of the ring: the owner's writes sent to the other replicas (with a write
// quorum), the replica side of those messages, reads from replicas when an owner is down, and repair.

import { sleep } from '../abortable-sleep.js'
import type { LocalStore } from '../node/local-store.js'
import { UnknownModelVersionError } from '../protocol/errors.js'
import {
  type DataAnswer,
  GetStamped,
  type GetStampedAnswer,
  type KeysRequest,
  type MessageCodec,
  type PlacedKey,
  type PutRequest,
  RepairDigest,
  type RepairDigestAnswer,
  type RepairDigestRequest,
  Replicate,
  type ScanAnswer,
  type ScanRequest,
  ScanStamped,
} from '../protocol/messages.js'
import type { ScanFilter, ScannedRecord } from '../shared/data-plane.js'
import { ReplicasUnavailableError } from '../shared/errors.js'
import type { VnodeRef } from '../shared/router.js'
import { compareStamps, type Stamp } from '../shared/stamp.js'
import type { HintInit } from './hints.js'
import { chunks, recordBytes } from './records.js'
import { digestOf, type OwnedArc, Repairer, type RepairStats } from './repair.js'
import { ReplicaMap } from './replica-set.js'
import { type ReplicaGroup, Replicator, type ReplicatorStats } from './replicator.js'

/** What replication needs from the overlay. */
export interface ReplicationHost {
  readonly peerId: string
  readonly store: LocalStore
  readonly replicationFactor: number
  readonly writeQuorum: number
  /** This peer's active vnodes: what each owns, and its other replicas (one vnode per peer). */
  ownedReplicaSets(): Array<{ owns(position: bigint): boolean; replicas: VnodeRef[] }>
  /** The arcs of this peer's active vnodes, with their other replicas. */
  ownedArcs(): OwnedArc[]
  /** Every vnode on the ring, along the successor lists. */
  walkRing(signal: AbortSignal): Promise<VnodeRef[]>
  /** Whether a local vnode owns `position`. */
  ownsLocally(position: bigint): boolean
  /** False while a rollout moves entries (their positions are not settled). */
  settled(): boolean
  /** A data call to another peer, answered from its own store (never forwarded). */
  call<Request, Answer>(
    peer: VnodeRef,
    codec: MessageCodec<Request, Answer>,
    request: Request,
  ): Promise<Answer>
  /** Records of a range a peer holds, filtered (its own store only). */
  scanLocal(peer: VnodeRef, hashMin: bigint, hashMax: bigint, filter?: ScanFilter): Promise<ScannedRecord[]>
  log(message: string): void
  repairIntervalMs: number
  repairBytesPerSecond: number
  /** Approximate budget of one message's records, in bytes. */
  maxMessageBytes: number
  /** Bounds of the writes held for replicas that do not answer. */
  hints?: Partial<HintInit>
  /** Milliseconds between deliveries of held writes to the replicas they wait for. */
  hintIntervalMs: number
}

/** What `getStats().replication` reports. */
export interface ReplicationStats extends ReplicatorStats {
  replicationFactor: number
  writeQuorum: number
  /** Reads answered by replicas because the owner did not answer (or `readQuorum` asked them). */
  fallbackReads: number
  /** Records written back to replicas a read found stale (read repair). */
  readRepairs: number
  /** Entries handed to their owners and dropped because this peer is no longer one of their replicas. */
  droppedStrays: number
  /** Such copies the last round found (it keeps those whose owner did not answer). */
  straysLastRound: number
  /** Vnodes in the last walk of the ring (the map of replica sets), and when it was taken. */
  ringVnodes: number
  ringWalkedAt: number | null
  repair: RepairStats
}

const EMPTY = new Uint8Array(0)

/** Replication of this peer's store over the ring (inactive when `replicationFactor` is 1). */
export class Replication {
  readonly #host: ReplicationHost
  readonly #replicator: Replicator
  readonly #repairer: Repairer
  #view: ReplicaMap | undefined
  #viewAt: number | null = null
  #fallbackReads = 0
  #readRepairs = 0
  readonly #strays = { total: 0, lastRound: 0 }

  constructor(host: ReplicationHost) {
    this.#host = host
    this.#replicator = new Replicator({
      writeQuorum: host.writeQuorum,
      send: (replica, records) => this.#send(replica, records),
      hints: host.hints,
    })
    this.#repairer = new Repairer({
      store: host.store,
      ownedArcs: () => host.ownedArcs(),
      digest: (replica, hashMin, hashMax, buckets) =>
        host.call(replica, RepairDigest, {
          modelVersion: host.store.modelVersion,
          ttl: 0,
          hashMin,
          hashMax,
          buckets,
        }),
      scan: (replica, hashMin, hashMax) => this.#scanStamped(replica, hashMin, hashMax),
      send: (replica, records) => this.#send(replica, records),
      bytesPerSecond: host.repairBytesPerSecond,
    })
  }

  /** Whether entries have copies on other peers. */
  get enabled(): boolean {
    return this.#host.replicationFactor > 1
  }

  async #send(replica: VnodeRef, records: ScannedRecord[]): Promise<void> {
    const modelVersion = this.#host.store.modelVersion
    await Promise.all(
      chunks(records, this.#host.maxMessageBytes).map((chunk) =>
        this.#host.call(replica, Replicate, { modelVersion, ttl: 0, records: chunk }),
      ),
    )
  }

  async #scanStamped(replica: VnodeRef, hashMin: bigint, hashMax: bigint): Promise<ScannedRecord[]> {
    const records: ScannedRecord[] = []
    let from: bigint | null = hashMin
    while (from !== null) {
      const page: ScanAnswer = await this.#host.call(replica, ScanStamped, {
        modelVersion: this.#host.store.modelVersion,
        ttl: 0,
        hashMin: from,
        hashMax,
        filter: null,
        maxBytes: this.#host.maxMessageBytes,
      })
      records.push(...page.records)
      from = page.resumeFrom
    }
    return records
  }

  /**
   * Sends records this peer stored as owner (stamped) to the other replicas of their positions;
   * resolves once the write quorum stored each.
   * @throws QuorumNotReachedError
   */
  async replicate(records: readonly ScannedRecord[]): Promise<void> {
    if (!this.enabled || records.length === 0) return
    const owned = this.#host.ownedReplicaSets()
    // The replicas of a set are read only when one of the records falls in it.
    const groups = new Map<number, ReplicaGroup>()
    // Records of an arc no local vnode owns any more (it moved while the write was under way).
    const moved = new Map<string, ReplicaGroup>()
    for (const record of records) {
      const at = owned.findIndex((set) => set.owns(record.position))
      if (at >= 0) {
        let group = groups.get(at)
        if (group === undefined) {
          group = { replicas: owned[at].replicas, records: [] }
          groups.set(at, group)
        }
        group.records.push(record)
        continue
      }
      const replicas =
        this.#view?.replicasOf(record.position).filter((replica) => replica.peerId !== this.#host.peerId) ??
        []
      const key = replicas.map((replica) => replica.peerId).join(' ')
      const group = moved.get(key)
      if (group === undefined) moved.set(key, { replicas, records: [record] })
      else group.records.push(record)
    }
    await this.#replicator.replicate([...groups.values(), ...moved.values()])
  }

  /** Whether this peer is one of the replicas of `position` (true while it has no map of the ring yet). */
  holds(position: bigint): boolean {
    if (!this.enabled) return false
    return this.#view?.holds(this.#host.peerId, position) ?? true
  }

  /** Serves a replication message from this peer's own store. */
  async serve(type: number, request: unknown): Promise<unknown> {
    const { store } = this.#host
    switch (type) {
      case Replicate.type:
        await store.merge((request as PutRequest).records)
        return { misrouted: 0 } satisfies DataAnswer
      case GetStamped.type: {
        const keys = (request as KeysRequest).keys.map((item) => item.key)
        const stored = await store.getMany(keys)
        return {
          values: stored.map((value) => value ?? null),
          stamps: keys.map((key) => store.stampOf(key) ?? null),
          misrouted: 0,
        } satisfies GetStampedAnswer
      }
      case RepairDigest.type: {
        const { modelVersion, hashMin, hashMax, buckets } = request as RepairDigestRequest
        this.#requireVersion(modelVersion)
        return { ...digestOf(store, hashMin, hashMax, buckets), misrouted: 0 } satisfies RepairDigestAnswer
      }
      case ScanStamped.type: {
        const { modelVersion, hashMin, hashMax, maxBytes } = request as ScanRequest
        this.#requireVersion(modelVersion)
        return this.#page(store.scanStamped(hashMin, hashMax), maxBytes)
      }
    }
    throw new Error(`not a replication message: ${type}`)
  }

  /** Message types `serve` answers. */
  static readonly MESSAGES: ReadonlySet<number> = new Set([
    Replicate.type,
    GetStamped.type,
    RepairDigest.type,
    ScanStamped.type,
  ])

  #requireVersion(version: number): void {
    const current = this.#host.store.modelVersion
    if (version !== current)
      throw new UnknownModelVersionError(
        `repair placed with model version ${version}, this peer uses ${current}`,
      )
  }

  /** Cuts records at about `maxBytes`, never between two records of one position. */
  #page(records: ScannedRecord[], maxBytes: number): ScanAnswer {
    let bytes = 0
    let cut = 0
    while (cut < records.length && bytes <= maxBytes) bytes += recordBytes(records[cut++])
    while (cut < records.length && records[cut].position === records[cut - 1].position) cut++
    return {
      records: cut === records.length ? records : records.slice(0, cut),
      resumeFrom: cut === records.length ? null : records[cut].position,
      misrouted: 0,
    }
  }

  /** The map of replica sets, walked again when it is older than a repair interval. */
  async #ringView(signal: AbortSignal): Promise<ReplicaMap> {
    if (this.#view === undefined || Date.now() - (this.#viewAt ?? 0) > this.#host.repairIntervalMs)
      await this.#walk(signal)
    return this.#view as ReplicaMap
  }

  async #walk(signal: AbortSignal): Promise<void> {
    const vnodes = await this.#host.walkRing(signal)
    this.#view = new ReplicaMap(vnodes, this.#host.replicationFactor)
    this.#viewAt = Date.now()
  }

  /**
   * Values of keys read from every replica but `skip` (the owner that did not answer), the newest
   * version winning; undefined when absent or deleted. Replicas that answered with an older
   * version (or none) are sent the newest afterwards, off the caller's path (read repair).
   * @throws ReplicasUnavailableError when fewer than `quorum` replicas of some key answered
   */
  async readReplicas(
    keys: readonly PlacedKey[],
    skip: string | undefined,
    quorum: number,
    signal: AbortSignal,
  ): Promise<Array<Uint8Array | undefined>> {
    const view = await this.#ringView(signal)
    const byPeer = new Map<string, { replica: VnodeRef; indexes: number[]; stamps?: Array<Stamp | null> }>()
    for (let i = 0; i < keys.length; i++) {
      for (const replica of view.replicasOf(keys[i].position)) {
        if (replica.peerId === skip) continue
        const group = byPeer.get(replica.peerId)
        if (group === undefined) byPeer.set(replica.peerId, { replica, indexes: [i] })
        else group.indexes.push(i)
      }
    }
    const newest: Array<{ value: Uint8Array | null; stamp: Stamp | null } | undefined> = new Array(
      keys.length,
    )
    const answers = new Array<number>(keys.length).fill(0)
    await Promise.all(
      Array.from(byPeer.values(), async (group) => {
        const asked = group.indexes.map((i) => keys[i])
        let answer: GetStampedAnswer
        try {
          answer =
            group.replica.peerId === this.#host.peerId
              ? ((await this.serve(GetStamped.type, {
                  modelVersion: 0,
                  ttl: 0,
                  keys: asked,
                })) as GetStampedAnswer)
              : await this.#host.call(group.replica, GetStamped, {
                  modelVersion: this.#host.store.modelVersion,
                  ttl: 0,
                  keys: asked,
                })
        } catch {
          return
        }
        group.stamps = answer.stamps
        for (let j = 0; j < group.indexes.length; j++) {
          const i = group.indexes[j]
          answers[i]++
          const held = newest[i]
          const stamp = answer.stamps[j]
          if (
            held === undefined ||
            (stamp !== null && (held.stamp === null || compareStamps(stamp, held.stamp) > 0))
          )
            newest[i] = { value: answer.values[j], stamp }
        }
      }),
    )
    const unanswered = answers.findIndex((count) => count < quorum)
    if (unanswered >= 0) {
      throw new ReplicasUnavailableError(
        `${answers[unanswered]} replicas of position ${keys[unanswered].position} answered, ${quorum} needed`,
      )
    }
    this.#fallbackReads += keys.length
    this.#repairStale(keys, byPeer.values(), newest)
    return newest.map((found) => found?.value ?? undefined)
  }

  /** Sends the newest version of each key read to the replicas that answered with an older one. */
  #repairStale(
    keys: readonly PlacedKey[],
    groups: Iterable<{ replica: VnodeRef; indexes: number[]; stamps?: Array<Stamp | null> }>,
    newest: ReadonlyArray<{ value: Uint8Array | null; stamp: Stamp | null } | undefined>,
  ): void {
    for (const { replica, indexes, stamps } of groups) {
      if (stamps === undefined) continue
      const stale: ScannedRecord[] = []
      for (let j = 0; j < indexes.length; j++) {
        const found = newest[indexes[j]]
        if (found?.stamp == null) continue
        const theirs = stamps[j]
        if (theirs !== null && compareStamps(theirs, found.stamp) >= 0) continue
        const { key, position } = keys[indexes[j]]
        stale.push({ key, position, value: found.value ?? EMPTY, stamp: found.stamp })
      }
      if (stale.length === 0) continue
      const written =
        replica.peerId === this.#host.peerId ? this.#host.store.merge(stale) : this.#send(replica, stale)
      written.then(
        () => {
          this.#readRepairs += stale.length
        },
        () => {},
      )
    }
  }

  /**
   * Records of [hashMin, hashMax] (not wrapping), each piece read from the first of its replicas
   * but `skip` that answers.
   * @throws ReplicasUnavailableError when no replica of some piece answered
   */
  async scanReplicas(
    hashMin: bigint,
    hashMax: bigint,
    filter: ScanFilter | undefined,
    skip: string | undefined,
    signal: AbortSignal,
  ): Promise<ScannedRecord[]> {
    const view = await this.#ringView(signal)
    const records: ScannedRecord[] = []
    for (const piece of view.segments(hashMin, hashMax)) {
      let found: ScannedRecord[] | undefined
      for (const replica of piece.replicas) {
        if (replica.peerId === skip) continue
        try {
          found =
            replica.peerId === this.#host.peerId
              ? this.#host.store.scanSync(piece.hashMin, piece.hashMax, filter)
              : await this.#host.scanLocal(replica, piece.hashMin, piece.hashMax, filter)
          break
        } catch {}
      }
      if (found === undefined)
        throw new ReplicasUnavailableError(`no replica of [${piece.hashMin}, ${piece.hashMax}] answered`)
      records.push(...found)
    }
    return records
  }

  /**
   * Hands the entries this peer holds but is no replica of (the ring changed since they were
   * written: a join, a move) to their owners, and drops them once the owners stored them.
   */
  async #dropStrays(signal: AbortSignal): Promise<void> {
    const view = this.#view
    if (view === undefined || !this.#host.settled()) return
    const { store, peerId } = this.#host
    const keep = (position: bigint) => this.#host.ownsLocally(position) || view.holds(peerId, position)
    let dropped = 0
    let found = 0
    let from: bigint | null = 0n
    while (from !== null && !signal.aborted) {
      const batch = store.misplaced(from, 4096, keep)
      from = batch.next
      const strays = batch.records.filter((record) => !record.stamp?.deleted)
      if (strays.length === 0) continue
      found += strays.length
      const byOwner = new Map<string, { owner: VnodeRef; records: ScannedRecord[] }>()
      for (const record of strays) {
        const [owner] = view.replicasOf(record.position)
        const group = byOwner.get(owner.peerId)
        if (group === undefined) byOwner.set(owner.peerId, { owner, records: [record] })
        else group.records.push(record)
      }
      // Copies whose owner does not answer stay here for a later round.
      for (const { owner, records } of byOwner.values()) {
        const sent = await this.#send(owner, records).then(
          () => true,
          () => false,
        )
        if (!sent) continue
        await store.removeCopies(records, keep)
        dropped += records.length
      }
    }
    this.#strays.total += dropped
    this.#strays.lastRound = found
  }

  /**
   * Walks the ring and runs a repair round every repair interval, and delivers held writes to the
   * replicas they wait for every hint interval, until `signal` aborts.
   */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([this.#repairLoop(signal), this.#hintLoop(signal)])
  }

  async #hintLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(this.#host.hintIntervalMs, signal)
      await this.#replicator.deliverHints(signal)
    }
  }

  async #repairLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(this.#host.repairIntervalMs, signal)
      if (signal.aborted) return
      try {
        await this.#walk(signal)
        // Entries a rollout is moving are compared once they have settled.
        if (!this.#host.settled()) continue
        await this.#repairer.round(signal)
        await this.#dropStrays(signal)
      } catch (err) {
        if (!signal.aborted) this.#host.log(`repair round failed: ${(err as Error).message}`)
      }
    }
  }

  stats(): ReplicationStats {
    return {
      replicationFactor: this.#host.replicationFactor,
      writeQuorum: this.#host.writeQuorum,
      ...this.#replicator.stats,
      fallbackReads: this.#fallbackReads,
      readRepairs: this.#readRepairs,
      droppedStrays: this.#strays.total,
      straysLastRound: this.#strays.lastRound,
      ringVnodes: this.#view?.size ?? 0,
      ringWalkedAt: this.#viewAt,
      repair: { ...this.#repairer.stats },
    }
  }
}
