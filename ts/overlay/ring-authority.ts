// Who may send a message that changes this peer's state: a vnode speaks only for itself, and rollout,
// migration and rebalance messages come only from peers the ring itself shows to own an arc.

import { UnauthorizedMessageError } from '../protocol/errors.js'
import {
  Commit,
  DATA_PROTOCOL,
  HandOverTaken,
  type HandOverTakenRequest,
  Leave,
  type LeaveRequest,
  Migrate,
  MoveVnode,
  Notify,
  type NotifyRequest,
  Prepare,
  type PrepareRequest,
  Replicate,
  RING_PROTOCOL,
  SuccessorLeft,
  type SuccessorLeftRequest,
} from '../protocol/messages.js'
import type { VnodeRef } from '../shared/router.js'

/** What the authority asks of the overlay. */
export interface RingAuthorityHost {
  /** The vnodes a peer says it runs (asked of the peer itself). */
  vnodesOf(peerId: string, signal: AbortSignal): Promise<readonly VnodeRef[]>
  /** The owner of a position, found by a lookup over the ring (not from what peers told us directly). */
  ownerOf(position: bigint, signal: AbortSignal): Promise<VnodeRef>
  /** Whether a local vnode has `peerId` as its predecessor, a successor or a finger. */
  knows(peerId: string): boolean
  log(message: string): void
}

/** How long a peer found on the ring is taken to be a member without asking again, in ms. */
const MEMBER_TTL_MS = 60_000

/** Messages that change state and come from a vnode about itself: the vnode's peer must send them. */
const SELF_CLAIMS: ReadonlyMap<number, (request: never) => VnodeRef> = new Map([
  [Notify.type, (request: NotifyRequest) => request.candidate],
  [HandOverTaken.type, (request: HandOverTakenRequest) => request.candidate],
  [Leave.type, (request: LeaveRequest) => request.leaving],
  [SuccessorLeft.type, (request: SuccessorLeftRequest) => request.leaving],
] as Array<[number, (request: never) => VnodeRef]>)

/** Ring messages only a member of the ring may send: a rollout's prepare and commit, a rebalance move. */
const MEMBERS_ONLY_RING: ReadonlySet<number> = new Set([Prepare.type, Commit.type, MoveVnode.type])

/** Data messages only a member may send: migration batches. */
const MEMBERS_ONLY_DATA: ReadonlySet<number> = new Set([Migrate.type])

/**
 * Data messages a neighbour or a member may send: replicas' copies. A peer that just joined is a
 * neighbour of its successor at once, and found by lookups only after stabilization catches up.
 */
const NEIGHBOURS_OR_MEMBERS_DATA: ReadonlySet<number> = new Set([Replicate.type])

/**
 * Checks the sender of every state-changing message before it is served. A refusal throws
 * UnauthorizedMessageError (which the sender receives) and is logged with its reason. Messages
 * from this peer's own vnodes (no remote peer) are always allowed.
 */
export class RingAuthority {
  readonly #host: RingAuthorityHost
  /** Peers found on the ring, with when. */
  readonly #members = new Map<string, number>()
  /** Membership checks under way, shared by concurrent messages of one peer. */
  readonly #checking = new Map<string, Promise<boolean>>()

  constructor(host: RingAuthorityHost) {
    this.#host = host
  }

  /**
   * @throws UnauthorizedMessageError when `remotePeer` may not send this message
   */
  async check(
    protocol: string,
    type: number,
    request: unknown,
    remotePeer: string | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    if (remotePeer === undefined) return
    if (protocol === RING_PROTOCOL) {
      const claimed = SELF_CLAIMS.get(type)?.(request as never)
      if (claimed !== undefined && claimed.peerId !== remotePeer) {
        this.#refuse(type, remotePeer, `it speaks for vnode ${claimed.id} of peer ${claimed.peerId}`)
      }
      if (type === Prepare.type && (request as PrepareRequest).coordinator !== remotePeer) {
        this.#refuse(type, remotePeer, `it names ${(request as PrepareRequest).coordinator} as coordinator`)
      }
      if (!MEMBERS_ONLY_RING.has(type)) return
    } else if (protocol !== DATA_PROTOCOL) return
    else if (NEIGHBOURS_OR_MEMBERS_DATA.has(type)) {
      if (this.#host.knows(remotePeer)) return
    } else if (!MEMBERS_ONLY_DATA.has(type)) return
    if (!(await this.isMember(remotePeer, signal))) {
      this.#refuse(type, remotePeer, 'no lookup on the ring finds a vnode of it')
    }
  }

  /** Whether the ring shows `peerId` to own an arc: a lookup of one of its vnodes' ids finds that vnode. */
  isMember(peerId: string, signal: AbortSignal): Promise<boolean> {
    const seen = this.#members.get(peerId)
    if (seen !== undefined && performance.now() - seen < MEMBER_TTL_MS) return Promise.resolve(true)
    let checking = this.#checking.get(peerId)
    if (checking === undefined) {
      checking = this.#lookUp(peerId, signal).finally(() => this.#checking.delete(peerId))
      this.#checking.set(peerId, checking)
    }
    return checking
  }

  async #lookUp(peerId: string, signal: AbortSignal): Promise<boolean> {
    try {
      for (const vnode of await this.#host.vnodesOf(peerId, signal)) {
        const owner = await this.#host.ownerOf(vnode.id, signal)
        if (owner.peerId === peerId && owner.id === vnode.id) {
          this.#members.set(peerId, performance.now())
          return true
        }
      }
    } catch (err) {
      this.#host.log(`could not check that ${peerId} is on the ring: ${(err as Error).message}`)
    }
    return false
  }

  #refuse(type: number, remotePeer: string, reason: string): never {
    const message = `refused message ${type} from ${remotePeer}: ${reason}`
    this.#host.log(message)
    throw new UnauthorizedMessageError(message)
  }
}
