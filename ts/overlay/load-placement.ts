// Vnodes placed by where the ring's keys lie: the ids a joining peer picks, and the vnode moves
// of a rebalance after a rollout, both from a profile of key positions sampled from every peer.

import { sleep } from '../abortable-sleep.js'
import { chooseVnodeIds, LoadProfile, planRebalance, type VnodeMove, vnodePosition } from '../chord/index.js'
import { DlhtError } from '../errors.js'
import type { RebalanceOutcome } from '../federation/model-rollout.js'
import { UnknownModelVersionError } from '../protocol/errors.js'
import { LoadSample, MoveVnode, RING_PROTOCOL } from '../protocol/messages.js'
import type { VnodeRef } from '../shared/router.js'
import type { OverlayState } from './overlay-state.js'
import { walkRing } from './ring-walk.js'

/** Plans a rebalance makes at most when the ring changes under its moves. */
const REBALANCE_PLANS = 3

/** Key positions a profile reads at most, over the whole ring. */
const PROFILE_POSITIONS = 50_000

/** Load-aware vnode ids are moved forward by up to this much (far below the spacing of keys in a 2^62 ring). */
const ID_OFFSET_RANGE = 1n << 16n

/** Stride of the first, coarse profile a joining peer reads, to learn how many keys the ring holds. */
const COARSE_STRIDE = 1024

/** Moves that wait for the ring walk to show them before the next. */
const MOVE_SETTLE_ROUNDS = 20

const bigMin = (a: bigint, b: bigint): bigint => (a < b ? a : b)
const bigMax = (a: bigint, b: bigint): bigint => (a > b ? a : b)

/** Places vnodes by load. */
export class LoadPlacement {
  readonly #state: OverlayState
  readonly #moveVnode: (from: bigint, to: bigint) => Promise<void>

  /** `moveVnode` moves one of this peer's vnodes (a leave, then a join at the new id). */
  constructor(state: OverlayState, moveVnode: (from: bigint, to: bigint) => Promise<void>) {
    this.#state = state
    this.#moveVnode = moveVnode
  }

  /**
   * Ids for this peer's vnodes that cut the arcs carrying the most keys (`chooseVnodeIds`), from a
   * walk of the ring and a profile of its key positions; empty (hashed ids) while the ring holds
   * no keys. Two passes: a coarse one to count keys, then one at the stride that gives about
   * PROFILE_POSITIONS positions in all.
   */
  async joinIds(entry: VnodeRef, count: number, signal: AbortSignal): Promise<bigint[]> {
    const state = this.#state
    const size = state.hashSpaceSize
    const vnodes = await walkRing(state, signal, entry)
    const peers = [...new Map(vnodes.map((vnode) => [vnode.peerId, vnode])).values()]
    const modelVersion = state.learnedHash.version
    const sample = (stride: number) =>
      Promise.all(
        peers.map(
          async (peer) =>
            (await state.call(peer, RING_PROTOCOL, LoadSample, { stride, modelVersion }, signal)).positions,
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
      state.log(`vnode ids hashed, not placed by load: ${err.message}`)
      return []
    }
    const profile = LoadProfile.fromPositions(positions.flat(), size, stride)
    const ring = vnodes.map((vnode) => ({ id: vnode.id, peer: vnode.peerId }))
    // Cuts fall on sampled key positions, as do a rebalance's moves: a small offset of this peer's
    // own keeps a join and a concurrent move from picking the very same id.
    const offsets = bigMin(ID_OFFSET_RANGE, bigMax(1n, size >> 32n))
    return chooseVnodeIds(ring, profile, state.peerId, count).map(
      (id, index) => (id + 1n + vnodePosition(state.peerId, index, offsets)) % size,
    )
  }

  /**
   * After a rollout: a profile of where the keys now lie (every `stride`-th position of each
   * peer), then the vnode moves `planRebalance` proposes, one after the other. A move the ring no
   * longer fits (its vnode left or moved, its peer is gone: the ring changed since the walk) ends
   * that plan; a new one is made from a fresh walk, at most `REBALANCE_PLANS` in all.
   */
  async rebalance(totalKeys: number, signal: AbortSignal): Promise<RebalanceOutcome> {
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
        this.#state.log(`rebalance plan ${attempt} went stale (${err.message}): planning again`)
        // A few stabilization rounds, so that the next walk sees the ring as it now is.
        await sleep(3 * Math.min(this.#state.stabilizeMs, 1000), signal)
      }
    }
  }

  /** The ring's vnodes and where its keys lie: every `stride`-th key position of each peer. */
  async #loadProfile(
    stride: number,
    signal: AbortSignal,
  ): Promise<{ vnodes: VnodeRef[]; profile: LoadProfile }> {
    const state = this.#state
    const vnodes = await walkRing(state, signal, undefined, true)
    const peers = new Map(vnodes.map((vnode) => [vnode.peerId, vnode]))
    const modelVersion = state.learnedHash.version
    const samples = await Promise.all(
      [...peers.values()].map(async (peer) =>
        peer.peerId === state.peerId
          ? state.store.samplePositions(stride)
          : (await state.call(peer, RING_PROTOCOL, LoadSample, { stride, modelVersion }, signal)).positions,
      ),
    )
    return { vnodes, profile: LoadProfile.fromPositions(samples.flat(), state.hashSpaceSize, stride) }
  }

  /** One move of a plan on the peer that runs it, then a wait until the walk shows it. */
  async #runMove(peer: VnodeRef, move: VnodeMove, signal: AbortSignal): Promise<void> {
    const state = this.#state
    signal.throwIfAborted()
    if (peer.peerId === state.peerId) await this.#moveVnode(move.from, move.to)
    else await state.call(peer, RING_PROTOCOL, MoveVnode, { from: move.from, to: move.to }, signal)
    // Let stabilization repair successor lists around the move before the next one.
    for (let waited = 0; waited < MOVE_SETTLE_ROUNDS; waited++) {
      await sleep(Math.min(state.stabilizeMs, 1000), signal)
      const ids = new Set((await walkRing(state, signal)).map((vnode) => vnode.id))
      if (ids.has(move.to) && !ids.has(move.from)) break
    }
  }
}
