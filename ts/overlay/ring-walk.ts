// A walk of the live ring from one of this peer's vnodes, along successor lists or successor by
// successor: the members a rollout asks, the vnodes a rebalance or a joiner profiles.

import { inOpenArc, LookupFailedError } from '../chord/index.js'
import { PeerUnavailableError, VnodeUnavailableError } from '../protocol/errors.js'
import { type NeighbourRefs, Neighbours, type PeerRef } from '../protocol/messages.js'
import { NotStartedError } from '../shared/errors.js'
import type { VnodeRef } from '../shared/router.js'
import type { OverlayState } from './overlay-state.js'

/** Calls a walk makes at most. */
const MAX_WALK_CALLS = 100_000

/**
 * Every vnode on the ring, in ring order from one of ours, not from the routing cache, which may
 * miss new vnodes. Along the successor lists, one call per `successorListLength` vnodes; or, when
 * `exact`, from each vnode to its successor: a list lags a join by a few stabilization rounds,
 * while successors are what stabilization repairs first. An exact walk also takes in a vnode's
 * predecessor when it lies between that vnode and the one before it, as stabilization would: a
 * vnode that just joined is its successor's predecessor before it is anyone's successor. A vnode
 * that moved or left since it was named is dropped and the one before it is asked again.
 */
export async function walkRing(
  state: OverlayState,
  signal: AbortSignal,
  start = state.localVnodes()[0],
  exact = false,
): Promise<VnodeRef[]> {
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
  for (let calls = 0; calls < MAX_WALK_CALLS; calls++) {
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
      neighbours = await state.ringCall(current, Neighbours, { target: current.id }, signal)
    } catch (err) {
      const gone = err instanceof VnodeUnavailableError || err instanceof PeerUnavailableError
      if (!gone || current === start) throw err
      state.log(`ring walk: vnode ${current.id} of ${current.peerId} is gone (${(err as Error).message})`)
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

/** Every peer with a vnode on the ring, this one first. */
export async function ringMembers(state: OverlayState, signal: AbortSignal): Promise<PeerRef[]> {
  const peers = new Map<string, PeerRef>([
    [state.peerId, { peerId: state.peerId, multiaddrs: state.multiaddrs() }],
  ])
  for (const vnode of await walkRing(state, signal, undefined, true)) {
    if (!peers.has(vnode.peerId))
      peers.set(vnode.peerId, { peerId: vnode.peerId, multiaddrs: vnode.multiaddrs })
  }
  return [...peers.values()]
}
