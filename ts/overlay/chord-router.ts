// The Chord overlay as LeadNode's Router: this peer's vnodes on a ring of libp2p peers. It builds
// and wires the overlay's parts (routing, data and ring servers, membership, migration, rollout).

import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { sleep } from '../abortable-sleep.js'
import { arcRanges } from '../chord/index.js'
import { DlhtError } from '../errors.js'
import { ModelRollout, type RolloutStats } from '../federation/model-rollout.js'
import type { RecursiveModelIndex } from '../learned/rmi.js'
import type { LeadConfig } from '../node/config.js'
import type { LearnedHash } from '../node/learned-hash.js'
import type { LocalStore } from '../node/local-store.js'
import { UnknownMessageError } from '../protocol/errors.js'
import { DATA_CODECS, DATA_PROTOCOL, GetConfig, RING_CODECS, RING_PROTOCOL } from '../protocol/messages.js'
import { distinctPeers } from '../replication/replica-set.js'
import { Replication } from '../replication/replication.js'
import type { DataPlane, ScanFilter, ScannedRecord } from '../shared/data-plane.js'
import { NotStartedError } from '../shared/errors.js'
import type { NodeKey } from '../shared/keys.js'
import type {
  ClusterRetrainOutcome,
  RangeSegment,
  RouteOptions,
  Router,
  RoutingTableStats,
  VnodeRef,
} from '../shared/router.js'
import { DataServer } from './data-server.js'
import { configuredPrivateKey } from './identity.js'
import { createDlhtLibp2p, type DlhtLibp2p } from './libp2p.js'
import { listenFailure } from './listen-errors.js'
import { LoadPlacement } from './load-placement.js'
import { Membership } from './membership.js'
import {
  type ChordRouterOptions,
  type LocalVnode,
  OverlayState,
  type OverlayStats,
  overlayOptions,
} from './overlay-state.js'
import { RingAuthority } from './ring-authority.js'
import { RingMigration } from './ring-migration.js'
import { RingServer } from './ring-server.js'
import { ringMembers, walkRing } from './ring-walk.js'
import { checkChordRouterOptions } from './router-options.js'
import { Routing } from './routing.js'
import { VersionAgreement } from './version-agreement.js'

export type { ChordRouterOptions } from './overlay-state.js'

/** What a Router factory is given: the overlay builds its router from these. */
export interface RouterComponents {
  config: Readonly<LeadConfig>
  /** This peer's store, to be served to remote peers. */
  store: LocalStore
  learnedHash: LearnedHash
  /** Called after the router installed a model from the ring (persists it, resets the training manager). */
  modelAdopted(model: RecursiveModelIndex, version: number): Promise<void>
  /** Reports something an operator should know (a refused model, a failed migration). */
  log(message: string): void
}

/**
 * How long, in call timeouts, `stop()` takes at most before libp2p stops: half of it for a
 * running rollout to settle, the rest for handing arcs over. A neighbour that is dead or leaving
 * too cannot hold a stopping peer longer.
 */
const STOP_BOUND_TIMEOUTS = 2

/**
 * A local vnode and its other replicas (one vnode per peer): the next peers of its successor list,
 * worked out when first read (a write reads those of the vnodes it falls in only).
 */
class OwnedReplicaSet {
  readonly #state: OverlayState
  readonly #vnode: LocalVnode
  #replicas: VnodeRef[] | undefined

  constructor(state: OverlayState, vnode: LocalVnode) {
    this.#state = state
    this.#vnode = vnode
  }

  owns(position: bigint): boolean {
    return this.#vnode.chord.owns(position)
  }

  get replicas(): VnodeRef[] {
    const state = this.#state
    this.#replicas ??= distinctPeers(
      state.successorsOf(this.#vnode),
      state.config.replicationFactor - 1,
      state.peerId,
    )
    return this.#replicas
  }
}

/**
 * A Router over a Chord ring of libp2p peers. `start()` creates the libp2p node (TCP on
 * `config.ip:config.basePort`), places `numVirtualNodes` vnodes and joins the ring of
 * `config.bootstrapPeer` (or starts one); `stop()` hands every entry to the successors and leaves.
 */
export class ChordRouter implements Router {
  readonly peerId: string
  readonly #state: OverlayState
  readonly #routing: Routing
  readonly #rollout: ModelRollout
  readonly #replication: Replication
  readonly #data: DataServer
  readonly #migration: RingMigration
  readonly #ringServer: RingServer
  readonly #membership: Membership
  readonly #privateKey: PrivateKey
  #libp2p: DlhtLibp2p | undefined
  #running: AbortController | undefined
  #maintenance: Promise<void> | undefined
  #repairing: Promise<void> | undefined
  /** Checks who sends each state-changing message. */
  readonly #authority: RingAuthority

  constructor(components: RouterComponents, options: ChordRouterOptions = {}) {
    checkChordRouterOptions(options, components.config)
    const config = components.config
    this.#privateKey = options.privateKey ?? configuredPrivateKey(config)
    this.peerId = peerIdFromPrivateKey(this.#privateKey).toString()
    const stabilizeMs = options.stabilizeIntervalMs ?? config.stabilizeInterval * 1000
    const state = new OverlayState({
      peerId: this.peerId,
      config,
      options: overlayOptions(options, config),
      stabilizeMs,
      store: components.store,
      learnedHash: components.learnedHash,
      log: components.log,
      serveLocalRing: (type, request) => this.#ringServer.serve(type, request, true),
    })
    this.#state = state
    this.#routing = new Routing(state, (target, candidate, signal) =>
      this.#membership.notify(target, candidate, signal),
    )
    const placement = new LoadPlacement(state, (from, to) => this.#membership.moveVnode(from, to))
    this.#rollout = new ModelRollout(
      {
        peerId: this.peerId,
        learnedHash: state.learnedHash,
        store: state.store,
        self: () => ({ peerId: this.peerId, multiaddrs: this.multiaddrs() }),
        members: (signal) => ringMembers(state, signal),
        call: (peer, codec, request, signal) => state.call(peer, RING_PROTOCOL, codec, request, signal),
        ownsLocally: (position) => state.ownsLocally(position),
        migrate: (records, signal) => this.#migration.migrate(records, signal),
        rebalance: state.options.rebalance
          ? (totalKeys, signal) => placement.rebalance(totalKeys, signal)
          : undefined,
        adopted: components.modelAdopted,
        log: components.log,
      },
      { prepareTtlMs: state.options.callTimeout * 3 },
    )
    const versions = new VersionAgreement(state, this.#rollout)
    this.#replication = this.#newReplication(state, options, components.log)
    if (this.#replication.enabled) state.store.retainCopies((position) => this.#replication.holds(position))
    this.#data = new DataServer(state, this.#routing, versions, this.#replication)
    this.#migration = new RingMigration(state, this.#routing, this.#data, this.#rollout)
    this.#ringServer = new RingServer({
      state,
      versions,
      rollout: this.#rollout,
      migration: this.#migration,
      moveVnode: (from, to) => this.#membership.moveVnode(from, to),
    })
    this.#membership = new Membership({
      state,
      routing: this.#routing,
      versions,
      rollout: this.#rollout,
      migration: this.#migration,
      ringServer: this.#ringServer,
      placement,
      running: () => this.#running?.signal,
    })
    this.#authority = this.#newAuthority(state)
  }

  /** Replication of this peer's writes and the repair of its arcs, over the overlay's calls. */
  #newReplication(
    state: OverlayState,
    options: ChordRouterOptions,
    log: (message: string) => void,
  ): Replication {
    return new Replication({
      peerId: this.peerId,
      store: state.store,
      replicationFactor: state.config.replicationFactor,
      writeQuorum: state.config.writeQuorum,
      ownedReplicaSets: () => this.#ownedReplicaSets(),
      ownedArcs: () => this.#ownedArcs(),
      walkRing: (signal) => walkRing(state, signal),
      ownsLocally: (position) => state.ownsLocally(position),
      settled: () => !this.#rollout.migrating,
      call: (peer, codec, request) =>
        state.call(peer, DATA_PROTOCOL, codec, request, AbortSignal.timeout(state.options.callTimeout)),
      scanLocal: (peer, hashMin, hashMax, filter) =>
        this.#data.planeOf(peer).scanLocal(hashMin, hashMax, filter),
      log: log,
      repairIntervalMs: options.repairIntervalMs ?? Math.max(1000, 10 * state.stabilizeMs),
      repairBytesPerSecond: options.repairBytesPerSecond ?? 16 * 1024 * 1024,
      maxMessageBytes: Math.floor(state.options.maxFrameSize / 4),
      hints: { maxBytes: options.hintMaxBytes, maxAgeMs: options.hintMaxAgeMs },
      hintIntervalMs: state.stabilizeMs,
    })
  }

  /** Checks who sends each state-changing message: the vnodes of a peer, the owner of a position. */
  #newAuthority(state: OverlayState): RingAuthority {
    return new RingAuthority({
      vnodesOf: async (peerId, signal) =>
        (await state.call({ peerId, multiaddrs: [] }, RING_PROTOCOL, GetConfig, undefined, signal)).vnodes,
      ownerOf: async (position, signal) => (await this.#routing.lookup(position, signal)).owner,
      knows: (peerId) =>
        [...state.vnodes.values()].some(
          ({ chord }) =>
            chord.predecessor?.peerId === peerId ||
            chord.successors.some((successor) => successor.peerId === peerId) ||
            chord.fingers.some((finger) => finger?.peerId === peerId),
        ),
      log: (message) => state.log(message),
    })
  }

  /** This peer's libp2p node while started (e.g. to serve more protocols on it); undefined otherwise. */
  get libp2p(): DlhtLibp2p | undefined {
    return this.#libp2p
  }

  /** Where this peer listens (each address ends in /p2p/<peer id>); empty before start. */
  multiaddrs(): string[] {
    return this.#state.multiaddrs()
  }

  async start(): Promise<void> {
    if (this.#running !== undefined) return
    const state = this.#state
    const config = state.config
    const running = new AbortController()
    this.#running = running
    try {
      this.#libp2p = await createDlhtLibp2p({
        ip: config.ip,
        port: config.basePort,
        privateKey: this.#privateKey,
        swarmKey: config.swarmKey ?? undefined,
        allowedPeers: config.allowedPeers ?? undefined,
        callTimeout: state.options.callTimeout,
        maxFrameSize: state.options.maxFrameSize,
      }).catch((err: unknown) => {
        throw listenFailure(err, config.ip, config.basePort)
      })
      state.service = this.#libp2p.services.dlht
      state.service.setHandler((protocol, type, body, { signal, remotePeer }) =>
        this.#handle(protocol, type, body, signal, remotePeer),
      )
      await this.#membership.joinRing(running.signal)
      this.#rollout.open()
    } catch (err) {
      this.#running = undefined
      await this.#libp2p?.stop()
      this.#libp2p = undefined
      state.service = undefined
      state.vnodes.clear()
      throw err
    }
    this.#maintenance = this.#membership.maintain(running.signal)
    if (this.#replication.enabled) this.#repairing = this.#replication.run(running.signal)
  }

  async stop(): Promise<void> {
    const running = this.#running
    if (running === undefined) return
    const bound = STOP_BOUND_TIMEOUTS * this.#state.options.callTimeout
    const leaveBy = AbortSignal.timeout(bound)
    // Finish moving entries of a rollout first: a graceful leave hands over only owned arcs.
    await Promise.race([this.#rollout.settle(), sleep(bound / 2, leaveBy)])
    running.abort()
    this.#rollout.stop()
    await this.#maintenance
    await this.#repairing
    await this.#membership.leaveRing(leaveBy)
    this.#running = undefined
    this.#state.service?.setHandler(undefined)
    await this.#libp2p?.stop()
    this.#libp2p = undefined
    this.#state.service = undefined
    this.#data.clear()
  }

  findSuccessor(position: bigint, options: RouteOptions = {}): Promise<VnodeRef> {
    return this.#routing.findSuccessor(position, options)
  }

  findSuccessorMany(positions: BigUint64Array, options: RouteOptions = {}): Promise<VnodeRef[]> {
    return this.#routing.findSuccessorMany(positions, options)
  }

  /**
   * The owners of `[hashMin, hashMax]` in ring order: from arcs already known (local vnodes, the
   * routing cache); unknown stretches cost one lookup, then one neighbours call per 8 successors.
   */
  coveringSegments(hashMin: bigint, hashMax: bigint, options: RouteOptions = {}): Promise<RangeSegment[]> {
    return this.#routing.coveringSegments(hashMin, hashMax, options)
  }

  dataPlane(owner: VnodeRef): DataPlane {
    return this.#migration.dataPlane(owner)
  }

  localVnodes(): readonly VnodeRef[] {
    return this.#state.localVnodes()
  }

  getRoutingTableStats(): RoutingTableStats {
    const state = this.#state
    const describe = (ref: VnodeRef | null | undefined) =>
      ref == null ? null : { peerId: ref.peerId, vnodeId: ref.vnodeId, id: ref.id }
    const active = [...state.vnodes.values()].filter((vnode) => vnode.active)
    const overlay: OverlayStats = { ...state.stats, unconfirmedCopies: this.#ringServer.unconfirmedCopies() }
    return {
      peerId: this.peerId,
      hashSpaceSize: state.hashSpaceSize,
      kind: 'chord',
      multiaddrs: this.multiaddrs(),
      vnodes: active.map((vnode) => ({ ...vnode.ref, arcStart: vnode.chord.arcStart })),
      ring: active.map((vnode) => ({
        id: vnode.ref.id,
        predecessor: describe(vnode.chord.predecessor),
        successors: vnode.chord.successors.map(describe),
        fingers: [...new Set(vnode.chord.fingers.filter((finger) => finger !== undefined))].map(describe),
      })),
      routingCacheArcs: state.cache.size,
      overlay,
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
      AbortSignal.timeout(this.#state.options.callTimeout),
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
      AbortSignal.timeout(this.#state.options.callTimeout),
    )
  }

  /** This peer's active vnodes, each with its other replicas (see OwnedReplicaSet). */
  #ownedReplicaSets(): OwnedReplicaSet[] {
    const sets: OwnedReplicaSet[] = []
    for (const vnode of this.#state.vnodes.values())
      if (vnode.active) sets.push(new OwnedReplicaSet(this.#state, vnode))
    return sets
  }

  /** The arcs of this peer's active vnodes, with their other replicas (for repair). */
  #ownedArcs(): Array<{ ranges: Array<[bigint, bigint]>; replicas: VnodeRef[] }> {
    const state = this.#state
    return [...state.vnodes.values()]
      .filter((vnode) => vnode.active && !vnode.leaving)
      .map((vnode) => ({
        ranges: arcRanges(vnode.chord.arcStart, vnode.ref.id, state.hashSpaceSize),
        replicas: distinctPeers(state.successorsOf(vnode), state.config.replicationFactor - 1, this.peerId),
      }))
  }

  /** Waits while a rollout is prepared here, so that a write is routed by the version that follows. */
  beforeWrite(): Promise<void> | undefined {
    return this.#rollout.state === 'prepared'
      ? this.#rollout.decided(this.#state.options.callTimeout)
      : undefined
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

  /** Serves a message from another peer: checks who sent it, then the data or the ring server answers. */
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
    const request = codec.readRequest(body, this.#state.hashSpaceSize)
    await this.#authority.check(protocol, type, request, remotePeer, signal)
    try {
      return codec.writeAnswer(
        await (ring
          ? this.#ringServer.serve(type, request, false)
          : this.#data.serve(type, request, signal, remotePeer)),
      )
    } catch (err) {
      // The caller only learns that the handler failed: the operator should learn why.
      if (!(err instanceof DlhtError))
        this.#state.log(
          `serving ${ring ? 'ring' : 'data'} message ${type} failed: ${(err as Error)?.stack ?? err}`,
        )
      throw err
    }
  }
}

/**
 * The Router factory for `new LeadNode(config, { router: chordRouter() })`: the node joins the
 * ring of `config.bootstrapPeer` (or starts one) over libp2p on `config.ip:config.basePort`.
 */
export function chordRouter(options: ChordRouterOptions = {}): (components: RouterComponents) => ChordRouter {
  return (components) => new ChordRouter(components, options)
}
