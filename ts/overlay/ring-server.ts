// The ring side of the overlay: ring requests served for this peer's vnodes (steps, neighbours,
// notify and leave with the hand-overs of their arcs, the rollout's messages, vnode moves).

import {
  type Arc,
  arcRanges,
  HandOverRefusedError,
  inOpenArc,
  JoinFailedError,
  type NotifyOutcome,
} from '../chord/index.js'
import type { ModelRollout } from '../federation/model-rollout.js'
import type { ScannedRecord } from '../node/data-plane.js'
import { recordsWithin } from '../protocol/answer-pages.js'
import { UnknownMessageError, VnodeUnavailableError } from '../protocol/errors.js'
import { KeySample, type KeySampleRequest } from '../protocol/key-sample.js'
import {
  Abort,
  type ClusterConfig,
  Commit,
  Contribute,
  type ContributeRequest,
  GetConfig,
  HandOverPart,
  type HandOverPartRequest,
  HandOverRecords,
  type HandOverRecordsAnswer,
  type HandOverRecordsRequest,
  HandOverTaken,
  type HandOverTakenRequest,
  Leave,
  type LeaveRequest,
  LoadSample,
  type LoadSampleRequest,
  MoveVnode,
  type NeighbourRefs,
  Neighbours,
  Notify,
  type NotifyAnswer,
  type NotifyRequest,
  Ping,
  Prepare,
  type PrepareRequest,
  RolloutStatus,
  type RolloutStatusRequest,
  Step,
  type StepAnswer,
  type StepRequest,
  SuccessorLeft,
  type SuccessorLeftRequest,
} from '../protocol/messages.js'
import type { VnodeRef } from '../shared/router.js'
import { StagedHandOvers } from './hand-over-parts.js'
import { LEAVE_PATIENCE_TIMEOUTS, type LocalVnode, type OverlayState } from './overlay-state.js'
import type { RingMigration } from './ring-migration.js'
import type { VersionAgreement } from './version-agreement.js'

/** An arc handed over in a notify answer, kept here until the candidate says it stored the entries. */
interface PendingHandOver {
  readonly candidate: VnodeRef
  readonly arc: Arc
  /** The entries copied into the answer: deleted here by key once taken. */
  readonly records: readonly ScannedRecord[]
  /** The notify outcome, sent again to a joiner that asks again (its first answer was lost). */
  readonly previousPredecessor: VnodeRef | null
  readonly at: number
}

/** Names a Leave: the leaving vnode and the start of the arc it hands over. */
function leaveKey(leaving: VnodeRef, arcStart: bigint): string {
  return `${leaving.peerId}/${leaving.id}/${arcStart}`
}

function handOverKey(vnode: VnodeRef): string {
  return `${vnode.peerId}/${vnode.id}`
}

/** Hand-overs a peer remembers having taken, so that a repeated Leave is only acknowledged. */
const REMEMBERED_HAND_OVERS = 64

/** What the ring server needs from the rest of the overlay. */
export interface RingServerInit {
  state: OverlayState
  versions: VersionAgreement
  rollout: ModelRollout
  migration: RingMigration
  /** Moves a local vnode to another id (a rebalance's move, asked by its coordinator). */
  moveVnode(from: bigint, to: bigint): Promise<void>
}

/** Serves ring requests and keeps the hand-overs of arcs in flight. */
export class RingServer {
  readonly #state: OverlayState
  readonly #versions: VersionAgreement
  readonly #rollout: ModelRollout
  readonly #migration: RingMigration
  readonly #moveVnode: (from: bigint, to: bigint) => Promise<void>
  /** Recent hand-overs taken from leaving vnodes, oldest first (see `#serveLeave`). */
  readonly #handOversTaken = new Set<string>()
  /**
   * When each vnode that handed its arc to one of ours left (by ring id): a notify it sent before
   * leaving may still arrive, and must not take the arc back (its peer would store the entries
   * for a vnode that no longer exists).
   */
  readonly #departed = new Map<bigint, number>()
  /** Arcs handed to a notifying vnode whose entries are still here until it says it stored them. */
  readonly #pendingHandOvers = new Map<string, PendingHandOver>()
  /** Entries of leaving vnodes' arcs that came ahead of their Leave (more than a frame holds). */
  readonly #stagedHandOvers: StagedHandOvers

  constructor(init: RingServerInit) {
    this.#state = init.state
    this.#versions = init.versions
    this.#rollout = init.rollout
    this.#migration = init.migration
    this.#moveVnode = init.moveVnode
    this.#stagedHandOvers = new StagedHandOvers(2 * LEAVE_PATIENCE_TIMEOUTS * init.state.options.callTimeout)
  }

  /** Entries copied to joiners that have not confirmed they stored them. */
  unconfirmedCopies(): number {
    let copies = 0
    for (const pending of this.#pendingHandOvers.values()) copies += pending.records.length
    return copies
  }

  /** Whether hand-overs wait for their candidate's confirmation (see `settleHandOvers`). */
  get handOversPending(): boolean {
    return this.#pendingHandOvers.size > 0
  }

  /** The ring's configuration as this peer sees it. */
  clusterConfig(): ClusterConfig {
    const state = this.#state
    return {
      hashSpaceSize: state.hashSpaceSize,
      modelVersion: state.learnedHash.version,
      model: state.learnedHash.version === 0 ? null : JSON.stringify(state.learnedHash.toDict()),
      vnodes: state.localVnodes(),
      ...this.#rollout.config(),
    }
  }

  /** The entries of a local arc, with their versions. */
  copyArc(arc: Arc): ScannedRecord[] {
    const records: ScannedRecord[] = []
    for (const [from, to] of arcRanges(arc.from, arc.to, this.#state.hashSpaceSize))
      records.push(...this.#state.store.scanStamped(from, to))
    return records
  }

  /** Serves a ring request (decoded); `local` when it comes from this peer's own vnodes. */
  async serve(type: number, request: unknown, local: boolean): Promise<unknown> {
    const state = this.#state
    switch (type) {
      case Ping.type:
        return undefined
      case GetConfig.type:
        return this.clusterConfig()
      case Step.type: {
        const { target, position, avoid } = request as StepRequest
        return this.#ringVnode(target).chord.step(position, new Set(avoid)) satisfies StepAnswer
      }
      case Neighbours.type:
        return this.#ringVnode(
          (request as { target: bigint }).target,
        ).chord.neighbours() satisfies NeighbourRefs
      case Notify.type:
        return this.#serveNotify(request as NotifyRequest, local)
      case Leave.type:
        return this.#serveLeave(request as LeaveRequest)
      case HandOverPart.type: {
        const { target, leaving, arcStart, records } = request as HandOverPartRequest
        this.#ringVnode(target)
        this.#stagedHandOvers.add(leaveKey(leaving, arcStart), records)
        return undefined
      }
      case HandOverRecords.type:
        return this.#serveHandOverRecords(request as HandOverRecordsRequest)
      case HandOverTaken.type: {
        const { candidate } = request as HandOverTakenRequest
        const pending = this.#pendingHandOvers.get(handOverKey(candidate))
        if (pending !== undefined) await this.#dropHandedCopies(pending)
        return undefined
      }
      case SuccessorLeft.type: {
        const { target, leaving, successors } = request as SuccessorLeftRequest
        this.#ringVnode(target).chord.successorLeft(leaving, successors)
        state.forget(leaving, true)
        state.ringChanged()
        return undefined
      }
      case Contribute.type:
        // Entries moving in a join or leave are counted once they have landed.
        await state.gate.idle(AbortSignal.timeout(state.options.callTimeout / 2)).catch(() => {})
        return this.#rollout.contribution((request as ContributeRequest).keyCode)
      case KeySample.type:
        return this.#rollout.keySample((request as KeySampleRequest).limit)
      case Prepare.type:
        return this.#rollout.prepare(request as PrepareRequest)
      case Commit.type:
        this.#rollout.commit(request as { version: number; digest: string })
        return undefined
      case Abort.type:
        this.#rollout.abort(request as { version: number; digest: string })
        return undefined
      case LoadSample.type: {
        const { stride, modelVersion } = request as LoadSampleRequest
        this.#versions.require(modelVersion, undefined, 'load sample')
        return { positions: state.store.samplePositions(stride) }
      }
      case MoveVnode.type: {
        const { from, to } = request as { from: bigint; to: bigint }
        await this.#moveVnode(from, to)
        return undefined
      }
      case RolloutStatus.type:
        return this.#rollout.status(request as RolloutStatusRequest)
    }
    throw new UnknownMessageError(`unknown ring message ${type}`)
  }

  #ringVnode(id: bigint): LocalVnode {
    const vnode = this.#state.vnodes.get(id)
    if (vnode === undefined || vnode.left)
      throw new VnodeUnavailableError(`peer ${this.#state.peerId} runs no vnode at ${id}`)
    // Until its join is accepted here, its answers would be those of a lone ring owning everything.
    if (!vnode.chord.onRing) throw new VnodeUnavailableError(`vnode ${id} is still joining the ring`)
    return vnode
  }

  async #serveNotify(request: NotifyRequest, local: boolean): Promise<NotifyAnswer> {
    const state = this.#state
    const vnode = this.#ringVnode(request.target)
    const { candidate } = request
    // As many entries as fit a frame; the candidate asks for the others (`HandOverRecords`).
    const answer = (records: ScannedRecord[], outcome: NotifyOutcome<VnodeRef>): NotifyAnswer => {
      const sent = recordsWithin(records, state.frameBudget)
      return {
        accepted: outcome.accepted,
        previousPredecessor: outcome.previousPredecessor,
        previousArcStart: outcome.previousArcStart,
        records: sent,
        more: sent.length < records.length,
      }
    }
    const predecessor = vnode.chord.lastKnownPredecessor
    if (predecessor?.id === candidate.id) {
      // Stabilization repeats notify every round: one that changes nothing needs no hand-over.
      if (!request.joining) return answer([], vnode.chord.notify(candidate))
      // A joiner asking again lost our first answer: send it again, entries included.
      const pending = this.#pendingHandOvers.get(handOverKey(candidate))
      if (pending === undefined || predecessor.peerId !== candidate.peerId)
        throw new JoinFailedError(`position ${candidate.id} is already taken on the ring`)
      vnode.chord.notify(candidate)
      return state.gate.exclusive(async () =>
        answer([...pending.records], {
          accepted: true,
          previousPredecessor: pending.previousPredecessor,
          previousArcStart: pending.arc.from,
        }),
      )
    }
    return state.gate.exclusive(async () => {
      if (vnode.leaving)
        throw new HandOverRefusedError(`vnode ${vnode.ref.id} is leaving; join next to its successor`)
      if (this.#departedRecently(candidate.id))
        throw new HandOverRefusedError(`vnode ${candidate.id} handed its arc here a moment ago`)
      // Entries of an arc are chosen by position: the candidate must place them as we do.
      if (!local && inOpenArc(candidate.id, vnode.chord.arcStart, vnode.ref.id))
        this.#versions.require(request.modelVersion, candidate.peerId, 'hand-over')
      const outcome = vnode.chord.notify(candidate)
      if (outcome.accepted) state.ringChanged()
      if (outcome.handedOver === null || local) return answer([], outcome)
      state.cache.add(outcome.handedOver.from, candidate)
      // Copied, not moved: deleted here once the candidate says it stored them (or is seen on the ring).
      const records = this.copyArc(outcome.handedOver)
      this.#pendingHandOvers.set(handOverKey(candidate), {
        candidate,
        arc: outcome.handedOver,
        records,
        previousPredecessor: outcome.previousPredecessor,
        at: performance.now(),
      })
      state.stats.handedOver += records.length
      return answer(records, outcome)
    })
  }

  /** The entries of a notify answer from `from` on, as many as fit a frame. */
  #serveHandOverRecords({ candidate, from }: HandOverRecordsRequest): HandOverRecordsAnswer {
    const pending = this.#pendingHandOvers.get(handOverKey(candidate))
    if (pending === undefined || from > pending.records.length)
      throw new JoinFailedError(`no hand-over to ${candidate.id} is waiting here`)
    const records = recordsWithin(pending.records.slice(from), this.#state.frameBudget)
    return { records, more: from + records.length < pending.records.length }
  }

  /**
   * Deletes the copies of entries handed over in a notify answer, except those this peer owns
   * again (the candidate failed and the ring gave the arc back, or another vnode of ours took part).
   */
  async #dropHandedCopies(pending: PendingHandOver): Promise<void> {
    const key = handOverKey(pending.candidate)
    if (this.#pendingHandOvers.get(key) !== pending) return
    this.#pendingHandOvers.delete(key)
    const state = this.#state
    await state.gate.exclusive(async () => {
      await state.store.removeCopies(pending.records, (position) => state.ownsLocally(position))
    })
  }

  /**
   * Hand-overs whose candidate never said it stored the entries (the message was lost): once it is
   * seen on the ring it has them (a join stores them before it ends), so the copies go; a candidate
   * that is gone leaves them here, where the ring gives the arc back.
   */
  async settleHandOvers(signal: AbortSignal): Promise<void> {
    const state = this.#state
    const horizon = performance.now() - Math.max(4 * state.options.callTimeout, 3 * state.stabilizeMs)
    for (const pending of [...this.#pendingHandOvers.values()]) {
      if (pending.at > horizon || signal.aborted) continue
      const { candidate } = pending
      const alive = await state.ringCall(candidate, Neighbours, { target: candidate.id }, signal).then(
        () => true,
        () => false,
      )
      if (alive) await this.#dropHandedCopies(pending)
      else this.#pendingHandOvers.delete(handOverKey(candidate))
    }
  }

  /**
   * Takes over the arc of a leaving predecessor, with its entries. Refused unless our arc starts
   * at the leaving vnode (else the entries would sit where no lookup leads) and while we are
   * leaving ourselves. A Leave repeated because its answer was lost is acknowledged and not stored
   * again: writes may have landed here since.
   */
  async #serveLeave(request: LeaveRequest): Promise<undefined> {
    const state = this.#state
    const vnode = this.#ringVnode(request.target)
    const { leaving } = request
    const handOver = leaveKey(leaving, request.arcStart)
    // Entries that did not fit the Leave's frame came ahead of it.
    const staged = this.#stagedHandOvers.take(handOver)
    if (this.#handOversTaken.has(handOver)) return undefined
    const records = staged.length === 0 ? request.records : [...staged, ...request.records]
    await state.gate.exclusive(async () => {
      if (!vnode.active || vnode.leaving || vnode.chord.arcStart !== leaving.id) {
        throw new HandOverRefusedError(
          `vnode ${vnode.ref.id} (arc from ${vnode.chord.arcStart}${vnode.leaving ? ', leaving' : ''}) cannot take the arc of ${leaving.id}`,
        )
      }
      if (records.length > 0) this.#versions.require(request.modelVersion, leaving.peerId, 'hand-over')
      this.#handOversTaken.add(handOver)
      if (this.#handOversTaken.size > REMEMBERED_HAND_OVERS)
        this.#handOversTaken.delete(this.#handOversTaken.values().next().value as string)
      this.#departed.set(leaving.id, performance.now())
      vnode.chord.predecessorLeft(leaving, request.predecessor, request.arcStart)
      if (records.length > 0) {
        await state.store.merge(records)
        state.stats.takenOver += records.length
      }
    })
    state.forget(leaving, true)
    state.ringChanged()
    if (records.length > 0)
      void this.#migration.sendOnMisplaced(records, (position) => state.ownsLocally(position))
    return undefined
  }

  /**
   * Whether vnode `id` handed its arc to one of ours within the last call timeout: longer than a
   * notify it sent before leaving can take to arrive (a join at the same id is retried meanwhile).
   */
  #departedRecently(id: bigint): boolean {
    const horizon = performance.now() - this.#state.options.callTimeout
    for (const [departed, at] of this.#departed) if (at < horizon) this.#departed.delete(departed)
    return this.#departed.has(id)
  }
}
