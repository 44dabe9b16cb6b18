// What the parts of the Chord overlay share: this peer's vnodes, the routing cache, the counters,
// the transition gate and the calls to other peers (a ring call to one of our vnodes stays in process).

import type { PrivateKey } from '@libp2p/interface'
import { sleep } from '../abortable-sleep.js'
import { ArcMap, type ChordVnode, type OwnedArc } from '../chord/index.js'
import type { LeadConfig } from '../node/config.js'
import { NotStartedError } from '../node/errors.js'
import type { LearnedHash } from '../node/learned-hash.js'
import type { LocalStore } from '../node/local-store.js'
import { answerBudget } from '../protocol/answer-pages.js'
import { PeerUnavailableError } from '../protocol/errors.js'
import { type MessageCodec, RING_PROTOCOL } from '../protocol/messages.js'
import type { DlhtService } from '../protocol/service.js'
import type { VnodeRef } from '../shared/router.js'
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

/** The options every part of the overlay reads, with their defaults filled in. */
export type OverlayOptions = Required<
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

/** The options with their defaults. */
export function overlayOptions(options: ChordRouterOptions, config: Readonly<LeadConfig>): OverlayOptions {
  return {
    successorListLength:
      options.successorListLength ??
      Math.min(32, Math.max(8, config.replicationFactor * config.numVirtualNodes)),
    maxForwards: options.maxForwards ?? 4,
    callTimeout: options.callTimeout ?? 5000,
    maxFrameSize: options.maxFrameSize ?? 4 * 1024 * 1024,
    rebalance: options.rebalance ?? true,
    vnodePlacement: options.vnodePlacement ?? 'load',
  }
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

/** One of this peer's vnodes. */
export interface LocalVnode {
  readonly ref: VnodeRef
  readonly chord: ChordVnode<VnodeRef>
  /** False while joining and once left: the vnode routes but does not serve data. */
  active: boolean
  /** Set while it hands its arc over: it takes no arc from a neighbour meanwhile. */
  leaving: boolean
  /** Set once its arc was handed over. */
  left: boolean
}

/** A peer as calls address it. */
export interface PeerAddressRef {
  peerId: string
  multiaddrs: readonly string[]
}

/** How long, in call timeouts, a moving vnode keeps trying to hand its arc over. */
export const LEAVE_PATIENCE_TIMEOUTS = 4

/**
 * Maintenance rounds run soon after the ring changed next to one of this peer's vnodes, and how
 * far apart: successor lists, and the replica sets read from them, lag a join or a leave until
 * stabilization has run a few times, which the default interval (30 s) would spread over minutes.
 */
const QUICK_ROUNDS = 3
const QUICK_ROUND_MS = 250

/** What the parts of the overlay were built from. */
export interface OverlayStateInit {
  peerId: string
  config: Readonly<LeadConfig>
  options: OverlayOptions
  stabilizeMs: number
  store: LocalStore
  learnedHash: LearnedHash
  log: (message: string) => void
  /** Serves a ring request addressed to one of this peer's vnodes, in process. */
  serveLocalRing: (type: number, request: unknown) => Promise<unknown>
}

/** The state of the overlay its parts share, and the calls they all make. */
export class OverlayState {
  readonly peerId: string
  readonly config: Readonly<LeadConfig>
  readonly options: OverlayOptions
  readonly stabilizeMs: number
  readonly store: LocalStore
  readonly learnedHash: LearnedHash
  readonly log: (message: string) => void
  readonly vnodes = new Map<bigint, LocalVnode>()
  /** Arcs of other peers' vnodes learned by lookups. */
  readonly cache = new ArcMap<VnodeRef>()
  readonly gate = new TransitionGate()
  readonly stats: OverlayStats = {
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
  /** The libp2p service while started. */
  service: DlhtService | undefined
  /** The remote vnode that took over the arc of the last vnode to leave. */
  handedTo: VnodeRef | undefined
  readonly #serveLocalRing: (type: number, request: unknown) => Promise<unknown>
  #quickRounds = 0
  #wakeMaintenance: (() => void) | undefined

  constructor(init: OverlayStateInit) {
    this.peerId = init.peerId
    this.config = init.config
    this.options = init.options
    this.stabilizeMs = init.stabilizeMs
    this.store = init.store
    this.learnedHash = init.learnedHash
    this.log = init.log
    this.#serveLocalRing = init.serveLocalRing
  }

  /** A join, a leave or a new predecessor next to one of our vnodes: maintenance runs soon. */
  ringChanged(): void {
    this.#quickRounds = QUICK_ROUNDS
    this.#wakeMaintenance?.()
  }

  /** Waits until the next maintenance round is due: a stabilize interval, or less after a change. */
  async untilMaintenance(signal: AbortSignal): Promise<void> {
    if (this.#quickRounds === 0) {
      const woken = new AbortController()
      this.#wakeMaintenance = () => woken.abort()
      await sleep(this.stabilizeMs, AbortSignal.any([signal, woken.signal]))
      this.#wakeMaintenance = undefined
    }
    if (this.#quickRounds > 0) {
      this.#quickRounds--
      await sleep(Math.min(QUICK_ROUND_MS, this.stabilizeMs), signal)
    }
  }

  get hashSpaceSize(): bigint {
    return this.config.hashSpaceSize
  }

  /** Bytes of entries one message carries: what fits a frame with room to spare. */
  get frameBudget(): number {
    return answerBudget(this.options.maxFrameSize)
  }

  /** Where this peer listens (each address ends in /p2p/<peer id>); empty before start. */
  multiaddrs(): string[] {
    return this.service?.multiaddrs() ?? []
  }

  /** This peer's active vnodes, in ring order. */
  localVnodes(): VnodeRef[] {
    return [...this.vnodes.values()]
      .filter((vnode) => vnode.active)
      .map((vnode) => vnode.ref)
      .sort((a, b) => (a.id < b.id ? -1 : 1))
  }

  /**
   * The vnodes that follow `vnode`, as far as this peer knows: its successor list, continued
   * through the lists of this peer's own vnodes on it. A list lags the ring by a stabilization
   * period or more after a join, while the lists of this peer's other vnodes (one store, one peer)
   * may already name what lies beyond; a vnode of ours that left handed its arc on to its own
   * successors. This peer's active vnodes stay in, in ring order.
   */
  successorsOf(vnode: LocalVnode): VnodeRef[] {
    const found: VnodeRef[] = []
    const seen = new Set<bigint>([vnode.ref.id])
    const visit = (list: readonly VnodeRef[]) => {
      for (const next of list) {
        if (seen.has(next.id)) continue
        seen.add(next.id)
        const local = next.peerId === this.peerId ? this.vnodes.get(next.id) : undefined
        if (local?.active || next.peerId !== this.peerId) found.push(next)
        if (local !== undefined) visit(local.chord.successors)
      }
    }
    visit(vnode.chord.successors)
    return found
  }

  /** The arc holding `position` when an active local vnode owns it. */
  localArc(position: bigint): OwnedArc<VnodeRef> | undefined {
    for (const vnode of this.vnodes.values()) {
      if (vnode.active && vnode.chord.owns(position)) return { start: vnode.chord.arcStart, owner: vnode.ref }
    }
    return undefined
  }

  ownsLocally(position: bigint): boolean {
    for (const vnode of this.vnodes.values()) if (vnode.active && vnode.chord.owns(position)) return true
    return false
  }

  /**
   * Drops a node that failed to answer or left: all vnodes of its peer, or only it when it is ours,
   * left gracefully, or its peer answered that it no longer runs it (it moved).
   */
  forget(node: VnodeRef, onlyThisVnode = false): void {
    const isGone =
      node.peerId === this.peerId || onlyThisVnode
        ? (other: VnodeRef) => other.peerId === node.peerId && other.id === node.id
        : (other: VnodeRef) => other.peerId === node.peerId
    for (const vnode of this.vnodes.values()) vnode.chord.forget(isGone)
    this.cache.removeWhere(isGone)
  }

  requireService(): DlhtService {
    if (this.service === undefined) throw new NotStartedError('the overlay is not started')
    return this.service
  }

  /** A call to another peer; a peer that cannot be reached is forgotten. */
  async call<Request, Answer>(
    peer: PeerAddressRef,
    protocol: string,
    codec: MessageCodec<Request, Answer>,
    request: Request,
    signal?: AbortSignal,
  ): Promise<Answer> {
    try {
      return await this.requireService().call(peer, protocol, codec, request, {
        signal,
        hashSpaceSize: this.hashSpaceSize,
      })
    } catch (err) {
      if (err instanceof PeerUnavailableError) {
        this.forget({ peerId: peer.peerId, vnodeId: -1, id: -1n, multiaddrs: [] })
      }
      throw err
    }
  }

  /** A ring call; calls to this peer's own vnodes are served in process, without a message. */
  ringCall<Request, Answer>(
    target: VnodeRef,
    codec: MessageCodec<Request, Answer>,
    request: Request,
    signal?: AbortSignal,
  ): Promise<Answer> {
    if (target.peerId === this.peerId) return this.#serveLocalRing(codec.type, request) as Promise<Answer>
    return this.call(target, RING_PROTOCOL, codec, request, signal)
  }
}
