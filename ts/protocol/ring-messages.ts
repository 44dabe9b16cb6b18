// The messages of ring maintenance: lookups (steps, neighbours), notify and leave with the
// hand-overs of arcs and their entries, load samples and vnode moves.

import type { Neighbours as ChordNeighbours, NotifyOutcome } from '../chord/index.js'
import type { ScannedRecord } from '../shared/data-plane.js'
import type { VnodeRef } from '../shared/router.js'
import { readArray, readBigint, readBoolean, readNullable, readUint } from './codec.js'
import { MalformedMessageError } from './errors.js'
import {
  type MessageCodec,
  nothing,
  readRecords,
  readRef,
  readRefs,
  writeRecords,
  writeRef,
} from './message-codec.js'

/** A vnode's predecessor, arc and successors, as sent over the wire. */
export type NeighbourRefs = ChordNeighbours<VnodeRef>

/** A notify outcome with the entries of the arc the candidate took over. */
export interface NotifyAnswer extends NotifyOutcome<VnodeRef> {
  records: ScannedRecord[]
  /** More entries than fit one frame: the candidate fetches the rest with `HandOverRecords`. */
  more?: boolean
}

/** Liveness check (check-predecessor). */
export const Ping: MessageCodec<undefined, undefined> = {
  type: 1,
  writeRequest: nothing.write,
  readRequest: nothing.read,
  writeAnswer: nothing.write,
  readAnswer: nothing.read,
}

/** A ring call addressed to one vnode of the receiving peer. */
interface Addressed {
  target: bigint
}

export interface StepRequest extends Addressed {
  position: bigint
  avoid: bigint[]
}

export type StepAnswer =
  | { kind: 'owner'; owner: VnodeRef; arcStart: bigint }
  | { kind: 'next'; next: VnodeRef }

/** One step of an iterative lookup (find_successor). */
export const Step: MessageCodec<StepRequest, StepAnswer> = {
  type: 3,
  writeRequest: (request) => [request.target, request.position, request.avoid],
  readRequest: (body, size) => {
    const [target, position, avoid] = readArray(body, 'step', 3)
    return {
      target: readBigint(target, 'target', size),
      position: readBigint(position, 'position', size),
      avoid: readArray(avoid, 'avoid').map((id) => readBigint(id, 'avoided id', size)),
    }
  },
  writeAnswer: (answer) =>
    answer.kind === 'owner' ? [0, writeRef(answer.owner), answer.arcStart] : [1, writeRef(answer.next)],
  readAnswer: (body, size) => {
    const fields = readArray(body, 'step answer')
    if (fields[0] === 0 && fields.length === 3) {
      return {
        kind: 'owner',
        owner: readRef(fields[1], size),
        arcStart: readBigint(fields[2], 'arc start', size),
      }
    }
    if (fields[0] === 1 && fields.length === 2) return { kind: 'next', next: readRef(fields[1], size) }
    throw new MalformedMessageError('step answer is neither an owner nor a next hop')
  },
}

/** get_predecessor and get_successor_list in one call. */
export const Neighbours: MessageCodec<Addressed, NeighbourRefs> = {
  type: 4,
  writeRequest: (request) => [request.target],
  readRequest: (body, size) => ({ target: readBigint(readArray(body, 'neighbours', 1)[0], 'target', size) }),
  writeAnswer: (answer) => [
    answer.predecessor === null ? null : writeRef(answer.predecessor),
    answer.arcStart,
    answer.successors.map(writeRef),
  ],
  readAnswer: (body, size) => {
    const [predecessor, arcStart, successors] = readArray(body, 'neighbours answer', 3)
    return {
      predecessor: readNullable(predecessor, (ref) => readRef(ref, size)),
      arcStart: readBigint(arcStart, 'arc start', size),
      successors: readRefs(successors, size),
    }
  },
}

export interface NotifyRequest extends Addressed {
  candidate: VnodeRef
  /** Sent by a vnode placing itself on the ring (not by stabilization). */
  joining: boolean
  /** The sender's model version: entries are handed over only between peers that place them alike. */
  modelVersion: number
}

/**
 * Chord's notify; the answer carries a copy of the entries of the arc the candidate now owns (the
 * receiver deletes its copies once told `HandOverTaken`).
 */
export const Notify: MessageCodec<NotifyRequest, NotifyAnswer> = {
  type: 5,
  writeRequest: (request) => [
    request.target,
    writeRef(request.candidate),
    request.joining,
    request.modelVersion,
  ],
  readRequest: (body, size) => {
    const [target, candidate, joining, modelVersion] = readArray(body, 'notify', 4)
    return {
      target: readBigint(target, 'target', size),
      candidate: readRef(candidate, size),
      joining: readBoolean(joining, 'joining'),
      modelVersion: readUint(modelVersion, 'model version'),
    }
  },
  writeAnswer: (answer) => [
    answer.accepted,
    answer.previousPredecessor === null ? null : writeRef(answer.previousPredecessor),
    answer.previousArcStart,
    writeRecords(answer.records),
    answer.more ?? false,
  ],
  readAnswer: (body, size) => {
    const [accepted, previousPredecessor, previousArcStart, records, more] = readArray(
      body,
      'notify answer',
      5,
    )
    return {
      accepted: readBoolean(accepted, 'accepted'),
      previousPredecessor: readNullable(previousPredecessor, (ref) => readRef(ref, size)),
      previousArcStart: readBigint(previousArcStart, 'arc start', size),
      records: readRecords(records, size),
      more: readBoolean(more, 'more'),
    }
  },
}

export interface LeaveRequest extends Addressed {
  leaving: VnodeRef
  predecessor: VnodeRef | null
  arcStart: bigint
  records: ScannedRecord[]
  /** The version that placed `records` (see NotifyRequest). */
  modelVersion: number
}

/** A gracefully leaving vnode hands its arc and entries to its successor. */
export const Leave: MessageCodec<LeaveRequest, undefined> = {
  type: 6,
  writeRequest: (request) => [
    request.target,
    writeRef(request.leaving),
    request.predecessor === null ? null : writeRef(request.predecessor),
    request.arcStart,
    writeRecords(request.records),
    request.modelVersion,
  ],
  readRequest: (body, size) => {
    const [target, leaving, predecessor, arcStart, records, modelVersion] = readArray(body, 'leave', 6)
    return {
      target: readBigint(target, 'target', size),
      leaving: readRef(leaving, size),
      predecessor: readNullable(predecessor, (ref) => readRef(ref, size)),
      arcStart: readBigint(arcStart, 'arc start', size),
      records: readRecords(records, size),
      modelVersion: readUint(modelVersion, 'model version'),
    }
  },
  writeAnswer: nothing.write,
  readAnswer: nothing.read,
}

export interface SuccessorLeftRequest extends Addressed {
  leaving: VnodeRef
  successors: VnodeRef[]
}

/** A gracefully leaving vnode tells its predecessor whom to point at instead. */
export const SuccessorLeft: MessageCodec<SuccessorLeftRequest, undefined> = {
  type: 7,
  writeRequest: (request) => [request.target, writeRef(request.leaving), request.successors.map(writeRef)],
  readRequest: (body, size) => {
    const [target, leaving, successors] = readArray(body, 'successor left', 3)
    return {
      target: readBigint(target, 'target', size),
      leaving: readRef(leaving, size),
      successors: readRefs(successors, size),
    }
  },
  writeAnswer: nothing.write,
  readAnswer: nothing.read,
}

/** Every `stride`-th key position a peer holds, placed by `modelVersion` (the peer refuses another). */
export interface LoadSampleRequest {
  stride: number
  modelVersion: number
}

/** Every `stride`-th stored position of a peer (in ring order): a profile of where its keys lie. */
export const LoadSample: MessageCodec<LoadSampleRequest, { positions: bigint[] }> = {
  type: 13,
  writeRequest: (request) => [request.stride, request.modelVersion],
  readRequest: (body) => {
    const [stride, modelVersion] = readArray(body, 'load sample', 2)
    return { stride: readUint(stride, 'stride'), modelVersion: readUint(modelVersion, 'model version') }
  },
  writeAnswer: (answer) => answer.positions,
  readAnswer: (body, size) => ({
    positions: readArray(body, 'positions').map((position) => readBigint(position, 'position', size)),
  }),
}

/** Moves one of the receiver's vnodes: it leaves (handing its entries over) and rejoins at `to`. */
export const MoveVnode: MessageCodec<{ from: bigint; to: bigint }, undefined> = {
  type: 14,
  writeRequest: (request) => [request.from, request.to],
  readRequest: (body, size) => {
    const [from, to] = readArray(body, 'move vnode', 2)
    return { from: readBigint(from, 'vnode id', size), to: readBigint(to, 'new vnode id', size) }
  },
  writeAnswer: nothing.write,
  readAnswer: nothing.read,
}

export interface HandOverTakenRequest extends Addressed {
  candidate: VnodeRef
}

/** The candidate of an accepted notify stored the entries of its answer: the receiver drops its copies. */
export const HandOverTaken: MessageCodec<HandOverTakenRequest, undefined> = {
  type: 15,
  writeRequest: (request) => [request.target, writeRef(request.candidate)],
  readRequest: (body, size) => {
    const [target, candidate] = readArray(body, 'hand-over taken', 2)
    return { target: readBigint(target, 'target', size), candidate: readRef(candidate, size) }
  },
  writeAnswer: nothing.write,
  readAnswer: nothing.read,
}

export interface HandOverPartRequest extends Addressed {
  leaving: VnodeRef
  arcStart: bigint
  records: ScannedRecord[]
}

/**
 * Entries of a leaving vnode's arc sent ahead of its `Leave` when they do not fit one frame; the
 * receiver keeps them aside and stores them only with the `Leave` it accepts.
 */
export const HandOverPart: MessageCodec<HandOverPartRequest, undefined> = {
  type: 16,
  writeRequest: (request) => [
    request.target,
    writeRef(request.leaving),
    request.arcStart,
    writeRecords(request.records),
  ],
  readRequest: (body, size) => {
    const [target, leaving, arcStart, records] = readArray(body, 'hand-over part', 4)
    return {
      target: readBigint(target, 'target', size),
      leaving: readRef(leaving, size),
      arcStart: readBigint(arcStart, 'arc start', size),
      records: readRecords(records, size),
    }
  },
  writeAnswer: nothing.write,
  readAnswer: nothing.read,
}

export interface HandOverRecordsRequest extends Addressed {
  candidate: VnodeRef
  /** Index of the first entry wanted (those before it came in earlier answers). */
  from: number
}

export interface HandOverRecordsAnswer {
  records: ScannedRecord[]
  more: boolean
}

/** The entries of an accepted notify's hand-over from `from` on, as many as fit one frame. */
export const HandOverRecords: MessageCodec<HandOverRecordsRequest, HandOverRecordsAnswer> = {
  type: 17,
  writeRequest: (request) => [request.target, writeRef(request.candidate), request.from],
  readRequest: (body, size) => {
    const [target, candidate, from] = readArray(body, 'hand-over records', 3)
    return {
      target: readBigint(target, 'target', size),
      candidate: readRef(candidate, size),
      from: readUint(from, 'from'),
    }
  },
  writeAnswer: (answer) => [writeRecords(answer.records), answer.more],
  readAnswer: (body, size) => {
    const [records, more] = readArray(body, 'hand-over records answer', 2)
    return { records: readRecords(records, size), more: readBoolean(more, 'more') }
  },
}
