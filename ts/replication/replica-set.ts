// Which peers hold copies of a position: its owner and the next distinct peers along the ring
// (vnodes of one peer are one replica). Computed from a successor list or a walk of the ring.

import type { VnodeRef } from '../shared/router.js'

/** The first vnode of each of the first `count` distinct peers in `vnodes`, skipping `exclude`. */
export function distinctPeers(vnodes: readonly VnodeRef[], count: number, exclude: string): VnodeRef[] {
  const peers: VnodeRef[] = []
  const seen = new Set<string>([exclude])
  for (const vnode of vnodes) {
    if (peers.length >= count) break
    if (seen.has(vnode.peerId)) continue
    seen.add(vnode.peerId)
    peers.push(vnode)
  }
  return peers
}

/** A snapshot of the ring's vnodes: the replica set of every position. */
export class ReplicaMap {
  readonly #vnodes: VnodeRef[]
  readonly #factor: number

  /** `vnodes` in any order; `factor` copies of each position. */
  constructor(vnodes: readonly VnodeRef[], factor: number) {
    this.#vnodes = [...vnodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    this.#factor = factor
  }

  get size(): number {
    return this.#vnodes.length
  }

  /** The owner of `position` first, then one vnode of each next distinct peer: `factor` peers at most. */
  replicasOf(position: bigint): VnodeRef[] {
    const vnodes = this.#vnodes
    if (vnodes.length === 0) return []
    let low = 0
    let high = vnodes.length
    while (low < high) {
      const middle = (low + high) >> 1
      if (vnodes[middle].id < position) low = middle + 1
      else high = middle
    }
    const ordered = low === 0 ? vnodes : [...vnodes.slice(low), ...vnodes.slice(0, low)]
    return distinctPeers(ordered, this.#factor, '')
  }

  /**
   * The pieces of [hashMin, hashMax] (not wrapping) in ring order, each with the replicas of its
   * positions (see `replicasOf`).
   */
  segments(
    hashMin: bigint,
    hashMax: bigint,
  ): Array<{ hashMin: bigint; hashMax: bigint; replicas: VnodeRef[] }> {
    const pieces: Array<{ hashMin: bigint; hashMax: bigint; replicas: VnodeRef[] }> = []
    let from = hashMin
    while (from <= hashMax) {
      const replicas = this.replicasOf(from)
      if (replicas.length === 0) break
      const owner = replicas[0].id
      const to = owner >= from && owner < hashMax ? owner : hashMax
      pieces.push({ hashMin: from, hashMax: to, replicas })
      from = to + 1n
    }
    return pieces
  }

  /** Whether `peerId` is one of the replicas of `position`. */
  holds(peerId: string, position: bigint): boolean {
    return this.replicasOf(position).some((replica) => replica.peerId === peerId)
  }
}
