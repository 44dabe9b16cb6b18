// Routing of ring positions to the vnodes that own them: the seam between the node and the overlay.
// LocalRouter (ts/node) owns every arc of a single-node ring; the Chord overlay implements the same Router.

import type { DataPlane, ScanFilter, ScannedRecord } from './data-plane.js'
import type { NodeKey } from './keys.js'

/** A virtual node on the ring: it owns the arc (predecessor's id, id]. */
export interface VnodeRef {
  /** Peer (physical node) that runs the vnode. */
  peerId: string
  /** Index of the vnode on its peer, 0 .. numVirtualNodes - 1. */
  vnodeId: number
  /** The vnode's ring position. */
  id: bigint
  /** Where the peer listens (empty for a node without a network). */
  multiaddrs: string[]
}

/**
 * A piece `[hashMin, hashMax]` of a position range (inclusive) and the vnode that owns it. Pieces
 * a router hands out never wrap; a range walk's may, when the range itself wraps past zero.
 */
export interface RangeSegment<Owner = VnodeRef> {
  owner: Owner
  hashMin: bigint
  hashMax: bigint
}

/** Options of a routing call. */
export interface RouteOptions {
  /** Gives the call up. */
  signal?: AbortSignal
}

/** What a router knows about the ring, for `LeadNode.getRoutingTableStats()`. */
export interface RoutingTableStats {
  peerId: string
  hashSpaceSize: bigint
  /** This peer's vnodes with the arc each owns (arcStart exclusive, id inclusive; an arc may wrap). */
  vnodes: Array<VnodeRef & { arcStart: bigint }>
  /** Router-specific details (fingers, successor lists, ...). */
  [detail: string]: unknown
}

/** What a cluster-wide retrain (a federated round and its rollout) reports. */
export interface ClusterRetrainOutcome {
  modelVersion: number
  /** Keys behind the global model (the sum of the contributions' key counts). */
  trainingDataSize: number
  /** Peers that contributed a model. */
  contributors: number
  /** From the start of the round to the commit. */
  roundMs: number
  /** Model bytes exchanged in the round. */
  bytesExchanged: number
}

/**
 * Maps ring positions to owning vnodes and hands out the data plane of their peer.
 * Start and stop are idempotent.
 */
export interface Router {
  /** This peer's id (valid once started). */
  readonly peerId: string
  /** Joins the ring (or makes a single-node one). */
  start(): Promise<void>
  /** Leaves the ring, handing this peer's entries over where there is a ring to hand them to. */
  stop(): Promise<void>
  /** The vnode that owns `position`: the first vnode at or after it, wrapping around the ring. */
  findSuccessor(position: bigint, options?: RouteOptions): Promise<VnodeRef>
  /** Owners of many positions, in input order. */
  findSuccessorMany(positions: BigUint64Array, options?: RouteOptions): Promise<VnodeRef[]>
  /** The pieces of [hashMin, hashMax] (hashMin <= hashMax) in ring order, one per owning vnode. */
  coveringSegments(hashMin: bigint, hashMax: bigint, options?: RouteOptions): Promise<RangeSegment[]>
  /** The data plane of the peer that runs `owner` (this peer's store, or a proxy of another peer's). */
  dataPlane(owner: VnodeRef): DataPlane
  /** This peer's vnodes, in ring order. */
  localVnodes(): readonly VnodeRef[]
  /** This peer's vnodes, their arcs and the router's own counters. */
  getRoutingTableStats(): RoutingTableStats
  /**
   * Retrains across every peer of the ring and rolls the model out; null when no peer has keys.
   * Absent on a single-node router (the node then trains alone). `sampleKeys` replace this peer's keys.
   * With a `signal`, a ring busy with a previous rollout is waited for until it aborts; without
   * one, a busy ring is refused at once.
   */
  retrainCluster?(
    sampleKeys?: readonly NodeKey[],
    signal?: AbortSignal,
  ): Promise<ClusterRetrainOutcome | null>
  /**
   * Values of keys read from their replicas but `skip` (an owner that did not answer), the newest
   * version winning; at least `quorum` (default 1) replicas of each key must answer. Present on a
   * router that replicates entries.
   */
  readReplicas?(
    keys: readonly NodeKey[],
    positions: ArrayLike<bigint>,
    skip?: string,
    quorum?: number,
  ): Promise<Array<Uint8Array | undefined>>
  /** Records of [hashMin, hashMax] (not wrapping), each piece from the first of its replicas but `skip` that answers. */
  scanReplicas?(
    hashMin: bigint,
    hashMax: bigint,
    filter?: ScanFilter,
    skip?: string,
  ): Promise<ScannedRecord[]>
  /**
   * While writes must wait (a ring holds them while a new model is prepared), a promise of the
   * moment they may go on; undefined when they may go on at once.
   */
  beforeWrite?(): Promise<void> | undefined
}
