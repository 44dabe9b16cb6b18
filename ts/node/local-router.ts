// The router of a node without a network: its vnodes, spread evenly, own every arc of a single-node ring.

import { ArcMap, type OwnedArc, rangeWalk } from '../chord/index.js'
import { InvalidArgumentError } from '../errors.js'
import type { DataPlane } from '../shared/data-plane.js'
import type { RangeSegment, Router, RoutingTableStats, VnodeRef } from '../shared/router.js'
import { spreadVnodeIds, toPosition } from './vnodes.js'

/** Options of a LocalRouter. */
export interface LocalRouterInit {
  peerId: string
  hashSpaceSize: bigint
  numVirtualNodes: number
  /** This peer's store. */
  dataPlane: DataPlane
}

/** The router of a single-node ring: this peer's vnodes, spread evenly, own every arc. */
export class LocalRouter implements Router {
  readonly peerId: string
  readonly #hashSpaceSize: bigint
  /** This peer's vnodes in ring order, and the arc each owns. */
  readonly #vnodes: readonly VnodeRef[]
  readonly #arcs: ArcMap<VnodeRef>
  readonly #dataPlane: DataPlane

  constructor(init: LocalRouterInit) {
    this.peerId = init.peerId
    this.#hashSpaceSize = init.hashSpaceSize
    this.#dataPlane = init.dataPlane
    if (init.numVirtualNodes < 1) throw new InvalidArgumentError('a ring needs at least one vnode')
    this.#vnodes = spreadVnodeIds(init.numVirtualNodes, init.hashSpaceSize).map((id, vnodeId) => ({
      peerId: init.peerId,
      vnodeId,
      id,
      multiaddrs: [],
    }))
    this.#arcs = ArcMap.ofRing(this.#vnodes)
  }

  /** The arc holding `position`: every position has one on a ring of known vnodes. */
  #arcOf(position: bigint): OwnedArc<VnodeRef> {
    return this.#arcs.find(position) as OwnedArc<VnodeRef>
  }

  #owner(position: bigint): VnodeRef {
    return this.#arcOf(position).owner
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  async findSuccessor(position: bigint): Promise<VnodeRef> {
    return this.#owner(toPosition(position, this.#hashSpaceSize))
  }

  async findSuccessorMany(positions: BigUint64Array): Promise<VnodeRef[]> {
    const owners = new Array<VnodeRef>(positions.length)
    for (let i = 0; i < positions.length; i++)
      owners[i] = this.#owner(toPosition(positions[i], this.#hashSpaceSize))
    return owners
  }

  async coveringSegments(hashMin: bigint, hashMax: bigint): Promise<RangeSegment[]> {
    return rangeWalk(
      toPosition(hashMin, this.#hashSpaceSize, 'hashMin'),
      toPosition(hashMax, this.#hashSpaceSize, 'hashMax'),
      (position) => this.#arcs.find(position),
      this.#hashSpaceSize,
    ).segments
  }

  dataPlane(owner: VnodeRef): DataPlane {
    if (owner.peerId !== this.peerId) {
      throw new InvalidArgumentError(`a single-node ring has no peer ${owner.peerId}`)
    }
    return this.#dataPlane
  }

  localVnodes(): readonly VnodeRef[] {
    return this.#vnodes
  }

  getRoutingTableStats(): RoutingTableStats {
    return {
      peerId: this.peerId,
      hashSpaceSize: this.#hashSpaceSize,
      vnodes: this.#vnodes.map((vnode) => ({ ...vnode, arcStart: this.#arcOf(vnode.id).start })),
      kind: 'local',
    }
  }
}
