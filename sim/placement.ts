// The three ways the simulator places keys and vnodes on the ring: dlht's learned order-preserving
// hash, classic consistent hashing (SHA-256), and order-preserving hashing without learning (linear).

import { hash } from 'node:crypto'
import { LoadProfile, planRebalance, type RebalanceOptions, vnodePosition } from '../ts/chord/index.js'
import { RecursiveModelIndex, type RmiOptions } from '../ts/learned/rmi.js'

/** Keys in the learned model's number domain; `label(i)` is the key's identity for SHA-256 when it has one. */
export interface KeySet {
  readonly name: string
  readonly keys: Float64Array
  readonly label?: (index: number) => string
}

export type SchemeName = 'dlht' | 'consistent-hashing' | 'linear'

/** How one scheme maps keys and key ranges to ring positions, and where it puts vnodes. */
export interface PlacementScheme {
  readonly name: SchemeName
  /** Positions of `keySet.keys[from..to)`. */
  positions(keySet: KeySet, from: number, to: number): BigUint64Array
  /** The arc holding every key of `[low, high]`, or null when ranges are not contiguous (hashing). */
  rangeArc(low: number, high: number): { hashMin: bigint; hashMax: bigint } | null
  /** `vnodeIds[peer][i]` for `peers` peers of `vnodesPerPeer` vnodes. */
  vnodeIds(peers: number, vnodesPerPeer: number, seed: number): bigint[][]
}

/**
 * Ids spread evenly over the ring, each peer's vnodes a third (a `vnodesPerPeer`-th) of the ring
 * apart. Under a learned hash positions follow the key CDF, so these are its quantiles.
 */
export function evenlySpacedVnodeIds(
  peers: number,
  vnodesPerPeer: number,
  hashSpaceSize: bigint,
): bigint[][] {
  const total = BigInt(peers * vnodesPerPeer)
  return Array.from({ length: peers }, (_, peer) =>
    Array.from(
      { length: vnodesPerPeer },
      (_, i) => (BigInt(i * peers + peer + 1) * hashSpaceSize) / total - 1n,
    ),
  )
}

/** Ids the live overlay gives vnodes: SHA-256 of `peerId/index` (`vnodePosition`). */
export function hashedVnodeIds(
  peers: number,
  vnodesPerPeer: number,
  seed: number,
  hashSpaceSize: bigint,
): bigint[][] {
  return Array.from({ length: peers }, (_, peer) =>
    Array.from({ length: vnodesPerPeer }, (_, i) => vnodePosition(`sim-${seed}-${peer}`, i, hashSpaceSize)),
  )
}

/**
 * Where dlht puts vnodes: `sample-quantiles` at the predicted positions of evenly spaced sample
 * quantiles (so each vnode holds an equal share of the sample, whatever the model's fit error),
 * `even` evenly spaced (right if predicted positions were exactly uniform), `hashed` as the live overlay does (`vnodePosition`).
 */
export type VnodePlacement = 'sample-quantiles' | 'even' | 'hashed'

/** dlht: a Recursive Model Index trained on a sample of the keys maps each key to its estimated rank. */
export function learnedScheme(
  sortedSample: Float64Array,
  options: RmiOptions & { hashSpaceSize: bigint; vnodePlacement: VnodePlacement },
): PlacementScheme & { model: RecursiveModelIndex } {
  const model = new RecursiveModelIndex(options)
  model.train(sortedSample)
  const { hashSpaceSize, vnodePlacement } = options
  return {
    name: 'dlht',
    model,
    positions: (keySet, from, to) => model.predictMany(keySet.keys.subarray(from, to)),
    rangeArc: (low, high) => model.predictRange(low, high),
    vnodeIds: (peers, vnodesPerPeer, seed) => {
      if (vnodePlacement === 'hashed') return hashedVnodeIds(peers, vnodesPerPeer, seed, hashSpaceSize)
      if (vnodePlacement === 'even') return evenlySpacedVnodeIds(peers, vnodesPerPeer, hashSpaceSize)
      return quantileVnodeIds(model, sortedSample, peers, vnodesPerPeer)
    },
  }
}

/**
 * Vnode `j` (of `peers × vnodesPerPeer`, peer `j mod peers`) ends at the predicted position of the
 * sample's `(j+1)/V` quantile; ties (equal keys, flat model) move up one position to stay distinct.
 */
function quantileVnodeIds(
  model: RecursiveModelIndex,
  sortedSample: Float64Array,
  peers: number,
  vnodesPerPeer: number,
): bigint[][] {
  const total = peers * vnodesPerPeer
  const quantiles = Float64Array.from({ length: total }, (_, j) => {
    return sortedSample[
      Math.min(sortedSample.length - 1, Math.ceil(((j + 1) * sortedSample.length) / total) - 1)
    ]
  })
  const ids = [...model.predictMany(quantiles)]
  for (let j = 1; j < total; j++) if (ids[j] <= ids[j - 1]) ids[j] = ids[j - 1] + 1n
  return Array.from({ length: peers }, (_, peer) =>
    Array.from({ length: vnodesPerPeer }, (_, i) => ids[i * peers + peer]),
  )
}

/** Vnode ids after a rebalance, with what it did. */
export interface Rebalanced {
  vnodeIds: bigint[][]
  moves: number
  /** Largest over mean keys per peer on the profile, before and after the moves. */
  before: number
  after: number
  milliseconds: number
}

/**
 * dlht's vnodes after the rebalance the live overlay runs after a rollout: the moves `planRebalance`
 * (ts/chord) proposes from `vnodeIds` on a profile of every key's position. Each peer keeps its vnodes' count.
 */
export function rebalancedVnodeIds(
  vnodeIds: readonly (readonly bigint[])[],
  positions: BigUint64Array,
  hashSpaceSize: bigint,
  options: RebalanceOptions = {},
): Rebalanced {
  const started = performance.now()
  const ring = vnodeIds.flatMap((ids, peer) => ids.map((id) => ({ id, peer: String(peer) })))
  const plan = planRebalance(ring, LoadProfile.fromPositions(positions, hashSpaceSize), options)
  const byPeer = vnodeIds.map((): bigint[] => [])
  for (const vnode of plan.ring) byPeer[Number(vnode.peer)].push(vnode.id)
  return {
    vnodeIds: byPeer,
    moves: plan.moves.length,
    before: plan.before,
    after: plan.after,
    milliseconds: performance.now() - started,
  }
}

/** Consistent hashing: SHA-256 of the key (its label, or its 8 bytes), vnodes at hashed ids. */
export function consistentHashingScheme(hashSpaceSize: bigint): PlacementScheme {
  const bytes = new Float64Array(1)
  const view = new Uint8Array(bytes.buffer)
  const positionOf = (data: string | Uint8Array) =>
    (hash('sha256', data, 'buffer') as Buffer).readBigUInt64BE(0) % hashSpaceSize
  return {
    name: 'consistent-hashing',
    positions: (keySet, from, to) => {
      const out = new BigUint64Array(to - from)
      for (let i = from; i < to; i++) {
        if (keySet.label !== undefined) out[i - from] = positionOf(keySet.label(i))
        else {
          bytes[0] = keySet.keys[i]
          out[i - from] = positionOf(view)
        }
      }
      return out
    },
    rangeArc: () => null,
    vnodeIds: (peers, vnodesPerPeer, seed) => hashedVnodeIds(peers, vnodesPerPeer, seed, hashSpaceSize),
  }
}

/** Order-preserving without learning: keys scaled linearly from the sample's [min, max] onto the ring. */
export function linearScheme(sortedSample: Float64Array, hashSpaceSize: bigint): PlacementScheme {
  const min = sortedSample[0]
  const span = sortedSample[sortedSample.length - 1] - min
  const top = Number(hashSpaceSize - 1n)
  const positionOf = (key: number) => {
    const scaled = span > 0 ? ((key - min) / span) * top : 0
    const clamped = BigInt(Math.floor(Math.min(top, Math.max(0, scaled))))
    return clamped < hashSpaceSize ? clamped : hashSpaceSize - 1n
  }
  return {
    name: 'linear',
    positions: (keySet, from, to) => {
      const out = new BigUint64Array(to - from)
      for (let i = from; i < to; i++) out[i - from] = positionOf(keySet.keys[i])
      return out
    },
    rangeArc: (low, high) => ({ hashMin: positionOf(low), hashMax: positionOf(high) }),
    vnodeIds: (peers, vnodesPerPeer) => evenlySpacedVnodeIds(peers, vnodesPerPeer, hashSpaceSize),
  }
}
