// The Chord overlay as LeadNode's Router: this peer's vnodes on a ring of libp2p peers, lookups
// with a routing cache, data requests served or forwarded, joins and graceful leaves with hand-off.

import { createHash } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { sleep } from '../abortable-sleep.js'
import {
  type Arc,
  ArcMap,
  type ChordRemote,
  ChordVnode,
  chooseVnodeIds,
  clockwiseDistance,
  HandOverRefusedError,
  inHalfOpenArc,
  inOpenArc,
  iterativeLookup,
  JoinFailedError,
  LoadProfile,
  LookupFailedError,
  type LookupResult,
  type NotifyOutcome,
  type OwnedArc,
  planRebalance,
  rangeWalk,
  type VnodeMove,
} from '../chord/index.js'
import { DlhtError, InvalidArgumentError } from '../errors.js'
import type { LeadConfig } from '../node/config.js'
import type { DataPlane, ScanFilter, ScannedRecord } from '../node/data-plane.js'
import { InvalidConfigError, NotStartedError } from '../node/errors.js'
import { compareAnyKeys, type NodeKey } from '../node/keys.js'
import type { RouterComponents } from '../node/lead-node.js'
import type { LearnedHash } from '../node/learned-hash.js'
import type { LocalStore } from '../node/local-store.js'
import type {
  ClusterRetrainOutcome,
  RangeSegment,
  RouteOptions,
  Router,
  RoutingTableStats,
  VnodeRef,
} from '../node/router.js'
import {
  PeerUnavailableError,
  RemoteCallTimeoutError,
  UnknownMessageError,
  UnknownModelVersionError,
  VnodeUnavailableError,
} from '../protocol/errors.js'
import { KeySample, type KeySampleRequest } from '../protocol/key-sample.js'
import {
  Abort,
  type ClusterConfig,
  Commit,
  Contribute,
  type ContributeRequest,
  DATA_CODECS,
  DATA_PROTOCOL,
  type DataAnswer,
  type DataRequest,
  Delete,
  type DeleteAnswer,
  DeleteLocal,
  Get,
  type GetAnswer,
  GetConfig,
  GetLocal,
  HandOverPart,
  type HandOverPartRequest,
  HandOverRecords,
  type HandOverRecordsAnswer,
  type HandOverRecordsRequest,
  HandOverTaken,
  type HandOverTakenRequest,
  type KeysRequest,
  Leave,
  type LeaveRequest,
  LoadSample,
  type LoadSampleRequest,
  type MessageCodec,
  Migrate,
  MoveVnode,
  type NeighbourRefs,
  Neighbours,
  Notify,
  type NotifyAnswer,
  type NotifyRequest,
  type PeerRef,
  Ping,
  type PlacedKey,
  Prepare,
  type PrepareRequest,
  Put,
  type PutRequest,
  RING_CODECS,
  RING_PROTOCOL,
  RolloutStatus,
  type RolloutStatusRequest,
  Scan,
  type ScanAnswer,
  ScanLocal,
  type ScanRequest,
  Step,
  type StepAnswer,
  type StepRequest,
  SuccessorLeft,
  type SuccessorLeftRequest,
} from '../protocol/messages.js'
import { distinctPeers } from '../replication/replica-set.js'
import { Replication } from '../replication/replication.js'
import {
  answerBudget,
  pageOf,
  partsWithin,
  recordBytes,
  recordsAfter,
  recordsWithin,
  valuesWithin,
} from './answer-pages.js'
import { StagedHandOvers } from './hand-over-parts.js'
import { configuredPrivateKey } from './identity.js'
import { bootstrapAddress, createDlhtLibp2p, type DlhtLibp2p } from './libp2p.js'
import { listenFailure } from './listen-errors.js'
import { explainJoinFailure } from './membership.js'
import { encodedRangeOf, MigratingDataPlane, type PreviousHolder } from './migrating-plane.js'
import { ModelRollout, type RebalanceOutcome, type RolloutStats } from './model-rollout.js'
import { RemoteDataPlane } from './remote-data-plane.js'
import { RingAuthority } from './ring-authority.js'
import { checkChordRouterOptions } from './router-options.js'
import type { DlhtService, PeerAddress } from './service.js'
import { TransitionGate } from './transition-gate.js'

/** Options of the overlay beyond LeadConfig. */
export interface ChordRouterOptions {
  /** Successors each vnode remembers. Default replicationFactor × numVirtualNodes, at least 8, at most 32. */
  successorListLength?: number
  /** Times a data request may be forwarded by peers that do not own its keys. Default 4. */
  maxForwards?: number
  /** Deadline of every remote call, in milliseconds. Default 5000. */
  callTimeout?: number
  /** Largest frame sent or accepted, in bytes. Default 4 MiB. */
  maxFrameSize?: number
  /** Stabilization period in milliseconds; default `config.stabilizeInterval` seconds. */
  stabilizeIntervalMs?: number
  /**
   * After a rollout it coordinated, move vnodes so that every peer carries its share of the keys
   * (`planRebalance` on a profile of the new positions). Default true.
   */
  rebalance?: boolean
  /**
   * Where a joining peer places its vnodes: `'load'` cuts the arcs that carry the most keys
   * (`chooseVnodeIds` on a profile of the ring's key positions), `'hash'` at SHA-256 ids of the peer
   * id (the same ids on every start). Default `'load'`; an empty ring always gets hashed ids.
   */
  vnodePlacement?: 'load' | 'hash'
  /** Identity of the peer; a new Ed25519 key when absent. */
  privateKey?: PrivateKey
  /** Milliseconds between anti-entropy rounds with the replicas. Default 10 stabilization periods, at least 1 s. */
  repairIntervalMs?: number
  /** Bytes per second a repair round may ship. Default 16 MiB. */
  repairBytesPerSecond?: number
  /** Bytes of writes held for replicas that do not answer (hinted hand-off). Default 64 MiB. */
  hintMaxBytes?: number
  /** Milliseconds a write is held for a replica that does not answer. Default 10 minutes. */
  hintMaxAgeMs?: number
}

/** Counters of the overlay, reported in `getRoutingTableStats().overlay`. */
export interface OverlayStats {
  /** Lookups run (routing-cache misses), and the remote steps they took. */
  lookups: number
  lookupHops: number
  /** Positions answered from the routing cache or by a local vnode without any message. */
  cacheHits: number
  localHits: number
  /** Range queries routed (`coveringSegments`) and the routing messages they needed. */
  rangeQueries: number
  rangeRoutingMessages: number
  /** Data messages sent, and scans among them. */
  dataMessages: number
  scanMessages: number
  /** Items this peer received without owning them and forwarded. */
  forwardedItems: number
  /** Entries handed over to other vnodes (joins and leaves) and taken over from them. */
  handedOver: number
  takenOver: number
  /** Entries copied to a joiner that has not confirmed it stored them yet (they are kept till then). */
  unconfirmedCopies: number
}

interface LocalVnode {
  readonly ref: VnodeRef
  readonly chord: ChordVnode<VnodeRef>
  /** False while joining and once left: the vnode routes but does not serve data. */
  active: boolean
  /** Set while it hands its arc over: it takes no arc from a neighbour meanwhile. */
  leaving: boolean
  /** Set once its arc was handed over. */
  left: boolean
}

/** An arc handed over in a notify answer, kept here until the candidate says it stored the entries. */
interface PendingHandOver {
  readonly candidate: VnodeRef
  readonly arc: Arc
  /** The entries copied into the answer: deleted here by key once taken. */
  readonly records: readonly ScannedRecord[]
  /** The notify outcome, sent again to a joiner that asks again (its first answer was lost). */
  readonly previousPredecessor: VnodeRef | null
  readonly at: number
}

/** Names a Leave: the leaving vnode and the start of the arc it hands over. */
function leaveKey(leaving: VnodeRef, arcStart: bigint): string {
  return `${leaving.peerId}/${leaving.id}/${arcStart}`
}

function handOverKey(vnode: VnodeRef): string {
  return `${vnode.peerId}/${vnode.id}`
}

/** Hand-overs a peer remembers having taken, so that a repeated Leave is only acknowledged. */
const REMEMBERED_HAND_OVERS = 64

/** How long, in call timeouts, a moving vnode keeps trying to hand its arc over. */
const LEAVE_PATIENCE_TIMEOUTS = 4

/**
 * How long, in call timeouts, `stop()` takes at most before libp2p stops: half of it for a
 * running rollout to settle, the rest for handing arcs over. A neighbour that is dead or leaving
 * too cannot hold a stopping peer longer.
 */
const STOP_BOUND_TIMEOUTS = 2

/** Plans a rebalance makes at most when the ring changes under its moves. */
const REBALANCE_PLANS = 3

/** Key positions a rebalance reads at most, over the whole ring. */
const PROFILE_POSITIONS = 50_000

/** Load-aware vnode ids are moved forward by up to this much (far below the spacing of keys in a 2^62 ring). */
const ID_OFFSET_RANGE = 1n << 16n

/** Stride of the first, coarse profile a joining peer reads, to learn how many keys the ring holds. */
const COARSE_STRIDE = 1024

/** Data messages that change entries. */
const WRITES: ReadonlySet<number> = new Set([Put.type, Delete.type])

const MODEL_VERSION_HINT = 'use the same model on every peer (model versions differ)'

/** Where vnode `index` of a peer sits: a hash of the peer id and the index, so peers spread evenly. */
export function vnodePosition(peerId: string, index: number, hashSpaceSize: bigint): bigint {
  return createHash('sha256').update(`${peerId}/${index}`).digest().readBigUInt64BE(0) % hashSpaceSize
}

const bigMin = (a: bigint, b: bigint): bigint => (a < b ? a : b)
const bigMax = (a: bigint, b: bigint): bigint => (a > b ? a : b)

/** The position arc `(from, to]` as inclusive, non-wrapping position ranges. */
function arcRanges({ from, to }: Arc, hashSpaceSize: bigint): Array<[bigint, bigint]> {
  if (from < to) return [[from + 1n, to]]
  const ranges: Array<[bigint, bigint]> = []
  if (from + 1n < hashSpaceSize) ranges.push([from + 1n, hashSpaceSize - 1n])
  ranges.push([0n, to])
  return ranges
}

/**
 * A Router over a Chord ring of libp2p peers. `start()` creates the libp2p node (TCP on
 * `config.ip:config.basePort`), places `numVirtualNodes` vnodes and joins the ring of
 * `config.bootstrapPeer` (or starts one); `stop()` hands every entry to the successors and leaves.
 */
export class ChordRouter implements Router {
  readonly peerId: string
  readonly #config: Readonly<LeadConfig>
  readonly #dataPlane: LocalStore
  readonly #learnedHash: LearnedHash
  readonly #rollout: ModelRollout
  /** Data planes that also reach previous holders, while a rollout migrates entries. */
  readonly #migratingPlanes = new Map<string, MigratingDataPlane>()
  #localHolder: PreviousHolder | undefined
  readonly #catchingUp = new Map<string, Promise<void>>()
  readonly #options: Required<
    Omit<
      ChordRouterOptions,
      | 'privateKey'
      | 'stabilizeIntervalMs'
      | 'repairIntervalMs'
      | 'repairBytesPerSecond'
      | 'hintMaxBytes'
      | 'hintMaxAgeMs'
    >
  >
  readonly #privateKey: PrivateKey
  readonly #stabilizeMs: number
  readonly #vnodes = new Map<bigint, LocalVnode>()
  readonly #cache = new ArcMap<VnodeRef>()
  readonly #remotePlanes = new Map<string, RemoteDataPlane>()
  readonly #stats: OverlayStats = {
    lookups: 0,
    lookupHops: 0,
    cacheHits: 0,
    localHits: 0,
    rangeQueries: 0,
    rangeRoutingMessages: 0,
    dataMessages: 0,
    scanMessages: 0,
    forwardedItems: 0,
    handedOver: 0,
    takenOver: 0,
    unconfirmedCopies: 0,
  }
  readonly #remote: ChordRemote<VnodeRef>
  #libp2p: DlhtLibp2p | undefined
  #service: DlhtService | undefined
  #running: AbortController | undefined
  #maintenance: Promise<void> | undefined
  readonly #replication: Replication
  #repairing: Promise<void> | undefined
  readonly #log: (message: string) => void
  readonly #gate = new TransitionGate()
  /** Recent hand-overs taken from leaving vnodes, oldest first (see `#serveLeave`). */
  readonly #handOversTaken = new Set<string>()
  /**
   * When each vnode that handed its arc to one of ours left (by ring id): a notify it sent before
   * leaving may still arrive, and must not take the arc back (its peer would store the entries
   * for a vnode that no longer exists).
   */
  readonly #departed = new Map<bigint, number>()
  /** Arcs handed to a notifying vnode whose entries are still here until it says it stored them. */
  readonly #pendingHandOvers = new Map<string, PendingHandOver>()
  /** Entries of leaving vnodes' arcs that came ahead of their Leave (more than a frame holds). */
  readonly #stagedHandOvers: StagedHandOvers
  #lookupsRunning = 0
  /** The remote vnode that took over the arc of the last vnode to leave. */
  #handedTo: VnodeRef | undefined
  #lookupSlots: Array<() => void> = []
  /** Checks who sends each state-changing message. */
  readonly #authority = new RingAuthority({
    vnodesOf: async (peerId, signal) =>
      (await this.#call({ peerId, multiaddrs: [] }, RING_PROTOCOL, GetConfig, undefined, signal)).vnodes,
    ownerOf: async (position, signal) => (await this.#lookup(position, signal)).owner,
    knows: (peerId) =>
      [...this.#vnodes.values()].some(
        ({ chord }) =>
          chord.predecessor?.peerId === peerId ||
          chord.successors.some((successor) => successor.peerId === peerId) ||
          chord.fingers.some((finger) => finger?.peerId === peerId),
      ),
    log: (message) => this.#log(message),
  })

  constructor(components: RouterComponents, options: ChordRouterOptions = {}) {
    checkChordRouterOptions(options, components.config)
    this.#config = components.config
    this.#dataPlane = components.store
    this.#learnedHash = components.learnedHash
    this.#log = components.log
    this.#options = {
      successorListLength:
        options.successorListLength ??
        Math.min(32, Math.max(8, this.#config.replicationFactor * this.#config.numVirtualNodes)),
      maxForwards: options.maxForwards ?? 4,
      callTimeout: options.callTimeout ?? 5000,
      maxFrameSize: options.maxFrameSize ?? 4 * 1024 * 1024,
      rebalance: options.rebalance ?? true,
      vnodePlacement: options.vnodePlacement ?? 'load',
    }
    this.#stabilizeMs = options.stabilizeIntervalMs ?? this.#config.stabilizeInterval * 1000
    this.#stagedHandOvers = new StagedHandOvers(2 * LEAVE_PATIENCE_TIMEOUTS * this.#options.callTimeout)
    this.#privateKey = options.privateKey ?? configuredPrivateKey(this.#config)
    this.peerId = peerIdFromPrivateKey(this.#privateKey).toString()
    this.#remote = {
      step: (target, position, avoid, callOptions) =>
        this.#ringCall(target, Step, { target: target.id, position, avoid: [...avoid] }, callOptions?.signal),
      neighbours: (target, callOptions) =>
        this.#ringCall(target, Neighbours, { target: target.id }, callOptions?.signal),
      notify: (target, candidate, callOptions) => this.#notifyRemote(target, candidate, callOptions?.signal),
      // Asks the vnode itself, not only its peer: a vnode that moved away must read as gone.
      ping: async (target, callOptions) => {
        await this.#ringCall(target, Neighbours, { target: target.id }, callOptions?.signal)
      },
    }
    this.#rollout = new ModelRollout(
      {
        peerId: this.peerId,
        learnedHash: this.#learnedHash,
        store: this.#dataPlane,
        self: () => ({ peerId: this.peerId, multiaddrs: this.multiaddrs() }),
        members: (signal) => this.#members(signal),
        call: (peer, codec, request, signal) => this.#call(peer, RING_PROTOCOL, codec, request, signal),
        ownsLocally: (position) => this.#ownsLocally(position),
        migrate: (records, signal) => this.#migrate(records, signal),
        rebalance: this.#options.rebalance
          ? (totalKeys, signal) => this.#rebalance(totalKeys, signal)
          : undefined,
        adopted: components.modelAdopted,
        log: components.log,
      },
      { prepareTtlMs: this.#options.callTimeout * 3 },
    )
    this.#replication = new Replication({
      peerId: this.peerId,
      store: this.#dataPlane,
      replicationFactor: this.#config.replicationFactor,
      writeQuorum: this.#config.writeQuorum,
      ownedReplicaSets: () => this.#ownedReplicaSets(),
      ownedArcs: () => this.#ownedArcs(),
      walkRing: (signal) => this.#walkRing(signal),
      ownsLocally: (position) => this.#ownsLocally(position),
      settled: () => !this.#rollout.migrating,
      call: (peer, codec, request) =>
        this.#call(peer, DATA_PROTOCOL, codec, request, AbortSignal.timeout(this.#options.callTimeout)),
      scanLocal: (peer, hashMin, hashMax, filter) =>
        this.#plainPlane(peer).scanLocal(hashMin, hashMax, filter),
      log: components.log,
      repairIntervalMs: options.repairIntervalMs ?? Math.max(1000, 10 * this.#stabilizeMs),
      repairBytesPerSecond: options.repairBytesPerSecond ?? 16 * 1024 * 1024,
      maxMessageBytes: Math.floor(this.#options.maxFrameSize / 4),
      hints: { maxBytes: options.hintMaxBytes, maxAgeMs: options.hintMaxAgeMs },
      hintIntervalMs: this.#stabilizeMs,
    })
    if (this.#replication.enabled)
      this.#dataPlane.retainCopies((position) => this.#replication.holds(position))
  }

  /** Bytes of entries one message carries: what fits a frame with room to spare. */
  get #frameBudget(): number {
    return answerBudget(this.#options.maxFrameSize)
  }

  get #hashSpaceSize(): bigint {
    return this.#config.hashSpaceSize
  }

  /** This peer's libp2p node while started (e.g. to serve more protocols on it); undefined otherwise. */
  get libp2p(): DlhtLibp2p | undefined {
    return this.#libp2p
  }

  /** Where this peer listens (each address ends in /p2p/<peer id>); empty before start. */
  multiaddrs(): string[] {
    return this.#service?.multiaddrs() ?? []
  }

  async start(): Promise<void> {
    if (this.#running !== undefined) return
    const running = new AbortController()
    this.#running = running
    try {
      this.#libp2p = await createDlhtLibp2p({
        ip: this.#config.ip,
        port: this.#config.basePort,
        privateKey: this.#privateKey,
        swarmKey: this.#config.swarmKey ?? undefined,
        allowedPeers: this.#config.allowedPeers ?? undefined,
        callTimeout: this.#options.callTimeout,
        maxFrameSize: this.#options.maxFrameSize,
      }).catch((err: unknown) => {
        throw listenFailure(err, this.#config.ip, this.#config.basePort)
      })
      this.#service = this.#libp2p.services.dlht
      this.#service.setHandler((protocol, type, body, { signal, remotePeer }) =>
        this.#handle(protocol, type, body, signal, remotePeer),
      )
      await this.#joinRing(running.signal)
      this.#rollout.open()
    } catch (err) {
      this.#running = undefined
      await this.#libp2p?.stop()
      this.#libp2p = undefined
      this.#service = undefined
      this.#vnodes.clear()
      throw err
    }
    this.#maintenance = this.#maintain(running.signal)
    if (this.#replication.enabled) this.#repairing = this.#replication.run(running.signal)
  }

  async stop(): Promise<void> {
    const running = this.#running
    if (running === undefined) return
    const bound = STOP_BOUND_TIMEOUTS * this.#options.callTimeout
    const leaveBy = AbortSignal.timeout(bound)
    // Finish moving entries of a rollout first: a graceful leave hands over only owned arcs.
    await Promise.race([this.#rollout.settle(), sleep(bound / 2, leaveBy)])
    running.abort()
    this.#rollout.stop()
    await this.#maintenance
    await this.#repairing
    await this.#leaveRing(leaveBy)
    this.#running = undefined
    this.#service?.setHandler(undefined)
    await this.#libp2p?.stop()
    this.#libp2p = undefined
    this.#service = undefined
    this.#remotePlanes.clear()
  }

  async findSuccessor(position: bigint, options: RouteOptions = {}): Promise<VnodeRef> {
    return this.#knownArc(position)?.owner ?? this.#coldLookup(position, options.signal)
  }

  async findSuccessorMany(positions: BigUint64Array, options: RouteOptions = {}): Promise<VnodeRef[]> {
    const owners: VnodeRef[] = new Array(positions.length)
    for (let i = 0; i < positions.length; i++) {
      owners[i] =
        this.#knownArc(positions[i])?.owner ?? (await this.#coldLookup(positions[i], options.signal))
    }
    return owners
  }

  /**
   * A lookup for a routing-cache miss. Concurrent misses queue for one of `maxWorkers` slots and
   * look at the cache again when their turn comes, so a burst of misses on one arc costs one lookup.
   */
  async #coldLookup(position: bigint, signal?: AbortSignal): Promise<VnodeRef> {
    while (this.#lookupsRunning >= this.#config.maxWorkers) {
      await new Promise<void>((resolve) => this.#lookupSlots.push(resolve))
    }
    const known = this.#knownArc(position)
    if (known !== undefined) {
      this.#lookupSlots.shift()?.()
      return known.owner
    }
    this.#lookupsRunning++
    try {
      return (await this.#lookup(position, signal)).owner
    } finally {
      this.#lookupsRunning--
      this.#lookupSlots.shift()?.()
    }
  }

  /**
   * The owners of `[hashMin, hashMax]` in ring order: from arcs already known (local vnodes, the
   * routing cache); unknown stretches cost one lookup, then one neighbours call per 8 successors.
   */
  async coveringSegments(
    hashMin: bigint,
    hashMax: bigint,
    options: RouteOptions = {},
  ): Promise<RangeSegment[]> {
    this.#stats.rangeQueries++
    const segments: RangeSegment[] = []
    let cursor = hashMin
    let rounds = 0
    for (;;) {
      const walk = rangeWalk(
        cursor,
        hashMax,
        (position) => this.#knownArc(position, false),
        this.#hashSpaceSize,
      )
      for (const segment of walk.segments) {
        segments.push({ owner: segment.owner, hashMin: segment.from, hashMax: segment.to })
      }
      if (walk.unknownFrom === undefined) return segments
      if (++rounds > 4 * (segments.length + 16)) {
        throw new LookupFailedError(`could not route the range [${hashMin}, ${hashMax}]`)
      }
      cursor = walk.unknownFrom
      const previous = segments.at(-1)?.owner
      if (previous !== undefined && (await this.#learnSuccessors(previous, options.signal))) continue
      const found = await this.#lookup(cursor, options.signal)
      this.#stats.rangeRoutingMessages += found.hops
      if (this.#knownArc(cursor, false) === undefined) this.#cache.add(found.arcStart, found.owner)
    }
  }

  dataPlane(owner: VnodeRef): DataPlane {
    const plane = this.#plainPlane(owner)
    if (!this.#rollout.migrating) {
      if (this.#migratingPlanes.size > 0) this.#migratingPlanes.clear()
      return plane
    }
    let migrating = this.#migratingPlanes.get(owner.peerId)
    if (migrating === undefined) {
      migrating = new MigratingDataPlane(plane, {
        holdersOfKeys: (keys) => this.#holdersOfKeys(keys),
        holdersOfRange: (hashMin, hashMax) => this.#holdersOfRange(hashMin, hashMax),
      })
      this.#migratingPlanes.set(owner.peerId, migrating)
    }
    return migrating
  }

  /**
   * The data plane of `owner`'s peer. For this peer too, requests go through the serving path
   * (`#serveData`), not straight to the store: they were routed before an `await`, and a hand-over
   * may have moved the arc since; the serving path checks ownership again and forwards.
   */
  #plainPlane(owner: { peerId: string; multiaddrs: readonly string[] }): RemoteDataPlane {
    let plane = this.#remotePlanes.get(owner.peerId)
    if (plane === undefined) {
      const peer = { peerId: owner.peerId, multiaddrs: owner.multiaddrs }
      const local = owner.peerId === this.peerId
      plane = new RemoteDataPlane({
        peerId: owner.peerId,
        call: local
          ? async (codec, request) =>
              (await this.#serveData(
                codec.type,
                request,
                AbortSignal.timeout(this.#options.callTimeout),
              )) as never
          : (codec, request) => this.#dataCall(peer, codec, request),
        positionOf: (key) => this.#learnedHash.predict(key),
        modelVersion: () => this.#learnedHash.version,
        maxForwards: this.#options.maxForwards,
        maxMessageBytes: Math.floor(this.#options.maxFrameSize / 4),
        onAnswer: (answer: DataAnswer) => {
          if (answer.misrouted > 0) this.#cache.removeWhere((cached) => cached.peerId === owner.peerId)
        },
      })
      this.#remotePlanes.set(owner.peerId, plane)
    }
    return plane
  }

  /**
   * A data call to `peer`. When the peer is gone (it left or died since we routed to it), the
   * request is sent once more, with one hop less, to whoever owns its first position now.
   */
  async #dataCall<Request, Answer>(
    peer: { peerId: string; multiaddrs: readonly string[] },
    codec: MessageCodec<Request, Answer>,
    request: Request,
  ): Promise<Answer> {
    this.#stats.dataMessages++
    if (codec.type === Scan.type) this.#stats.scanMessages++
    try {
      return await this.#call(peer, DATA_PROTOCOL, codec, request)
    } catch (err) {
      // The peer is on another model version: learn it (the caller then routes again).
      if (err instanceof UnknownModelVersionError) await this.#catchUpWith(peer)
      // Routing went round in circles from this route: forget what we believed the peer owns.
      if (err instanceof DlhtError && err.code === 'ERR_DLHT_LOOKUP_FAILED') {
        this.#cache.removeWhere((cached) => cached.peerId === peer.peerId)
      }
      const data = request as DataRequest & Partial<PutRequest & KeysRequest & ScanRequest>
      const position = data.records?.[0]?.position ?? data.keys?.[0]?.position ?? data.hashMin
      if (!(err instanceof PeerUnavailableError) || data.ttl === 0 || position === undefined) throw err
      // The peer is gone (a leave our cache has not seen yet): look the owner up afresh.
      this.#cache.removeWhere((cached) => cached.peerId === peer.peerId)
      const retried = { ...data, ttl: data.ttl - 1 } as Request
      const signal = AbortSignal.timeout(this.#options.callTimeout)
      const owner = await this.findSuccessor(position, { signal })
      if (owner.peerId !== this.peerId) return this.#dataCall(owner, codec, retried)
      return (await this.#serveData(codec.type, retried, signal)) as Answer
    }
  }

  localVnodes(): readonly VnodeRef[] {
    return [...this.#vnodes.values()]
      .filter((vnode) => vnode.active)
      .map((vnode) => vnode.ref)
      .sort((a, b) => (a.id < b.id ? -1 : 1))
  }

  getRoutingTableStats(): RoutingTableStats {
    const describe = (ref: VnodeRef | null | undefined) =>
      ref == null ? null : { peerId: ref.peerId, vnodeId: ref.vnodeId, id: ref.id }
    const active = [...this.#vnodes.values()].filter((vnode) => vnode.active)
    return {
      peerId: this.peerId,
      hashSpaceSize: this.#hashSpaceSize,
      kind: 'chord',
      multiaddrs: this.multiaddrs(),
      vnodes: active.map((vnode) => ({ ...vnode.ref, arcStart: vnode.chord.arcStart })),
      ring: active.map((vnode) => ({
        id: vnode.ref.id,
        predecessor: describe(vnode.chord.predecessor),
        successors: vnode.chord.successors.map(describe),
        fingers: [...new Set(vnode.chord.fingers.filter((finger) => finger !== undefined))].map(describe),
      })),
      routingCacheArcs: this.#cache.size,
      overlay: {
        ...this.#stats,
        unconfirmedCopies: [...this.#pendingHandOvers.values()].reduce(
          (sum, pending) => sum + pending.records.length,
          0,
        ),
      },
      rollout: this.#rollout.stats(),
      replication: this.#replication.stats(),
    }
  }

  /**
   * Values of keys read from their replicas but `skip` (an owner that did not answer), newest
   * version first; at least `quorum` replicas of each key must answer.
   */
  readReplicas(
    keys: readonly NodeKey[],
    positions: ArrayLike<bigint>,
    skip?: string,
    quorum = 1,
  ): Promise<Array<Uint8Array | undefined>> {
    const placed = keys.map((key, i) => ({ key, position: positions[i] }))
    return this.#replication.readReplicas(
      placed,
      skip,
      quorum,
      AbortSignal.timeout(this.#options.callTimeout),
    )
  }

  /** Records of [hashMin, hashMax] (not wrapping), each piece from the first replica but `skip` that answers. */
  scanReplicas(
    hashMin: bigint,
    hashMax: bigint,
    filter?: ScanFilter,
    skip?: string,
  ): Promise<ScannedRecord[]> {
    return this.#replication.scanReplicas(
      hashMin,
      hashMax,
      filter,
      skip,
      AbortSignal.timeout(this.#options.callTimeout),
    )
  }

  /** This peer's active vnodes, each with its other replicas (one vnode per peer): next peers of its successor list. */
  #ownedReplicaSets(): Array<{ owns(position: bigint): boolean; replicas: VnodeRef[] }> {
    return [...this.#vnodes.values()]
      .filter((vnode) => vnode.active)
      .map(({ chord }) => ({
        owns: (position: bigint) => chord.owns(position),
        replicas: distinctPeers(chord.successors, this.#config.replicationFactor - 1, this.peerId),
      }))
  }

  /** The arcs of this peer's active vnodes, with their other replicas (for repair). */
  #ownedArcs(): Array<{ ranges: Array<[bigint, bigint]>; replicas: VnodeRef[] }> {
    return [...this.#vnodes.values()]
      .filter((vnode) => vnode.active && !vnode.leaving)
      .map(({ chord, ref }) => ({
        ranges: arcRanges({ from: chord.arcStart, to: ref.id }, this.#hashSpaceSize),
        replicas: distinctPeers(chord.successors, this.#config.replicationFactor - 1, this.peerId),
      }))
  }

  /** Waits while a rollout is prepared here, so that a write is routed by the version that follows. */
  beforeWrite(): Promise<void> | undefined {
    return this.#rollout.state === 'prepared' ? this.#rollout.decided(this.#options.callTimeout) : undefined
  }

  rolloutStats(): RolloutStats {
    return this.#rollout.stats()
  }

  /**
   * A federated round over every peer of the ring and the rollout of its model; null when no peer
   * has keys. `sampleKeys` replace this peer's own keys as its contribution.
   * With a `signal`, waits for a busy ring until it aborts (see {@link ModelRollout.coordinateWhenFree}).
   */
  async retrainCluster(
    sampleKeys?: readonly NodeKey[],
    signal?: AbortSignal,
  ): Promise<ClusterRetrainOutcome | null> {
    if (this.#running === undefined) throw new NotStartedError('the overlay is not started')
    if (signal === undefined) return this.#rollout.coordinate(sampleKeys)
    return this.#rollout.coordinateWhenFree(sampleKeys, signal)
  }

  // --- rollout ---------------------------------------------------------------------------------

  /** Every peer with a vnode on the ring, this one first. */
  async #members(signal: AbortSignal): Promise<PeerRef[]> {
    const peers = new Map<string, PeerRef>([
      [this.peerId, { peerId: this.peerId, multiaddrs: this.multiaddrs() }],
    ])
    for (const vnode of await this.#walkRing(signal, undefined, true)) {
      if (!peers.has(vnode.peerId))
        peers.set(vnode.peerId, { peerId: vnode.peerId, multiaddrs: vnode.multiaddrs })
    }
    return [...peers.values()]
  }

  /**
   * Every vnode on the ring, in ring order from one of ours, not from the routing cache, which may
   * miss new vnodes. Along the successor lists, one call per `successorListLength` vnodes; or, when
   * `exact`, from each vnode to its successor: a list lags a join by a few stabilization rounds,
   * while successors are what stabilization repairs first. An exact walk also takes in a vnode's
   * predecessor when it lies between that vnode and the one before it, as stabilization would: a
   * vnode that just joined is its successor's predecessor before it is anyone's successor. A vnode
   * that moved or left since it was named is dropped and the one before it is asked again.
   */
  async #walkRing(signal: AbortSignal, start = this.localVnodes()[0], exact = false): Promise<VnodeRef[]> {
    if (start === undefined) throw new NotStartedError('the overlay has no vnode on the ring')
    const ring: VnodeRef[] = [start]
    const seen = new Set<bigint>([start.id])
    const asked = new Set<bigint>()
    let startPredecessor: VnodeRef | null = null
    // Takes in `vnode` just before ring[at] when it lies between ring[at - 1] and ring[at].
    const takeInBefore = (vnode: VnodeRef | null, at: number): boolean => {
      if (vnode === null || seen.has(vnode.id)) return false
      const before = ring[at - 1]
      const after = ring[at] ?? start
      if (!inOpenArc(vnode.id, before.id, after.id)) return false
      seen.add(vnode.id)
      ring.splice(at, 0, vnode)
      return true
    }
    for (let calls = 0; calls < 100_000; calls++) {
      // Along the lists, the farthest vnode not asked yet: the last one found, or after a failure
      // the one before it, asked again. In an exact walk, the first one not asked: a predecessor
      // just taken in is asked before the vnode that named it. Every one asked and no way round:
      // the ring as far as it goes.
      const current = exact
        ? ring.find((vnode) => !asked.has(vnode.id))
        : ring.findLast((vnode) => !asked.has(vnode.id))
      if (current === undefined) {
        // Round the ring, or into a successor pointer that lags a local join and leads back to a
        // vnode already seen: the vnode before ours may be one nobody names as successor yet.
        if (exact && takeInBefore(startPredecessor, ring.length)) continue
        return ring
      }
      asked.add(current.id)
      let neighbours: NeighbourRefs
      try {
        neighbours = await this.#ringCall(current, Neighbours, { target: current.id }, signal)
      } catch (err) {
        const gone = err instanceof VnodeUnavailableError || err instanceof PeerUnavailableError
        if (!gone || current === start) throw err
        this.#log(`ring walk: vnode ${current.id} of ${current.peerId} is gone (${(err as Error).message})`)
        const at = ring.indexOf(current)
        ring.splice(at, 1)
        asked.delete(ring[at - 1].id)
        continue
      }
      if (exact) {
        if (current === start) startPredecessor = neighbours.predecessor
        else if (takeInBefore(neighbours.predecessor, ring.indexOf(current))) {
          // Asked next, for its own predecessor; this vnode again after it, for its successor.
          asked.delete(current.id)
          continue
        }
      }
      for (const successor of neighbours.successors) {
        if (successor.id === start.id) {
          if (exact) break
          return ring
        }
        if (seen.has(successor.id)) continue
        seen.add(successor.id)
        ring.push(successor)
        if (exact) break
      }
    }
    throw new LookupFailedError('the successor lists never lead back around the ring')
  }

  /** Sends migrating records to the peers that own them now. */
  async #migrate(records: ScannedRecord[], signal: AbortSignal): Promise<void> {
    const owners = await this.findSuccessorMany(
      BigUint64Array.from(records, (record) => record.position),
      { signal },
    )
    const groups = new Map<string, { owner: VnodeRef; records: ScannedRecord[] }>()
    for (let i = 0; i < records.length; i++) {
      const group = groups.get(owners[i].peerId)
      if (group === undefined) groups.set(owners[i].peerId, { owner: owners[i], records: [records[i]] })
      else group.records.push(records[i])
    }
    await Promise.all(
      Array.from(groups.values(), async ({ owner, records: owned }) => {
        // Ownership may have come back here meanwhile: the local plane serves it as a migration too.
        await this.#plainPlane(owner).migrateRecords(owned)
      }),
    )
  }

  /** For each key, the peer that may still hold it under the previous model, while it migrates. */
  async #holdersOfKeys(keys: readonly NodeKey[]): Promise<Array<PreviousHolder | undefined>> {
    const previous = this.#learnedHash.previous
    if (previous === null) return new Array(keys.length).fill(undefined)
    const owners = await this.findSuccessorMany(
      previous.model.predictMany(this.#learnedHash.encodeManyFor(previous.model, keys)),
    )
    return owners.map((owner) => this.#holder(owner))
  }

  /** The peers that may still hold entries now placed in [hashMin, hashMax]. */
  async #holdersOfRange(hashMin: bigint, hashMax: bigint): Promise<PreviousHolder[]> {
    const previous = this.#learnedHash.previous
    if (previous === null) return []
    const keys = encodedRangeOf(this.#learnedHash.model, hashMin, hashMax)
    if (keys === null) return []
    // Encoded keys of one code say nothing about another's: then any previous holder may hold them.
    const sameCode = previous.model.sameKeyCode(this.#learnedHash.model)
    const from = sameCode ? previous.model.predict(keys.low) : 0n
    const to = sameCode ? previous.model.predict(keys.high) : this.#learnedHash.options.hashSpaceSize - 1n
    const holders = new Set<PreviousHolder>()
    for (const { owner } of await this.coveringSegments(from, to)) {
      const holder = this.#holder(owner)
      if (holder !== undefined) holders.add(holder)
    }
    return [...holders]
  }

  #holder(owner: VnodeRef): PreviousHolder | undefined {
    if (!this.#rollout.isMigrating(owner.peerId)) return undefined
    if (owner.peerId !== this.peerId) return this.#plainPlane(owner)
    const store = this.#dataPlane
    this.#localHolder ??= {
      peerId: this.peerId,
      getLocal: (keys) => store.getMany(keys),
      deleteLocal: (keys) => store.discard(keys),
      scanLocal: (hashMin, hashMax, filter) => store.scan(hashMin, hashMax, filter),
    }
    return this.#localHolder
  }

  /** Learns the model version of a peer that refused ours, once at a time per peer. */
  #catchUpWith(peer: PeerRef | { peerId: string; multiaddrs: readonly string[] }): Promise<void> {
    let running = this.#catchingUp.get(peer.peerId)
    if (running === undefined) {
      running = (async () => {
        const signal = AbortSignal.timeout(this.#options.callTimeout)
        const config = await this.#call(peer, RING_PROTOCOL, GetConfig, undefined, signal)
        this.#rollout.catchUp(config, peer)
      })()
        .catch(() => {})
        .finally(() => this.#catchingUp.delete(peer.peerId))
      this.#catchingUp.set(peer.peerId, running)
    }
    return running
  }

  // --- routing -------------------------------------------------------------------------------

  /** The arc holding `position` if a local vnode owns it or the cache knows it (counted as a hit). */
  #knownArc(position: bigint, count = true): OwnedArc<VnodeRef> | undefined {
    for (const vnode of this.#vnodes.values()) {
      if (vnode.active && vnode.chord.owns(position)) {
        if (count) this.#stats.localHits++
        return { start: vnode.chord.arcStart, owner: vnode.ref }
      }
    }
    const cached = this.#cache.find(position)
    if (cached !== undefined && count) this.#stats.cacheHits++
    return cached
  }

  /** An iterative lookup from the local vnode that precedes `position` most closely. */
  async #lookup(position: bigint, signal?: AbortSignal): Promise<LookupResult<VnodeRef>> {
    let start: LocalVnode | undefined
    for (const vnode of this.#vnodes.values()) {
      if (!vnode.active) continue
      if (
        start === undefined ||
        clockwiseDistance(vnode.ref.id, position, this.#hashSpaceSize) <
          clockwiseDistance(start.ref.id, position, this.#hashSpaceSize)
      ) {
        start = vnode
      }
    }
    const options = {
      signal,
      onUnreachable: (node: VnodeRef, err: unknown) =>
        this.#forget(node, err instanceof VnodeUnavailableError),
    }
    let result: LookupResult<VnodeRef>
    if (start !== undefined) result = await start.chord.lookup(this.#remote, position, options)
    else if (this.#handedTo !== undefined) {
      // Every vnode has left (the peer is stopping): ask the vnode that took over our last arc.
      const via = this.#handedTo
      result = await iterativeLookup(
        position,
        () => ({ kind: 'next', next: via }),
        this.#remote.step,
        options,
      )
    } else throw new NotStartedError('the overlay has no vnode on the ring')
    // A step answered by a stale successor list (before stabilization) can name one of our vnodes
    // whose arc no longer reaches `position`: vnodes joined in front of it. Go on from its predecessor.
    let named = result.owner.peerId === this.peerId ? this.#vnodes.get(result.owner.id) : undefined
    for (let hop = 0; named?.active && !named.chord.owns(position) && hop < this.#vnodes.size; hop++) {
      const before: VnodeRef | null = named.chord.predecessor
      if (before === null) break
      if (before.peerId === this.peerId) {
        named = this.#vnodes.get(before.id)
        if (named?.active && named.chord.owns(position)) {
          result = { owner: named.ref, arcStart: named.chord.arcStart, hops: result.hops }
        }
        continue
      }
      result = await iterativeLookup(
        position,
        () => ({ kind: 'next', next: before }),
        this.#remote.step,
        options,
      )
      break
    }
    this.#stats.lookups++
    this.#stats.lookupHops += result.hops
    if (result.owner.peerId !== this.peerId) this.#cache.add(result.arcStart, result.owner)
    return result
  }

  /** Caches the arcs of `owner`'s successors; false when that taught nothing new. */
  async #learnSuccessors(owner: VnodeRef, signal?: AbortSignal): Promise<boolean> {
    if (owner.peerId === this.peerId) return false
    let neighbours: NeighbourRefs
    try {
      this.#stats.rangeRoutingMessages++
      neighbours = await this.#ringCall(owner, Neighbours, { target: owner.id }, signal)
    } catch {
      signal?.throwIfAborted()
      return false
    }
    const before = this.#cache.size
    let previous = owner.id
    for (const successor of neighbours.successors) {
      if (successor.peerId !== this.peerId && successor.id !== owner.id) this.#cache.add(previous, successor)
      previous = successor.id
    }
    return this.#cache.size > before
  }

  /**
   * Drops a node that failed to answer or left: all vnodes of its peer, or only it when it is ours,
   * left gracefully, or its peer answered that it no longer runs it (it moved).
   */
  #forget(node: VnodeRef, onlyThisVnode = false): void {
    const isGone =
      node.peerId === this.peerId || onlyThisVnode
        ? (other: VnodeRef) => other.peerId === node.peerId && other.id === node.id
        : (other: VnodeRef) => other.peerId === node.peerId
    for (const vnode of this.#vnodes.values()) vnode.chord.forget(isGone)
    this.#cache.removeWhere(isGone)
  }

  // --- calls ---------------------------------------------------------------------------------

  #requireService(): DlhtService {
    if (this.#service === undefined) throw new NotStartedError('the overlay is not started')
    return this.#service
  }

  async #call<Request, Answer>(
    peer: { peerId: string; multiaddrs: readonly string[] },
    protocol: string,
    codec: MessageCodec<Request, Answer>,
    request: Request,
    signal?: AbortSignal,
  ): Promise<Answer> {
    try {
      return await this.#requireService().call(peer, protocol, codec, request, {
        signal,
        hashSpaceSize: this.#hashSpaceSize,
      })
    } catch (err) {
      if (err instanceof PeerUnavailableError) {
        this.#forget({ peerId: peer.peerId, vnodeId: -1, id: -1n, multiaddrs: [] })
      }
      throw err
    }
  }

  /** A ring call; calls to this peer's own vnodes are served in process, without a message. */
  #ringCall<Request, Answer>(
    target: VnodeRef,
    codec: MessageCodec<Request, Answer>,
    request: Request,
    signal?: AbortSignal,
  ): Promise<Answer> {
    if (target.peerId === this.peerId) {
      return this.#serveRing(codec.type, request, true) as Promise<Answer>
    }
    return this.#call(target, RING_PROTOCOL, codec, request, signal)
  }

  /**
   * Notify a (possibly remote) successor and store the entries it hands over with its answer; then
   * tell it they are stored, so that it deletes its copies (if that is lost, it asks us later).
   */
  async #notifyRemote(target: VnodeRef, candidate: VnodeRef, signal?: AbortSignal): Promise<NotifyAnswer> {
    const vnode = this.#vnodes.get(candidate.id)
    const joining = vnode !== undefined && !vnode.active && !vnode.left
    const request = { target: target.id, candidate, joining, modelVersion: this.#learnedHash.version }
    const first = await this.#ringCall(target, Notify, request, signal).catch(async (err: unknown) => {
      // Entries move only between peers on one version: learn the target's, then try again.
      if (err instanceof UnknownModelVersionError) await this.#catchUpWith(target).catch(() => {})
      throw err
    })
    const answer = first.more
      ? { ...first, records: await this.#restOfHandOver(target, candidate, first, signal) }
      : first
    if (answer.records.length > 0) {
      this.#stats.takenOver += answer.records.length
      if (vnode !== undefined && !vnode.left) {
        await this.#dataPlane.merge(answer.records)
        // A joining vnode is not active yet: its arc is the one the answer hands over. Not awaited:
        // a join holds the transition gate, which sending on to this peer's own vnodes would need.
        const arcStart = answer.accepted ? answer.previousArcStart : candidate.id
        void this.#sendOnMisplaced(
          answer.records,
          (position) => this.#ownsLocally(position) || inHalfOpenArc(position, arcStart, candidate.id),
        )
      } else {
        // The vnode left while the answer was on its way: the entries go to whoever owns them now.
        await this.#migrate(
          this.#placed(answer.records),
          signal ?? AbortSignal.timeout(this.#options.callTimeout),
        )
      }
    }
    if (answer.accepted && (joining || answer.records.length > 0) && target.peerId !== this.peerId) {
      await this.#ringCall(target, HandOverTaken, { target: target.id, candidate }, signal).catch(() => {})
    }
    return answer
  }

  /** Every entry of a notify answer that held only the first of them, fetched frame by frame. */
  async #restOfHandOver(
    target: VnodeRef,
    candidate: VnodeRef,
    first: NotifyAnswer,
    signal?: AbortSignal,
  ): Promise<ScannedRecord[]> {
    const records = [...first.records]
    for (let more = first.more; more; ) {
      const part = await this.#ringCall(
        target,
        HandOverRecords,
        { target: target.id, candidate, from: records.length },
        signal,
      )
      if (part.records.length === 0 && part.more)
        throw new JoinFailedError(`vnode ${target.id} answered an empty part of a hand-over`)
      records.push(...part.records)
      more = part.more
    }
    return records
  }

  /** `records` with their positions under this peer's model version. */
  #placed(records: readonly ScannedRecord[]): ScannedRecord[] {
    const positions = this.#learnedHash.model.predictMany(
      this.#learnedHash.encodeMany(records.map((record) => record.key)),
    )
    return records.map((record, i) => ({ ...record, position: positions[i] }))
  }

  /**
   * Hand-over entries this peer does not own under its model version (mid-rollout, the giver
   * placed them by another one) go on to their owners, as a migration would move them; if that
   * fails they stay here, where the next migration finds them.
   */
  async #sendOnMisplaced(
    records: readonly ScannedRecord[],
    owns: (position: bigint) => boolean,
  ): Promise<void> {
    const misplaced = this.#placed(records).filter((record) => !owns(record.position))
    if (misplaced.length === 0) return
    try {
      await this.#migrate(misplaced, AbortSignal.timeout(LEAVE_PATIENCE_TIMEOUTS * this.#options.callTimeout))
      await this.#gate.exclusive(() => this.#dataPlane.removeCopies(misplaced, owns))
    } catch (err) {
      this.#log(`${misplaced.length} entries handed over here belong elsewhere and stay for now: ${err}`)
    }
  }

  // --- serving -------------------------------------------------------------------------------

  async #handle(
    protocol: string,
    type: number,
    body: unknown,
    signal: AbortSignal,
    remotePeer?: string,
  ): Promise<unknown> {
    const ring = protocol === RING_PROTOCOL
    const codec = (ring ? RING_CODECS : DATA_CODECS).find((candidate) => candidate.type === type)
    if (codec === undefined)
      throw new UnknownMessageError(`unknown ${ring ? 'ring' : 'data'} message ${type}`)
    const request = codec.readRequest(body, this.#hashSpaceSize)
    await this.#authority.check(protocol, type, request, remotePeer, signal)
    try {
      return codec.writeAnswer(
        await (ring
          ? this.#serveRing(type, request, false)
          : this.#serveData(type, request, signal, remotePeer)),
      )
    } catch (err) {
      // The caller only learns that the handler failed: the operator should learn why.
      if (!(err instanceof DlhtError))
        this.#log(`serving ${ring ? 'ring' : 'data'} message ${type} failed: ${(err as Error)?.stack ?? err}`)
      throw err
    }
  }

  /** Serves a data request (decoded), from a peer or re-routed from here. */
  async #serveData(type: number, request: unknown, signal: AbortSignal, from?: string): Promise<unknown> {
    if (Replication.MESSAGES.has(type)) return this.#replication.serve(type, request)
    await this.#agreeOnVersion((request as DataRequest).modelVersion, from, WRITES.has(type))
    switch (type) {
      case Put.type:
        return this.#servePut(request as PutRequest, signal)
      case Get.type:
        return this.#serveGet(request as KeysRequest, signal)
      case Delete.type:
        return this.#serveDelete(request as KeysRequest, signal)
      case Scan.type:
        return this.#serveScan(request as ScanRequest, signal)
      case Migrate.type:
        return this.#servePut(request as PutRequest, signal, true)
      case GetLocal.type: {
        const { keys } = request as KeysRequest
        const values = await this.#dataPlane.getMany(keys.map((item) => item.key))
        return { values: valuesWithin(values, this.#frameBudget), misrouted: 0 }
      }
      case DeleteLocal.type: {
        const { keys } = request as KeysRequest
        return { present: await this.#dataPlane.discard(keys.map((item) => item.key)), misrouted: 0 }
      }
      case ScanLocal.type: {
        const { hashMin, hashMax, filter, maxBytes, after } = request as ScanRequest
        const records = this.#dataPlane.scanSync(hashMin, hashMax, filter ?? undefined)
        return this.#page(recordsAfter(records, hashMin, after, this.#ringOrder), maxBytes, null, 0)
      }
    }
    throw new UnknownMessageError(`unknown data message ${type}`)
  }

  #ringVnode(id: bigint): LocalVnode {
    const vnode = this.#vnodes.get(id)
    if (vnode === undefined) throw new VnodeUnavailableError(`peer ${this.peerId} runs no vnode at ${id}`)
    // Until its join is accepted here, its answers would be those of a lone ring owning everything.
    if (!vnode.chord.onRing) throw new VnodeUnavailableError(`vnode ${id} is still joining the ring`)
    return vnode
  }

  /** Serves a ring request (decoded); `local` when it comes from this peer's own vnodes. */
  async #serveRing(type: number, request: unknown, local: boolean): Promise<unknown> {
    switch (type) {
      case Ping.type:
        return undefined
      case GetConfig.type:
        return this.#clusterConfig()
      case Step.type: {
        const { target, position, avoid } = request as StepRequest
        return this.#ringVnode(target).chord.step(position, new Set(avoid)) satisfies StepAnswer
      }
      case Neighbours.type:
        return this.#ringVnode(
          (request as { target: bigint }).target,
        ).chord.neighbours() satisfies NeighbourRefs
      case Notify.type:
        return this.#serveNotify(request as NotifyRequest, local)
      case Leave.type:
        return this.#serveLeave(request as LeaveRequest)
      case HandOverPart.type: {
        const { target, leaving, arcStart, records } = request as HandOverPartRequest
        this.#ringVnode(target)
        this.#stagedHandOvers.add(leaveKey(leaving, arcStart), records)
        return undefined
      }
      case HandOverRecords.type: {
        const { candidate, from } = request as HandOverRecordsRequest
        const pending = this.#pendingHandOvers.get(handOverKey(candidate))
        if (pending === undefined || from > pending.records.length)
          throw new JoinFailedError(`no hand-over to ${candidate.id} is waiting here`)
        const records = recordsWithin(pending.records.slice(from), this.#frameBudget)
        return {
          records,
          more: from + records.length < pending.records.length,
        } satisfies HandOverRecordsAnswer
      }
      case HandOverTaken.type: {
        const { candidate } = request as HandOverTakenRequest
        const pending = this.#pendingHandOvers.get(handOverKey(candidate))
        if (pending !== undefined) await this.#dropHandedCopies(pending)
        return undefined
      }
      case SuccessorLeft.type: {
        const { target, leaving, successors } = request as SuccessorLeftRequest
        this.#ringVnode(target).chord.successorLeft(leaving, successors)
        this.#forget(leaving, true)
        return undefined
      }
      case Contribute.type:
        // Entries moving in a join or leave are counted once they have landed.
        await this.#gate.idle(AbortSignal.timeout(this.#options.callTimeout / 2)).catch(() => {})
        return this.#rollout.contribution((request as ContributeRequest).keyCode)
      case KeySample.type:
        return this.#rollout.keySample((request as KeySampleRequest).limit)
      case Prepare.type:
        return this.#rollout.prepare(request as PrepareRequest)
      case Commit.type:
        this.#rollout.commit(request as { version: number; digest: string })
        return undefined
      case Abort.type:
        this.#rollout.abort(request as { version: number; digest: string })
        return undefined
      case LoadSample.type: {
        const { stride, modelVersion } = request as LoadSampleRequest
        this.#requireVersion(modelVersion, undefined, 'load sample')
        return { positions: this.#dataPlane.samplePositions(stride) }
      }
      case MoveVnode.type: {
        const { from, to } = request as { from: bigint; to: bigint }
        await this.#moveVnode(from, to)
        return undefined
      }
      case RolloutStatus.type:
        return this.#rollout.status(request as RolloutStatusRequest)
    }
    throw new UnknownMessageError(`unknown ring message ${type}`)
  }

  #clusterConfig(): ClusterConfig {
    return {
      hashSpaceSize: this.#hashSpaceSize,
      modelVersion: this.#learnedHash.version,
      model: this.#learnedHash.version === 0 ? null : JSON.stringify(this.#learnedHash.toDict()),
      vnodes: this.localVnodes() as VnodeRef[],
      ...this.#rollout.config(),
    }
  }

  async #serveNotify(request: NotifyRequest, local: boolean): Promise<NotifyAnswer> {
    const vnode = this.#ringVnode(request.target)
    const { candidate } = request
    // As many entries as fit a frame; the candidate asks for the others (`HandOverRecords`).
    const answer = (records: ScannedRecord[], outcome: NotifyOutcome<VnodeRef>): NotifyAnswer => {
      const sent = recordsWithin(records, this.#frameBudget)
      return {
        accepted: outcome.accepted,
        previousPredecessor: outcome.previousPredecessor,
        previousArcStart: outcome.previousArcStart,
        records: sent,
        more: sent.length < records.length,
      }
    }
    const predecessor = vnode.chord.lastKnownPredecessor
    if (predecessor?.id === candidate.id) {
      // Stabilization repeats notify every round: one that changes nothing needs no hand-over.
      if (!request.joining) return answer([], vnode.chord.notify(candidate))
      // A joiner asking again lost our first answer: send it again, entries included.
      const pending = this.#pendingHandOvers.get(handOverKey(candidate))
      if (pending === undefined || predecessor.peerId !== candidate.peerId)
        throw new JoinFailedError(`position ${candidate.id} is already taken on the ring`)
      vnode.chord.notify(candidate)
      return this.#gate.exclusive(async () =>
        answer([...pending.records], {
          accepted: true,
          previousPredecessor: pending.previousPredecessor,
          previousArcStart: pending.arc.from,
        }),
      )
    }
    return this.#gate.exclusive(async () => {
      if (vnode.leaving)
        throw new HandOverRefusedError(`vnode ${vnode.ref.id} is leaving; join next to its successor`)
      if (this.#departedRecently(candidate.id))
        throw new HandOverRefusedError(`vnode ${candidate.id} handed its arc here a moment ago`)
      // Entries of an arc are chosen by position: the candidate must place them as we do.
      if (!local && inOpenArc(candidate.id, vnode.chord.arcStart, vnode.ref.id))
        this.#requireVersion(request.modelVersion, candidate.peerId, 'hand-over')
      const outcome = vnode.chord.notify(candidate)
      if (outcome.handedOver === null || local) return answer([], outcome)
      this.#cache.add(outcome.handedOver.from, candidate)
      // Copied, not moved: deleted here once the candidate says it stored them (or is seen on the ring).
      const records = this.#copyArc(outcome.handedOver)
      this.#pendingHandOvers.set(handOverKey(candidate), {
        candidate,
        arc: outcome.handedOver,
        records,
        previousPredecessor: outcome.previousPredecessor,
        at: performance.now(),
      })
      this.#stats.handedOver += records.length
      return answer(records, outcome)
    })
  }

  /**
   * Deletes the copies of entries handed over in a notify answer, except those this peer owns
   * again (the candidate failed and the ring gave the arc back, or another vnode of ours took part).
   */
  async #dropHandedCopies(pending: PendingHandOver): Promise<void> {
    const key = handOverKey(pending.candidate)
    if (this.#pendingHandOvers.get(key) !== pending) return
    this.#pendingHandOvers.delete(key)
    await this.#gate.exclusive(async () => {
      await this.#dataPlane.removeCopies(pending.records, (position) => this.#ownsLocally(position))
    })
  }

  /**
   * Hand-overs whose candidate never said it stored the entries (the message was lost): once it is
   * seen on the ring it has them (a join stores them before it ends), so the copies go; a candidate
   * that is gone leaves them here, where the ring gives the arc back.
   */
  async #settleHandOvers(signal: AbortSignal): Promise<void> {
    const horizon = performance.now() - Math.max(4 * this.#options.callTimeout, 3 * this.#stabilizeMs)
    for (const pending of [...this.#pendingHandOvers.values()]) {
      if (pending.at > horizon || signal.aborted) continue
      const { candidate } = pending
      const alive = await this.#ringCall(candidate, Neighbours, { target: candidate.id }, signal).then(
        () => true,
        () => false,
      )
      if (alive) await this.#dropHandedCopies(pending)
      else this.#pendingHandOvers.delete(handOverKey(candidate))
    }
  }

  /**
   * Takes over the arc of a leaving predecessor, with its entries. Refused unless our arc starts
   * at the leaving vnode (else the entries would sit where no lookup leads) and while we are
   * leaving ourselves. A Leave repeated because its answer was lost is acknowledged and not stored
   * again: writes may have landed here since.
   */
  async #serveLeave(request: LeaveRequest): Promise<undefined> {
    const vnode = this.#ringVnode(request.target)
    const { leaving } = request
    const handOver = leaveKey(leaving, request.arcStart)
    // Entries that did not fit the Leave's frame came ahead of it.
    const staged = this.#stagedHandOvers.take(handOver)
    if (this.#handOversTaken.has(handOver)) return undefined
    const records = staged.length === 0 ? request.records : [...staged, ...request.records]
    await this.#gate.exclusive(async () => {
      if (!vnode.active || vnode.leaving || vnode.chord.arcStart !== leaving.id) {
        throw new HandOverRefusedError(
          `vnode ${vnode.ref.id} (arc from ${vnode.chord.arcStart}${vnode.leaving ? ', leaving' : ''}) cannot take the arc of ${leaving.id}`,
        )
      }
      if (records.length > 0) this.#requireVersion(request.modelVersion, leaving.peerId, 'hand-over')
      this.#handOversTaken.add(handOver)
      if (this.#handOversTaken.size > REMEMBERED_HAND_OVERS)
        this.#handOversTaken.delete(this.#handOversTaken.values().next().value as string)
      this.#departed.set(leaving.id, performance.now())
      vnode.chord.predecessorLeft(leaving, request.predecessor, request.arcStart)
      if (records.length > 0) {
        await this.#dataPlane.merge(records)
        this.#stats.takenOver += records.length
      }
    })
    this.#forget(leaving, true)
    if (records.length > 0) {
      const owns = (position: bigint) => this.#ownsLocally(position)
      void this.#sendOnMisplaced(records, owns)
    }
    return undefined
  }

  /**
   * Whether vnode `id` handed its arc to one of ours within the last call timeout: longer than a
   * notify it sent before leaving can take to arrive (a join at the same id is retried meanwhile).
   */
  #departedRecently(id: bigint): boolean {
    const horizon = performance.now() - this.#options.callTimeout
    for (const [departed, at] of this.#departed) if (at < horizon) this.#departed.delete(departed)
    return this.#departed.has(id)
  }

  #copyArc(arc: Arc): ScannedRecord[] {
    const records: ScannedRecord[] = []
    for (const [from, to] of arcRanges(arc, this.#hashSpaceSize))
      records.push(...this.#dataPlane.scanStamped(from, to))
    return records
  }

  /**
   * Serves a request only under the version it was routed by: a newer version prepared here is
   * committed at once; any other mismatch is refused (and a newer one learnt from the sender). A
   * write under the current version waits for a prepared one to be committed or aborted: accepted
   * after some peer committed, it could land behind a newer write made under the new version.
   */
  async #agreeOnVersion(version: number, from: string | undefined, write: boolean): Promise<void> {
    // A write under the current version waits while a newer one is prepared (see `decided`).
    if (write && version === this.#learnedHash.version)
      await this.#rollout.decided(this.#options.callTimeout / 2)
    this.#requireVersion(version, from, 'request')
  }

  /** The version check of `#agreeOnVersion`, synchronous: a newer prepared version is committed. */
  #requireVersion(version: number, from: string | undefined, what: string): void {
    const current = this.#learnedHash.version
    if (version === current || (version > current && this.#rollout.commitPrepared(version))) return
    if (version > current && from !== undefined) void this.#catchUpWith({ peerId: from, multiaddrs: [] })
    throw new UnknownModelVersionError(
      `${what} placed with model version ${version}, this peer uses ${current}: ${MODEL_VERSION_HINT}`,
    )
  }

  #ownsLocally(position: bigint): boolean {
    for (const vnode of this.#vnodes.values()) if (vnode.active && vnode.chord.owns(position)) return true
    return false
  }

  /** Splits items into those this peer owns and those to forward (which need a hop left). */
  #partition<T extends { position: bigint }>(
    items: readonly T[],
    ttl: number,
  ): { owned: number[]; foreign: number[] } {
    const owned: number[] = []
    const foreign: number[] = []
    for (let i = 0; i < items.length; i++) (this.#ownsLocally(items[i].position) ? owned : foreign).push(i)
    if (foreign.length > 0 && ttl === 0) {
      throw new LookupFailedError(
        `${foreign.length} items reached a peer that does not own them, with no hop left`,
      )
    }
    this.#stats.forwardedItems += foreign.length
    return { owned, foreign }
  }

  /** Groups items by the peer that owns them now, for forwarding. */
  async #byOwner<T extends { position: bigint }>(
    items: readonly T[],
    indexes: readonly number[],
    signal: AbortSignal,
  ): Promise<Map<RemoteDataPlane, number[]>> {
    const owners = await this.findSuccessorMany(
      BigUint64Array.from(indexes, (i) => items[i].position),
      { signal },
    )
    const groups = new Map<RemoteDataPlane, number[]>()
    for (let j = 0; j < indexes.length; j++) {
      const owner = owners[j]
      if (owner.peerId === this.peerId) {
        // Someone's tables still name a vnode of ours that left or is not active: drop it here
        // (the caller routes again a moment later, once stabilization has repaired the others).
        if (!this.#vnodes.get(owner.id)?.active) this.#forget(owner)
        throw new LookupFailedError('routing sent a forwarded request back here')
      }
      const plane = this.#plainPlane(owner)
      const group = groups.get(plane)
      if (group === undefined) groups.set(plane, [indexes[j]])
      else group.push(indexes[j])
    }
    return groups
  }

  /**
   * Stores the records this peer owns and forwards the others. A migration (`migrating`) keeps
   * keys written here since the rollout began and forwards as a migration too.
   */
  async #servePut(request: PutRequest, signal: AbortSignal, migrating = false): Promise<DataAnswer> {
    const { records, ttl } = request
    const { foreign, stored } = await this.#gate.shared(async () => {
      const parts = this.#partition(records, ttl)
      const mine = parts.owned.map((i) => records[i])
      let stored: ScannedRecord[] = []
      if (mine.length > 0)
        stored = await (migrating ? this.#dataPlane.putUntouched(mine) : this.#dataPlane.write(mine))
      return { ...parts, stored }
    }, signal)
    const forward = async () => {
      const groups = await this.#byOwner(records, foreign, signal)
      await Promise.all(
        [...groups].map(([plane, indexes]) => {
          const forwarded = indexes.map((i) => records[i])
          return migrating ? plane.migrateRecords(forwarded, ttl - 1) : plane.putRecords(forwarded, ttl - 1)
        }),
      )
    }
    await Promise.all([this.#replication.replicate(stored), forward()])
    return { misrouted: foreign.length }
  }

  async #serveGet(request: KeysRequest, signal: AbortSignal): Promise<GetAnswer> {
    const { keys, ttl } = request
    const values: Array<Uint8Array | undefined> = new Array(keys.length)
    const { foreign } = await this.#gate.shared(async () => {
      const parts = this.#partition(keys, ttl)
      const local = await this.#dataPlane.getMany(parts.owned.map((i) => keys[i].key))
      for (let j = 0; j < parts.owned.length; j++) values[parts.owned[j]] = local[j]
      return parts
    }, signal)
    await this.#forwardKeys(
      keys,
      foreign,
      signal,
      async (plane, placed) => plane.getKeys(placed, ttl - 1),
      values,
    )
    // A prefix when the values exceed a frame: the caller asks again for the rest.
    return {
      values: valuesWithin(values, this.#frameBudget),
      misrouted: foreign.length,
    }
  }

  async #serveDelete(request: KeysRequest, signal: AbortSignal): Promise<DeleteAnswer> {
    const { keys, ttl } = request
    const present: boolean[] = new Array(keys.length)
    const { foreign, tombstones } = await this.#gate.shared(async () => {
      const parts = this.#partition(keys, ttl)
      const local = await this.#dataPlane.erase(parts.owned.map((i) => keys[i]))
      for (let j = 0; j < parts.owned.length; j++) present[parts.owned[j]] = local.present[j]
      return { ...parts, tombstones: local.tombstones }
    }, signal)
    await Promise.all([
      this.#replication.replicate(tombstones),
      this.#forwardKeys(
        keys,
        foreign,
        signal,
        async (plane, placed) => plane.deleteKeys(placed, ttl - 1),
        present,
      ),
    ])
    return { present, misrouted: foreign.length }
  }

  async #forwardKeys<R>(
    keys: readonly PlacedKey[],
    foreign: readonly number[],
    signal: AbortSignal,
    send: (plane: RemoteDataPlane, placed: PlacedKey[]) => Promise<R[]>,
    results: R[],
  ): Promise<void> {
    const groups = await this.#byOwner(keys, foreign, signal)
    await Promise.all(
      [...groups].map(async ([plane, indexes]) => {
        const answers = await send(
          plane,
          indexes.map((i) => keys[i]),
        )
        for (let j = 0; j < indexes.length; j++) results[indexes[j]] = answers[j]
      }),
    )
  }

  /** Scans the pieces of the range this peer owns, forwards the others, and pages the result. */
  async #serveScan(request: ScanRequest, signal: AbortSignal): Promise<ScanAnswer> {
    const { hashMin, hashMax, filter, ttl, maxBytes, after } = request
    // The pieces owned here are read together, with no hand-over in between; others go on later.
    const pieces = await this.#gate.shared(
      async () =>
        this.#ownedPieces(hashMin, hashMax).map((piece) => ({
          ...piece,
          found: piece.local ? this.#dataPlane.scanSync(piece.from, piece.to, filter ?? undefined) : null,
        })),
      signal,
    )
    const records: ScannedRecord[] = []
    let bytes = 0
    let misrouted = 0
    for (const piece of pieces) {
      if (bytes > Math.min(maxBytes, this.#frameBudget))
        return this.#page(records, maxBytes, piece.from, misrouted)
      let found: ScannedRecord[]
      if (piece.found !== null) found = piece.found
      else {
        if (ttl === 0)
          throw new LookupFailedError('a scan reached a peer that does not own it, with no hop left')
        misrouted++
        found = await this.#scanRouted(piece.from, piece.to, filter, ttl - 1, signal)
      }
      found = recordsAfter(found, hashMin, after, this.#ringOrder)
      for (const record of found) bytes += recordBytes(record)
      records.push(...found)
    }
    return this.#page(records, maxBytes, null, misrouted)
  }

  /** Cuts records at `maxBytes` (at most what fits a frame); `next` is where the range goes on. */
  #page(records: ScannedRecord[], maxBytes: number, next: bigint | null, misrouted: number): ScanAnswer {
    return {
      ...pageOf(records, Math.min(maxBytes, this.#frameBudget), next),
      misrouted,
    }
  }

  /** The order of keys within one ring position, as the store keeps them: by encoding, then by key. */
  readonly #ringOrder = (a: NodeKey, b: NodeKey): number =>
    this.#learnedHash.encode(a) - this.#learnedHash.encode(b) || compareAnyKeys(a, b)

  async #scanRouted(
    hashMin: bigint,
    hashMax: bigint,
    filter: ScanFilter | null,
    ttl: number,
    signal: AbortSignal,
  ): Promise<ScannedRecord[]> {
    const segments = await this.coveringSegments(hashMin, hashMax, { signal })
    const pages = await Promise.all(
      segments.map((segment) =>
        segment.owner.peerId === this.peerId
          ? this.#dataPlane.scan(segment.hashMin, segment.hashMax, filter ?? undefined)
          : this.#plainPlane(segment.owner).scanRange(segment.hashMin, segment.hashMax, filter, ttl),
      ),
    )
    return pages.flat()
  }

  /** `[hashMin, hashMax]` cut into pieces this peer owns and pieces it does not, in order. */
  #ownedPieces(hashMin: bigint, hashMax: bigint): Array<{ from: bigint; to: bigint; local: boolean }> {
    const localArc = (position: bigint): OwnedArc<VnodeRef> | undefined => {
      for (const vnode of this.#vnodes.values()) {
        if (vnode.active && vnode.chord.owns(position))
          return { start: vnode.chord.arcStart, owner: vnode.ref }
      }
      return undefined
    }
    const size = this.#hashSpaceSize
    const pieces: Array<{ from: bigint; to: bigint; local: boolean }> = []
    let cursor = hashMin
    for (;;) {
      const walk = rangeWalk(cursor, hashMax, localArc, size)
      for (const segment of walk.segments) pieces.push({ from: segment.from, to: segment.to, local: true })
      if (walk.unknownFrom === undefined) return pieces
      const gapStart = walk.unknownFrom
      const remaining = clockwiseDistance(gapStart, hashMax, size)
      let nextOwned: bigint | undefined
      for (const vnode of this.#vnodes.values()) {
        if (!vnode.active) continue
        const first = (vnode.chord.arcStart + 1n) % size
        const distance = clockwiseDistance(gapStart, first, size)
        if (distance > 0n && distance <= remaining) {
          if (nextOwned === undefined || distance < clockwiseDistance(gapStart, nextOwned, size))
            nextOwned = first
        }
      }
      if (nextOwned === undefined) {
        pieces.push({ from: gapStart, to: hashMax, local: false })
        return pieces
      }
      pieces.push({ from: gapStart, to: nextOwned - 1n, local: false })
      cursor = nextOwned
    }
  }

  // --- joining, maintenance, leaving -----------------------------------------------------------

  #newVnode(index: number, id = vnodePosition(this.peerId, index, this.#hashSpaceSize)): LocalVnode {
    const ref: VnodeRef = {
      peerId: this.peerId,
      vnodeId: index,
      id,
      multiaddrs: this.multiaddrs(),
    }
    const vnode = {
      ref,
      chord: new ChordVnode(ref, {
        hashSpaceSize: this.#hashSpaceSize,
        successorListLength: this.#options.successorListLength,
      }),
      active: false,
      leaving: false,
      left: false,
    }
    this.#vnodes.set(ref.id, vnode)
    return vnode
  }

  async #joinRing(signal: AbortSignal): Promise<void> {
    const count = this.#config.numVirtualNodes
    let entry: VnodeRef
    let first = 0
    if (this.#config.bootstrapPeer === null) {
      const founder = this.#newVnode(0)
      founder.active = true
      entry = founder.ref
      first = 1
    } else {
      const address = bootstrapAddress(this.#config.bootstrapPeer)
      const { bootstrap, config } = await this.#askToJoin(address, signal)
      this.#adoptClusterConfig(config, bootstrap)
      entry = config.vnodes[0]
      if (entry === undefined) throw new JoinFailedError('the bootstrap peer has no vnode on the ring yet')
    }
    const ids =
      first === 0 && this.#options.vnodePlacement === 'load'
        ? await this.#loadAwareIds(entry, count, signal)
        : []
    for (let index = first; index < count; index++)
      await this.#joinVnode(this.#newVnode(index, ids[index]), entry, signal)
  }

  /**
   * Connects to the bootstrap peer and reads the ring's configuration.
   * @throws MembershipRefusedError when the ring refuses this node (swarm key, allow-lists)
   */
  async #askToJoin(
    address: Multiaddr,
    signal: AbortSignal,
  ): Promise<{ bootstrap: PeerAddress; config: ClusterConfig }> {
    try {
      const bootstrap = await this.#requireService().connect(address, { signal })
      return { bootstrap, config: await this.#call(bootstrap, RING_PROTOCOL, GetConfig, undefined, signal) }
    } catch (err) {
      throw explainJoinFailure(err, address.toString(), {
        swarmKey: this.#config.swarmKey !== null,
        allowedPeers: this.#config.allowedPeers !== null,
      })
    }
  }

  /**
   * Ids for this peer's vnodes that cut the arcs carrying the most keys (`chooseVnodeIds`), from a
   * walk of the ring and a profile of its key positions; empty (hashed ids) while the ring holds
   * no keys. Two passes: a coarse one to count keys, then one at the stride that gives about
   * PROFILE_POSITIONS positions in all.
   */
  async #loadAwareIds(entry: VnodeRef, count: number, signal: AbortSignal): Promise<bigint[]> {
    const vnodes = await this.#walkRing(signal, entry)
    const peers = [...new Map(vnodes.map((vnode) => [vnode.peerId, vnode])).values()]
    const modelVersion = this.#learnedHash.version
    const sample = (stride: number) =>
      Promise.all(
        peers.map(
          async (peer) =>
            (await this.#call(peer, RING_PROTOCOL, LoadSample, { stride, modelVersion }, signal)).positions,
        ),
      )
    let stride = COARSE_STRIDE
    let positions: bigint[][]
    try {
      positions = await sample(stride)
      const estimatedKeys = positions.reduce((sum, some) => sum + some.length, 0) * stride
      if (estimatedKeys === 0) return []
      const fine = Math.max(1, Math.ceil(estimatedKeys / PROFILE_POSITIONS))
      if (fine < stride) {
        stride = fine
        positions = await sample(stride)
      }
    } catch (err) {
      // Mid-rollout the peers place keys by different models: hashed ids now, the rollout's
      // rebalance places them by load later.
      if (!(err instanceof UnknownModelVersionError)) throw err
      this.#log(`vnode ids hashed, not placed by load: ${err.message}`)
      return []
    }
    const profile = LoadProfile.fromPositions(positions.flat(), this.#hashSpaceSize, stride)
    const ring = vnodes.map((vnode) => ({ id: vnode.id, peer: vnode.peerId }))
    // Cuts fall on sampled key positions, as do a rebalance's moves: a small offset of this peer's
    // own keeps a join and a concurrent move from picking the very same id.
    const offsets = bigMin(ID_OFFSET_RANGE, bigMax(1n, this.#hashSpaceSize >> 32n))
    return chooseVnodeIds(ring, profile, this.peerId, count).map(
      (id, index) => (id + 1n + vnodePosition(this.peerId, index, offsets)) % this.#hashSpaceSize,
    )
  }

  #adoptClusterConfig(config: ClusterConfig, source: PeerAddress): void {
    if (config.hashSpaceSize !== this.#hashSpaceSize) {
      throw new InvalidConfigError(
        'hashSpaceSize',
        `is ${this.#hashSpaceSize} but the ring of the bootstrap peer uses ${config.hashSpaceSize}`,
      )
    }
    this.#rollout.catchUp(config, source)
  }

  /** Joins one vnode, retrying while the ring is still settling around its place. */
  async #joinVnode(vnode: LocalVnode, via: VnodeRef, signal: AbortSignal): Promise<void> {
    const attempts = 10
    await this.#gate.exclusive(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await vnode.chord.join(this.#remote, via, {
            signal,
            onUnreachable: (node, err) => this.#forget(node, err instanceof VnodeUnavailableError),
          })
          vnode.active = true
          return
        } catch (err) {
          signal.throwIfAborted()
          const retry =
            err instanceof JoinFailedError ||
            err instanceof LookupFailedError ||
            err instanceof UnknownModelVersionError ||
            (err instanceof DlhtError && err.code === HandOverRefusedError.code)
          if (attempt >= attempts || !retry) {
            this.#vnodes.delete(vnode.ref.id)
            throw err
          }
          await sleep(Math.min(1000, Math.max(50, this.#stabilizeMs / 2)), signal)
        }
      }
    })
  }

  /** Runs check-predecessor, stabilize and fix-fingers on every vnode, every stabilize interval. */
  async #maintain(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(this.#stabilizeMs, signal)
      for (const vnode of [...this.#vnodes.values()]) {
        if (signal.aborted) return
        // A leaving vnode must not notify: its successor could hand the arc being handed to it back.
        if (!vnode.active || vnode.leaving) continue
        const options = {
          signal,
          onUnreachable: (node: VnodeRef, err: unknown) =>
            this.#forget(node, err instanceof VnodeUnavailableError),
        }
        try {
          await vnode.chord.checkPredecessor(this.#remote, options)
          await vnode.chord.stabilize(this.#remote, options)
          await vnode.chord.fixFingers(this.#remote, options)
        } catch {
          // Aborted by stop(), or a neighbour failed mid-round: the next round repairs it.
        }
      }
      if (this.#rollout.migrating && !signal.aborted) await this.#rollout.poll(signal).catch(() => {})
      if (this.#pendingHandOvers.size > 0) await this.#settleHandOvers(signal)
    }
  }

  /** Moves a local vnode to `to`: it leaves (handing its arc over) and joins the ring again there. */
  async #moveVnode(from: bigint, to: bigint): Promise<void> {
    const signal = this.#running?.signal
    if (signal === undefined) throw new NotStartedError('the overlay is not started')
    const vnode = this.#vnodes.get(from)
    if (vnode === undefined || !vnode.active)
      throw new VnodeUnavailableError(`peer ${this.peerId} runs no vnode at ${from}`)
    if (this.#vnodes.has(to))
      throw new InvalidArgumentError(`peer ${this.peerId} already runs a vnode at ${to}`)
    const via = vnode.chord.successors.find((successor) => successor.id !== from)
    if (via === undefined) throw new JoinFailedError('a vnode alone on the ring has nowhere to move')
    await this.#leaveVnode(
      vnode,
      AbortSignal.any([signal, AbortSignal.timeout(LEAVE_PATIENCE_TIMEOUTS * this.#options.callTimeout)]),
    )
    if (vnode.active) throw new JoinFailedError(`vnode ${from} could not hand its arc over`)
    this.#vnodes.delete(from)
    await this.#joinVnode(this.#newVnode(vnode.ref.vnodeId, to), via, signal)
  }

  /**
   * After a rollout: a profile of where the keys now lie (every `stride`-th position of each
   * peer), then the vnode moves `planRebalance` proposes, one after the other. A move the ring no
   * longer fits (its vnode left or moved, its peer is gone: the ring changed since the walk) ends
   * that plan; a new one is made from a fresh walk, at most `REBALANCE_PLANS` in all.
   */
  async #rebalance(totalKeys: number, signal: AbortSignal): Promise<RebalanceOutcome> {
    const stride = Math.max(1, Math.ceil(totalKeys / PROFILE_POSITIONS))
    let before: number | undefined
    let moves = 0
    for (let attempt = 1; ; attempt++) {
      try {
        const { vnodes, profile } = await this.#loadProfile(stride, signal)
        const plan = planRebalance(
          vnodes.map((vnode) => ({ id: vnode.id, peer: vnode.peerId })),
          profile,
        )
        before ??= plan.before
        const peers = new Map(vnodes.map((vnode) => [vnode.peerId, vnode]))
        for (const move of plan.moves) {
          await this.#runMove(peers.get(move.peer) as VnodeRef, move, signal)
          moves++
        }
        return { before, after: plan.after, moves, vnodes: vnodes.length, profiled: profile.total }
      } catch (err) {
        signal.throwIfAborted()
        if (!(err instanceof DlhtError) || attempt >= REBALANCE_PLANS) throw err
        this.#log(`rebalance plan ${attempt} went stale (${err.message}): planning again`)
        // A few stabilization rounds, so that the next walk sees the ring as it now is.
        await sleep(3 * Math.min(this.#stabilizeMs, 1000), signal)
      }
    }
  }

  /** The ring's vnodes and where its keys lie: every `stride`-th key position of each peer. */
  async #loadProfile(
    stride: number,
    signal: AbortSignal,
  ): Promise<{ vnodes: VnodeRef[]; profile: LoadProfile }> {
    const vnodes = await this.#walkRing(signal, undefined, true)
    const peers = new Map(vnodes.map((vnode) => [vnode.peerId, vnode]))
    const samples = await Promise.all(
      [...peers.values()].map(async (peer) =>
        peer.peerId === this.peerId
          ? this.#dataPlane.samplePositions(stride)
          : (
              await this.#call(
                peer,
                RING_PROTOCOL,
                LoadSample,
                { stride, modelVersion: this.#learnedHash.version },
                signal,
              )
            ).positions,
      ),
    )
    return { vnodes, profile: LoadProfile.fromPositions(samples.flat(), this.#hashSpaceSize, stride) }
  }

  /** One move of a plan on the peer that runs it, then a wait until the walk shows it. */
  async #runMove(peer: VnodeRef, move: VnodeMove, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted()
    if (peer.peerId === this.peerId) await this.#moveVnode(move.from, move.to)
    else await this.#call(peer, RING_PROTOCOL, MoveVnode, { from: move.from, to: move.to }, signal)
    // Let stabilization repair successor lists around the move before the next one.
    for (let waited = 0; waited < 20; waited++) {
      await sleep(Math.min(this.#stabilizeMs, 1000), signal)
      const ids = new Set((await this.#walkRing(signal)).map((vnode) => vnode.id))
      if (ids.has(move.to) && !ids.has(move.from)) break
    }
  }

  /** Hands every vnode's arc and entries to its successor and tells its predecessor. */
  async #leaveRing(signal: AbortSignal): Promise<void> {
    for (const vnode of [...this.#vnodes.values()]) {
      if (vnode.active) await this.#leaveVnode(vnode, signal)
      this.#vnodes.delete(vnode.ref.id)
    }
  }

  /**
   * The vnode whose arc starts at `ref`, from an entry of ref's successor list: before stabilization
   * has run, vnodes that joined in between are missing from the list, so follow predecessors back
   * (the arc must go to the vnode that holds it, or its entries would sit where no lookup leads).
   */
  async #arcSuccessor(ref: VnodeRef, listed: VnodeRef, signal: AbortSignal): Promise<VnodeRef> {
    let candidate = listed
    for (let hop = 0; hop < 2 * this.#options.successorListLength; hop++) {
      const { arcStart, predecessor } = await this.#ringCall(
        candidate,
        Neighbours,
        { target: candidate.id },
        signal,
      )
      if (arcStart === ref.id || predecessor === null || predecessor.id === ref.id) return candidate
      const size = this.#hashSpaceSize
      const between =
        clockwiseDistance(ref.id, predecessor.id, size) < clockwiseDistance(ref.id, candidate.id, size)
      if (!between) return candidate
      candidate = predecessor
    }
    return candidate
  }

  /**
   * Hands the vnode's arc and entries to the vnode that follows it, then tells its predecessor.
   * The entries are copied, and deleted here only once the successor has taken them: until then
   * this peer still serves them (data operations wait while the hand-over runs, see TransitionGate).
   * Gives up when `signal` aborts; a vnode with no other vnode left on the ring has no one to hand to.
   */
  async #leaveVnode(vnode: LocalVnode, signal: AbortSignal): Promise<void> {
    const { chord, ref } = vnode
    vnode.leaving = true
    // Refusals last while the ring settles around a neighbour joining or leaving: keep trying,
    // a stabilization period apart, until the signal says stop.
    const pause = Math.min(1000, Math.max(100, this.#stabilizeMs))
    const outcome = await this.#gate.exclusive(async (): Promise<'handed' | 'alone' | 'gave up'> => {
      for (;;) {
        const successors = chord.successors.filter(
          (node) => node.id !== ref.id && (node.peerId !== this.peerId || this.#vnodes.get(node.id)?.active),
        )
        if (successors.length === 0) return 'alone'
        for (const listed of successors) {
          if (signal.aborted) return 'gave up'
          const attempt = await this.#handOver(vnode, listed, signal)
          if (attempt === 'handed') return 'handed'
          if (attempt === 'refused') break
        }
        await sleep(pause, signal)
        if (signal.aborted) return 'gave up'
      }
    })
    vnode.leaving = false
    if (outcome === 'gave up')
      this.#log(`vnode ${ref.id} could not hand its arc over; its entries stay on this peer`)
    if (outcome !== 'handed') return
    const predecessor = chord.predecessor
    if (predecessor !== null && predecessor.id !== ref.id) {
      await this.#ringCall(
        predecessor,
        SuccessorLeft,
        { target: predecessor.id, leaving: ref, successors: [...chord.successors] },
        signal,
      ).catch(() => {})
    }
  }

  /** One attempt to hand the vnode's arc to the vnode that holds the arc after it (see #arcSuccessor). */
  async #handOver(
    vnode: LocalVnode,
    listed: VnodeRef,
    signal: AbortSignal,
  ): Promise<'handed' | 'refused' | 'unreachable'> {
    const { chord, ref } = vnode
    const successor = await this.#arcSuccessor(ref, listed, signal).catch(() => listed)
    const remote = successor.peerId !== this.peerId
    const arc = { from: chord.arcStart, to: ref.id }
    const records = remote ? this.#copyArc(arc) : []
    // Entries beyond one frame go ahead in parts; the Leave carries the last one.
    const parts = partsWithin(records, this.#frameBudget)
    const request = {
      target: successor.id,
      leaving: ref,
      predecessor: chord.predecessor,
      arcStart: arc.from,
      records: parts[parts.length - 1],
      modelVersion: this.#learnedHash.version,
    }
    for (let attempt = 1; attempt <= 3 && !signal.aborted; attempt++) {
      try {
        for (const part of parts.slice(0, -1)) {
          const staged = { target: successor.id, leaving: ref, arcStart: arc.from, records: part }
          await this.#ringCall(successor, HandOverPart, staged, signal)
        }
        await this.#ringCall(successor, Leave, request, signal)
        vnode.active = false
        vnode.left = true
        if (remote) {
          await this.#dataPlane.removeCopies(records, (position) => this.#ownsLocally(position))
          this.#handedTo = successor
        }
        this.#stats.handedOver += records.length
        return 'handed'
      } catch (err) {
        if (err instanceof DlhtError && err.code === HandOverRefusedError.code) return 'refused'
        if (err instanceof UnknownModelVersionError) {
          // The successor places entries by another version: agree on one, then try again.
          await this.#catchUpWith(successor).catch(() => {})
          return 'refused'
        }
        // A timeout may hide a hand-over that happened: ask the same successor again (it only
        // acknowledges a repeated Leave) rather than give the entries to a second one.
        if (!(err instanceof RemoteCallTimeoutError)) return 'unreachable'
      }
    }
    return 'unreachable'
  }
}

/**
 * The Router factory for `new LeadNode(config, { router: chordRouter() })`: the node joins the
 * ring of `config.bootstrapPeer` (or starts one) over libp2p on `config.ip:config.basePort`.
 */
export function chordRouter(options: ChordRouterOptions = {}): (components: RouterComponents) => ChordRouter {
  return (components) => new ChordRouter(components, options)
}
