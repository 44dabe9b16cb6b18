// The vnode placement scenario shared by the placement test and benchmark: peers join one after
// another while the first tenth of a real data set is stored, then all of it is and the model is
// retrained (a rollout); load per peer is measured on every key, against consistent hashing.

import { createHash } from 'node:crypto'
import {
  chooseVnodeIds,
  imbalance,
  LoadProfile,
  type PlacedVnode,
  planRebalance,
} from '../../ts/chord/index.js'
import { RecursiveModelIndex } from '../../ts/index.js'
import { seededRandom } from './datasets.js'

const H = 2n ** 62n
const OPTIONS = { branchingFactor: 100, modelType: 'linear', stage1ModelType: 'linear' } as const
/** What a node trains on: a 10k-key reservoir sample. */
const SAMPLE_KEYS = 10_000
/** Peers report every `STRIDE`-th of their keys' sorted positions: the planning profile. */
const STRIDE = 16

export interface PlacementRun {
  peers: number
  vnodesPerPeer: number
  /** Largest over mean keys per peer, on every stored key, for each placement. */
  imbalance: {
    /** dlht ids from chooseVnodeIds, before the rollout (first tenth, early model). */
    afterJoins: number
    /** The same ids after the rollout, before any move. */
    afterRollout: number
    /** After the moves planRebalance proposes: dlht's placement. */
    ours: number
    /** SHA-256 positions for keys and vnode ids (classic consistent hashing). */
    consistentHashing: number
    /** Learned positions for keys, SHA-256 vnode ids (as the live overlay places them). */
    learnedHashedIds: number
    /** No placement does better: the most keys sharing one learned position, over the mean. */
    floor: number
  }
  moves: number
  joinMs: number
  planMs: number
}

function sha256Position(label: string): bigint {
  return createHash('sha256').update(label).digest().readBigUInt64BE(0) % H
}

/** A seeded sample (with replacement) of `keys`, sorted: what a reservoir would hand to training. */
function trainingSample(keys: Float64Array, seed: number): Float64Array {
  const random = seededRandom(seed)
  return Float64Array.from({ length: SAMPLE_KEYS }, () => keys[Math.floor(random() * keys.length)]).sort()
}

function model(keys: Float64Array, seed: number): RecursiveModelIndex {
  const rmi = new RecursiveModelIndex(OPTIONS)
  rmi.train(trainingSample(keys, seed))
  return rmi
}

/** Every key's position, every STRIDE-th of them weighing STRIDE keys, and the most keys on one position. */
function profiles(positions: BigUint64Array): { all: LoadProfile; planning: LoadProfile; heaviest: number } {
  const sorted = positions.slice().sort()
  const strided = sorted.filter((_, i) => i % STRIDE === STRIDE - 1)
  let heaviest = 0
  for (let i = 0, run = 0; i < sorted.length; i++) {
    run = i > 0 && sorted[i] === sorted[i - 1] ? run + 1 : 1
    heaviest = Math.max(heaviest, run)
  }
  return {
    all: LoadProfile.fromPositions(sorted, H),
    planning: LoadProfile.fromPositions(strided, H, STRIDE),
    heaviest,
  }
}

/**
 * Runs the scenario on `keys` (in the data set's own order: the first tenth is stored first) and
 * their `labels` (what consistent hashing hashes), with `peers` peers of `vnodesPerPeer` vnodes.
 */
export function placementScenario(
  keys: Float64Array,
  labels: readonly string[],
  peers: number,
  vnodesPerPeer = 3,
): PlacementRun {
  const early = keys.subarray(0, Math.floor(keys.length / 10))
  const before = profiles(model(early, 1).predictMany(early))
  const ring: PlacedVnode[] = []
  const joinStart = performance.now()
  for (let p = 0; p < peers; p++) {
    const peer = `peer-${p}`
    ring.push(...chooseVnodeIds(ring, before.planning, peer, vnodesPerPeer).map((id) => ({ id, peer })))
  }
  const joinMs = performance.now() - joinStart
  const after = profiles(model(keys, 2).predictMany(keys))
  const planStart = performance.now()
  const plan = planRebalance(ring, after.planning)
  const planMs = performance.now() - planStart
  const hashedIds = Array.from({ length: peers * vnodesPerPeer }, (_, i) => {
    const peer = `peer-${Math.floor(i / vnodesPerPeer)}`
    return { id: sha256Position(`${peer}/${i % vnodesPerPeer}`), peer }
  })
  const hashed = LoadProfile.fromPositions(labels.map(sha256Position), H)
  return {
    peers,
    vnodesPerPeer,
    imbalance: {
      afterJoins: imbalance(ring, before.all),
      afterRollout: imbalance(ring, after.all),
      ours: imbalance(plan.ring, after.all),
      consistentHashing: imbalance(hashedIds, hashed),
      learnedHashedIds: imbalance(hashedIds, after.all),
      floor: Math.max(1, (after.heaviest * peers) / keys.length),
    },
    moves: plan.moves.length,
    joinMs,
    planMs,
  }
}
