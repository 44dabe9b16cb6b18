// This peer's vnodes on the ring: joining (with the arcs and entries handed over to them), the
// periodic maintenance that keeps them there, moves, and graceful leaves that hand arcs over.

import type { Multiaddr } from '@multiformats/multiaddr'
import { sleep } from '../abortable-sleep.js'
import {
  ChordVnode,
  clockwiseDistance,
  HandOverRefusedError,
  inHalfOpenArc,
  JoinFailedError,
  LookupFailedError,
  vnodePosition,
} from '../chord/index.js'
import { DlhtError, InvalidArgumentError } from '../errors.js'
import type { ModelRollout } from '../federation/model-rollout.js'
import type { ScannedRecord } from '../node/data-plane.js'
import { InvalidConfigError, NotStartedError } from '../node/errors.js'
import { partsWithin } from '../protocol/answer-pages.js'
import {
  RemoteCallTimeoutError,
  UnknownModelVersionError,
  VnodeUnavailableError,
} from '../protocol/errors.js'
import {
  type ClusterConfig,
  GetConfig,
  HandOverPart,
  HandOverRecords,
  HandOverTaken,
  Leave,
  Neighbours,
  Notify,
  type NotifyAnswer,
  RING_PROTOCOL,
  SuccessorLeft,
} from '../protocol/messages.js'
import type { PeerAddress } from '../protocol/service.js'
import type { VnodeRef } from '../shared/router.js'
import { bootstrapAddress } from './libp2p.js'
import type { LoadPlacement } from './load-placement.js'
import { LEAVE_PATIENCE_TIMEOUTS, type LocalVnode, type OverlayState } from './overlay-state.js'
import { explainJoinFailure } from './private-network.js'
import type { RingMigration } from './ring-migration.js'
import type { RingServer } from './ring-server.js'
import type { Routing } from './routing.js'
import type { VersionAgreement } from './version-agreement.js'

/** Attempts to join one vnode while the ring settles around its place. */
const JOIN_ATTEMPTS = 10

/** Attempts to hand an arc to one successor when its answers time out. */
const HAND_OVER_ATTEMPTS = 3

/** What membership needs from the rest of the overlay. */
export interface MembershipInit {
  state: OverlayState
  routing: Routing
  versions: VersionAgreement
  rollout: ModelRollout
  migration: RingMigration
  ringServer: RingServer
  placement: LoadPlacement
  /** Aborts when the overlay stops; undefined while it is not running. */
  running(): AbortSignal | undefined
}

/** A vnode's predecessor and successor list, as a string that changes when either does. */
function neighbourhood(vnode: LocalVnode): string {
  const { predecessor, successors } = vnode.chord
  return `${predecessor?.id ?? ''}:${successors.map((successor) => successor.id).join(',')}`
}

/** Joins, maintains, moves and leaves this peer's vnodes. */
export class Membership {
  readonly #state: OverlayState
  readonly #routing: Routing
  readonly #versions: VersionAgreement
  readonly #rollout: ModelRollout
  readonly #migration: RingMigration
  readonly #ringServer: RingServer
  readonly #placement: LoadPlacement
  readonly #running: () => AbortSignal | undefined

  constructor(init: MembershipInit) {
    this.#state = init.state
    this.#routing = init.routing
    this.#versions = init.versions
    this.#rollout = init.rollout
    this.#migration = init.migration
    this.#ringServer = init.ringServer
    this.#placement = init.placement
    this.#running = init.running
  }

  #newVnode(
    index: number,
    id = vnodePosition(this.#state.peerId, index, this.#state.hashSpaceSize),
  ): LocalVnode {
    const state = this.#state
    const ref: VnodeRef = { peerId: state.peerId, vnodeId: index, id, multiaddrs: state.multiaddrs() }
    const vnode = {
      ref,
      chord: new ChordVnode(ref, {
        hashSpaceSize: state.hashSpaceSize,
        successorListLength: state.options.successorListLength,
      }),
      active: false,
      leaving: false,
      left: false,
    }
    state.vnodes.set(ref.id, vnode)
    return vnode
  }

  /** Places `numVirtualNodes` vnodes: on the ring of `config.bootstrapPeer`, or on a new ring. */
  async joinRing(signal: AbortSignal): Promise<void> {
    const config = this.#state.config
    const count = config.numVirtualNodes
    let entry: VnodeRef
    let first = 0
    if (config.bootstrapPeer === null) {
      const founder = this.#newVnode(0)
      founder.active = true
      entry = founder.ref
      first = 1
    } else {
      const address = bootstrapAddress(config.bootstrapPeer)
      const { bootstrap, config: ringConfig } = await this.#askToJoin(address, signal)
      this.#adoptClusterConfig(ringConfig, bootstrap)
      entry = ringConfig.vnodes[0]
      if (entry === undefined) throw new JoinFailedError('the bootstrap peer has no vnode on the ring yet')
    }
    const ids =
      first === 0 && this.#state.options.vnodePlacement === 'load'
        ? await this.#placement.joinIds(entry, count, signal)
        : []
    for (let index = first; index < count; index++)
      await this.#joinVnode(this.#newVnode(index, ids[index]), entry, signal)
    this.#state.ringChanged()
  }

  /**
   * Connects to the bootstrap peer and reads the ring's configuration.
   * @throws MembershipRefusedError when the ring refuses this node (swarm key, allow-lists)
   */
  async #askToJoin(
    address: Multiaddr,
    signal: AbortSignal,
  ): Promise<{ bootstrap: PeerAddress; config: ClusterConfig }> {
    const state = this.#state
    try {
      const bootstrap = await state.requireService().connect(address, { signal })
      return { bootstrap, config: await state.call(bootstrap, RING_PROTOCOL, GetConfig, undefined, signal) }
    } catch (err) {
      throw explainJoinFailure(err, address.toString(), {
        swarmKey: state.config.swarmKey !== null,
        allowedPeers: state.config.allowedPeers !== null,
      })
    }
  }

  #adoptClusterConfig(config: ClusterConfig, source: PeerAddress): void {
    const size = this.#state.hashSpaceSize
    if (config.hashSpaceSize !== size) {
      throw new InvalidConfigError(
        'hashSpaceSize',
        `is ${size} but the ring of the bootstrap peer uses ${config.hashSpaceSize}`,
      )
    }
    this.#rollout.catchUp(config, source)
  }

  /** Joins one vnode, retrying while the ring is still settling around its place. */
  async #joinVnode(vnode: LocalVnode, via: VnodeRef, signal: AbortSignal): Promise<void> {
    const state = this.#state
    await state.gate.exclusive(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await vnode.chord.join(this.#routing.remote, via, this.#routing.lookupOptions(signal))
          vnode.active = true
          return
        } catch (err) {
          signal.throwIfAborted()
          const retry =
            err instanceof JoinFailedError ||
            err instanceof LookupFailedError ||
            err instanceof UnknownModelVersionError ||
            (err instanceof DlhtError && err.code === HandOverRefusedError.code)
          if (attempt >= JOIN_ATTEMPTS || !retry) {
            state.vnodes.delete(vnode.ref.id)
            throw err
          }
          await sleep(Math.min(1000, Math.max(50, state.stabilizeMs / 2)), signal)
        }
      }
    })
  }

  /**
   * Notify a (possibly remote) successor and store the entries it hands over with its answer; then
   * tell it they are stored, so that it deletes its copies (if that is lost, it asks us later).
   */
  async notify(target: VnodeRef, candidate: VnodeRef, signal?: AbortSignal): Promise<NotifyAnswer> {
    const state = this.#state
    const vnode = state.vnodes.get(candidate.id)
    const joining = vnode !== undefined && !vnode.active && !vnode.left
    const request = { target: target.id, candidate, joining, modelVersion: state.learnedHash.version }
    const first = await state.ringCall(target, Notify, request, signal).catch(async (err: unknown) => {
      // Entries move only between peers on one version: learn the target's, then try again.
      if (err instanceof UnknownModelVersionError) await this.#versions.catchUpWith(target).catch(() => {})
      throw err
    })
    const answer = first.more
      ? { ...first, records: await this.#restOfHandOver(target, candidate, first, signal) }
      : first
    if (answer.records.length > 0) {
      state.stats.takenOver += answer.records.length
      if (vnode !== undefined && !vnode.left) {
        await state.store.merge(answer.records)
        // A joining vnode is not active yet: its arc is the one the answer hands over. Not awaited:
        // a join holds the transition gate, which sending on to this peer's own vnodes would need.
        const arcStart = answer.accepted ? answer.previousArcStart : candidate.id
        void this.#migration.sendOnMisplaced(
          answer.records,
          (position) => state.ownsLocally(position) || inHalfOpenArc(position, arcStart, candidate.id),
        )
      } else {
        // The vnode left while the answer was on its way: the entries go to whoever owns them now.
        await this.#migration.migrate(
          this.#migration.placed(answer.records),
          signal ?? AbortSignal.timeout(state.options.callTimeout),
        )
      }
    }
    if (answer.accepted && (joining || answer.records.length > 0) && target.peerId !== state.peerId) {
      await state.ringCall(target, HandOverTaken, { target: target.id, candidate }, signal).catch(() => {})
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
      const part = await this.#state.ringCall(
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

  /** Runs check-predecessor, stabilize and fix-fingers on every vnode, every stabilize interval. */
  async maintain(signal: AbortSignal): Promise<void> {
    const state = this.#state
    while (!signal.aborted) {
      await state.untilMaintenance(signal)
      for (const vnode of [...state.vnodes.values()]) {
        if (signal.aborted) return
        // A leaving vnode must not notify: its successor could hand the arc being handed to it back.
        if (!vnode.active || vnode.leaving) continue
        const options = this.#routing.lookupOptions(signal)
        const remote = this.#routing.remote
        const before = neighbourhood(vnode)
        try {
          await vnode.chord.checkPredecessor(remote, options)
          await vnode.chord.stabilize(remote, options)
          await vnode.chord.fixFingers(remote, options)
        } catch {
          // Aborted by stop(), or a neighbour failed mid-round: the next round repairs it.
        }
        // What changed here may change the lists of the vnodes before it: keep going quickly.
        if (neighbourhood(vnode) !== before) state.ringChanged()
      }
      if (this.#rollout.migrating && !signal.aborted) await this.#rollout.poll(signal).catch(() => {})
      if (this.#ringServer.handOversPending) await this.#ringServer.settleHandOvers(signal)
    }
  }

  /** Moves a local vnode to `to`: it leaves (handing its arc over) and joins the ring again there. */
  async moveVnode(from: bigint, to: bigint): Promise<void> {
    const state = this.#state
    const signal = this.#running()
    if (signal === undefined) throw new NotStartedError('the overlay is not started')
    const vnode = state.vnodes.get(from)
    if (vnode === undefined || !vnode.active)
      throw new VnodeUnavailableError(`peer ${state.peerId} runs no vnode at ${from}`)
    if (state.vnodes.has(to))
      throw new InvalidArgumentError(`peer ${state.peerId} already runs a vnode at ${to}`)
    const via = vnode.chord.successors.find((successor) => successor.id !== from)
    if (via === undefined) throw new JoinFailedError('a vnode alone on the ring has nowhere to move')
    await this.#leaveVnode(
      vnode,
      AbortSignal.any([signal, AbortSignal.timeout(LEAVE_PATIENCE_TIMEOUTS * state.options.callTimeout)]),
    )
    if (vnode.active) throw new JoinFailedError(`vnode ${from} could not hand its arc over`)
    state.vnodes.delete(from)
    await this.#joinVnode(this.#newVnode(vnode.ref.vnodeId, to), via, signal)
    state.ringChanged()
  }

  /** Hands every vnode's arc and entries to its successor and tells its predecessor. */
  async leaveRing(signal: AbortSignal): Promise<void> {
    const vnodes = this.#state.vnodes
    // Forgotten only once all have left: the successor lists of those that left lead the others on.
    for (const vnode of [...vnodes.values()]) if (vnode.active) await this.#leaveVnode(vnode, signal)
    vnodes.clear()
  }

  /**
   * The vnode whose arc starts at `ref`, from an entry of ref's successor list: before stabilization
   * has run, vnodes that joined in between are missing from the list, so follow predecessors back
   * (the arc must go to the vnode that holds it, or its entries would sit where no lookup leads).
   */
  async #arcSuccessor(ref: VnodeRef, listed: VnodeRef, signal: AbortSignal): Promise<VnodeRef> {
    const state = this.#state
    const size = state.hashSpaceSize
    let candidate = listed
    for (let hop = 0; hop < 2 * state.options.successorListLength; hop++) {
      const { arcStart, predecessor } = await state.ringCall(
        candidate,
        Neighbours,
        { target: candidate.id },
        signal,
      )
      if (arcStart === ref.id || predecessor === null || predecessor.id === ref.id) return candidate
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
    const state = this.#state
    const { chord, ref } = vnode
    vnode.leaving = true
    // Refusals last while the ring settles around a neighbour joining or leaving: keep trying,
    // a stabilization period apart, until the signal says stop.
    const pause = Math.min(1000, Math.max(100, state.stabilizeMs))
    const outcome = await state.gate.exclusive(async (): Promise<'handed' | 'alone' | 'gave up'> => {
      for (;;) {
        const successors = state.successorsOf(vnode)
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
      state.log(`vnode ${ref.id} could not hand its arc over; its entries stay on this peer`)
    if (outcome !== 'handed') return
    const predecessor = chord.predecessor
    if (predecessor !== null && predecessor.id !== ref.id) {
      await state
        .ringCall(
          predecessor,
          SuccessorLeft,
          { target: predecessor.id, leaving: ref, successors: [...chord.successors] },
          signal,
        )
        .catch(() => {})
    }
  }

  /** One attempt to hand the vnode's arc to the vnode that holds the arc after it (see #arcSuccessor). */
  async #handOver(
    vnode: LocalVnode,
    listed: VnodeRef,
    signal: AbortSignal,
  ): Promise<'handed' | 'refused' | 'unreachable'> {
    const state = this.#state
    const { chord, ref } = vnode
    const successor = await this.#arcSuccessor(ref, listed, signal).catch(() => listed)
    const remote = successor.peerId !== state.peerId
    const arc = { from: chord.arcStart, to: ref.id }
    const records = remote ? this.#ringServer.copyArc(arc) : []
    // Entries beyond one frame go ahead in parts; the Leave carries the last one.
    const parts = partsWithin(records, state.frameBudget)
    const request = {
      target: successor.id,
      leaving: ref,
      predecessor: chord.predecessor,
      arcStart: arc.from,
      records: parts[parts.length - 1],
      modelVersion: state.learnedHash.version,
    }
    for (let attempt = 1; attempt <= HAND_OVER_ATTEMPTS && !signal.aborted; attempt++) {
      try {
        for (const part of parts.slice(0, -1)) {
          const staged = { target: successor.id, leaving: ref, arcStart: arc.from, records: part }
          await state.ringCall(successor, HandOverPart, staged, signal)
        }
        await state.ringCall(successor, Leave, request, signal)
        vnode.active = false
        vnode.left = true
        if (remote) {
          await state.store.removeCopies(records, (position) => state.ownsLocally(position))
          state.handedTo = successor
        }
        state.stats.handedOver += records.length
        return 'handed'
      } catch (err) {
        if (err instanceof DlhtError && err.code === HandOverRefusedError.code) return 'refused'
        if (err instanceof UnknownModelVersionError) {
          // The successor places entries by another version: agree on one, then try again.
          await this.#versions.catchUpWith(successor).catch(() => {})
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
