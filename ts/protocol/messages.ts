// The messages of the dlht protocols: ring maintenance and the data plane, as compact msgpack tuples.
// Each message has a codec that writes its request and answer and reads them back, checked.

import type { Neighbours as ChordNeighbours, NotifyOutcome } from '../chord/index.js'
import type { ScanFilter, ScannedRecord } from '../node/data-plane.js'
import { decodeKeyBytes, encodeKeyBytes, type NodeKey } from '../node/keys.js'
import type { VnodeRef } from '../shared/router.js'
import type { Stamp } from '../storage/stamp.js'
import {
  readArray,
  readBigint,
  readBoolean,
  readBytes,
  readNullable,
  readNumber,
  readString,
  readUint,
} from './codec.js'
import { MalformedMessageError } from './errors.js'
import { KeySample } from './key-sample.js'

/** A vnode's predecessor, arc and successors, as sent over the wire. */
export type NeighbourRefs = ChordNeighbours<VnodeRef>

/** A notify outcome with the entries of the arc the candidate took over. */
export interface NotifyAnswer extends NotifyOutcome<VnodeRef> {
  records: ScannedRecord[]
  /** More entries than fit one frame: the candidate fetches the rest with `HandOverRecords`. */
  more?: boolean
}

// 3.0.0: entries move with their versions (replicas decide by them); models of format 3 (learned
// key codes), which a 2.0.0 peer cannot read, and rounds that sample byte keys (KeySample) and send
// the key code (Contribute). 2.0.0: key encoding 2 (KEY_ENCODING_VERSION). Peers of different
// major versions must not share a ring.
/** Ring maintenance: lookups, stabilization, joins and graceful leaves. */
export const RING_PROTOCOL = '/dlht/3.0.0/ring'
/** Data plane: put, get, delete and scans of ring positions, batched. */
export const DATA_PROTOCOL = '/dlht/3.0.0/data'

/**
 * One message of a protocol: its type id and how its request and answer cross the wire.
 * Readers take the ring size so that every position is checked to lie on the ring.
 */
export interface MessageCodec<Request, Answer> {
  readonly type: number
  writeRequest(request: Request): unknown
  readRequest(body: unknown, hashSpaceSize: bigint): Request
  writeAnswer(answer: Answer): unknown
  readAnswer(body: unknown, hashSpaceSize: bigint): Answer
}

function writeRef(ref: VnodeRef): unknown {
  return [ref.peerId, ref.vnodeId, ref.id, ref.multiaddrs]
}

function readRef(value: unknown, hashSpaceSize: bigint): VnodeRef {
  const [peerId, vnodeId, id, multiaddrs] = readArray(value, 'vnode', 4)
  return {
    peerId: readString(peerId, 'peer id'),
    vnodeId: readUint(vnodeId, 'vnode index'),
    id: readBigint(id, 'vnode id', hashSpaceSize),
    multiaddrs: readArray(multiaddrs, 'multiaddrs').map((address) => readString(address, 'multiaddr')),
  }
}

function readRefs(value: unknown, hashSpaceSize: bigint): VnodeRef[] {
  return readArray(value, 'vnodes').map((ref) => readRef(ref, hashSpaceSize))
}

/** Reads a key sent as its canonical bytes (`encodeKeyBytes`). */
export function readKey(value: unknown): NodeKey {
  try {
    return decodeKeyBytes(readBytes(value, 'key'))
  } catch (err) {
    throw new MalformedMessageError('key bytes are not a canonical key', { cause: err })
  }
}

/** A record as [position, key, value], or with its version as [..., version, origin, deleted]. */
function writeRecords(records: readonly ScannedRecord[]): unknown {
  return records.map(({ position, key, value, stamp }) =>
    stamp === undefined
      ? [position, encodeKeyBytes(key), value]
      : [position, encodeKeyBytes(key), value, stamp.version, stamp.origin, stamp.deleted],
  )
}

function readRecords(value: unknown, hashSpaceSize: bigint): ScannedRecord[] {
  return readArray(value, 'records').map((record) => {
    const fields = readArray(record, 'record')
    if (fields.length !== 3 && fields.length !== 6)
      throw new MalformedMessageError('a record must have 3 or 6 fields')
    const [position, key, bytes, version, origin, deleted] = fields
    const read: ScannedRecord = {
      position: readBigint(position, 'position', hashSpaceSize),
      key: readKey(key),
      value: readBytes(bytes, 'value'),
    }
    if (fields.length === 6) {
      read.stamp = {
        version: readUint(version, 'version'),
        origin: readUint(origin, 'origin'),
        deleted: readBoolean(deleted, 'deleted'),
      }
    }
    return read
  })
}

function readNothing(body: unknown): undefined {
  if (body !== null && body !== undefined) throw new MalformedMessageError('expected an empty body')
  return undefined
}

const nothing = {
  write: (): unknown => null,
  read: (body: unknown): undefined => readNothing(body),
}

/** Liveness check (check-predecessor). */
export const Ping: MessageCodec<undefined, undefined> = {
  type: 1,
  writeRequest: nothing.write,
  readRequest: nothing.read,
  writeAnswer: nothing.write,
  readAnswer: nothing.read,
}

/** A peer and where it listens. */
export interface PeerRef {
  peerId: string
  multiaddrs: string[]
}

function writePeer(peer: PeerRef): unknown {
  return [peer.peerId, peer.multiaddrs]
}

function readPeers(value: unknown): PeerRef[] {
  return readArray(value, 'peers').map((peer) => {
    const [peerId, multiaddrs] = readArray(peer, 'peer', 2)
    return {
      peerId: readString(peerId, 'peer id'),
      multiaddrs: readArray(multiaddrs, 'multiaddrs').map((address) => readString(address, 'multiaddr')),
    }
  })
}

/** A model offered to the ring: the version it would become, its SHA-256 digest and `serialize()` bytes. */
export interface ModelOffer {
  version: number
  digest: string
  bytes: Uint8Array
}

function writeOffer(offer: ModelOffer): unknown {
  return [offer.version, offer.digest, offer.bytes]
}

function readOffer(value: unknown): ModelOffer {
  const [version, digest, bytes] = readArray(value, 'model offer', 3)
  return {
    version: readUint(version, 'model version'),
    digest: readString(digest, 'digest'),
    bytes: readBytes(bytes, 'model bytes'),
  }
}

/** What a joining (or lagging) node learns from a peer: the ring's model and the state of a rollout. */
export interface ClusterConfig {
  hashSpaceSize: bigint
  modelVersion: number
  /** JSON of the learned hash (`LearnedHashDict`); null while the ring uses the untrained mapping. */
  model: string | null
  /** The answering peer's vnodes, where the joiner's lookups start. */
  vnodes: VnodeRef[]
  /** A model the peer has prepared to adopt next (a rollout between prepare and commit). */
  prepared: ModelOffer | null
  /** JSON of the model the current one replaced, while entries placed by it are still migrating. */
  previousModel: string | null
  /** Peers the answering peer knows to be still migrating entries to their new owners. */
  migrating: PeerRef[]
}

export const GetConfig: MessageCodec<undefined, ClusterConfig> = {
  type: 2,
  writeRequest: nothing.write,
  readRequest: nothing.read,
  writeAnswer: (config) => [
    config.hashSpaceSize,
    config.modelVersion,
    config.model,
    config.vnodes.map(writeRef),
    config.prepared === null ? null : writeOffer(config.prepared),
    config.previousModel,
    config.migrating.map(writePeer),
  ],
  readAnswer: (body) => {
    const [hashSpaceSize, modelVersion, model, vnodes, prepared, previousModel, migrating] = readArray(
      body,
      'config',
      7,
    )
    const size = readBigint(hashSpaceSize, 'hash space size')
    return {
      hashSpaceSize: size,
      modelVersion: readUint(modelVersion, 'model version'),
      model: readNullable(model, (json) => readString(json, 'model')),
      vnodes: readRefs(vnodes, size),
      prepared: readNullable(prepared, readOffer),
      previousModel: readNullable(previousModel, (json) => readString(json, 'previous model')),
      migrating: readPeers(migrating),
    }
  },
}

/** A node's share of a federated round: its local model's bytes (null with no keys) and key count. */
export interface Contribution {
  model: Uint8Array | null
  weight: number
}

/** A round's request for contributions: the version it would install, and the model whose key code
 * every contribution must be trained under (its bytes; null: the fixed text code). */
export interface ContributeRequest {
  version: number
  keyCode: Uint8Array | null
}

/** Asks a peer for its contribution to the round that would install `version`. */
export const Contribute: MessageCodec<ContributeRequest, Contribution> = {
  type: 8,
  writeRequest: (request) => [request.version, request.keyCode],
  readRequest: (body) => {
    const [version, keyCode] = readArray(body, 'contribute', 2)
    return {
      version: readUint(version, 'model version'),
      keyCode: readNullable(keyCode, (bytes) => readBytes(bytes, 'key code model')),
    }
  },
  writeAnswer: (answer) => [answer.model, answer.weight],
  readAnswer: (body) => {
    const [model, weight] = readArray(body, 'contribution', 2)
    return {
      model: readNullable(model, (bytes) => readBytes(bytes, 'model bytes')),
      weight: readUint(weight, 'weight'),
    }
  },
}

export interface PrepareRequest extends ModelOffer {
  /** The peer running the round. */
  coordinator: string
  /** Every peer of the round: after the commit they all migrate entries, watched until done. */
  members: PeerRef[]
}

/** Whether a peer will adopt the offered model; `reason` and `message` say why not. */
export interface PrepareAnswer {
  accepted: boolean
  reason: string | null
  message: string | null
}

/** Phase one of a rollout: validate the model and hold it, ready to commit. */
export const Prepare: MessageCodec<PrepareRequest, PrepareAnswer> = {
  type: 9,
  writeRequest: (request) => [writeOffer(request), request.coordinator, request.members.map(writePeer)],
  readRequest: (body) => {
    const [offer, coordinator, members] = readArray(body, 'prepare', 3)
    return {
      ...readOffer(offer),
      coordinator: readString(coordinator, 'coordinator'),
      members: readPeers(members),
    }
  },
  writeAnswer: (answer) => [answer.accepted, answer.reason, answer.message],
  readAnswer: (body) => {
    const [accepted, reason, message] = readArray(body, 'prepare answer', 3)
    return {
      accepted: readBoolean(accepted, 'accepted'),
      reason: readNullable(reason, (text) => readString(text, 'reason')),
      message: readNullable(message, (text) => readString(text, 'message')),
    }
  },
}

/** Phase two: adopt the prepared model (version and digest) and start migrating entries. */
export const Commit: MessageCodec<{ version: number; digest: string }, undefined> = {
  type: 10,
  writeRequest: (request) => [request.version, request.digest],
  readRequest: (body) => {
    const [version, digest] = readArray(body, 'commit', 2)
    return { version: readUint(version, 'model version'), digest: readString(digest, 'digest') }
  },
  writeAnswer: nothing.write,
  readAnswer: nothing.read,
}

/** Drops a prepared model (the round failed). */
export const Abort: MessageCodec<{ version: number; digest: string }, undefined> = { ...Commit, type: 11 }

/** A peer's model version and whether it still has entries to move to their new owners. */
export interface RolloutStatusRequest {
  modelVersion: number
  /** The asking peer, which the receiver watches too while it is migrating. */
  peer: PeerRef
  migrating: boolean
}

export interface RolloutStatusAnswer {
  modelVersion: number
  migrating: boolean
  /** Peers the receiver knows to be still migrating (so that every peer learns of every one). */
  watching: PeerRef[]
}

/** Asked of migrating peers each stabilization, until they are done. */
export const RolloutStatus: MessageCodec<RolloutStatusRequest, RolloutStatusAnswer> = {
  type: 12,
  writeRequest: (request) => [request.modelVersion, writePeer(request.peer), request.migrating],
  readRequest: (body) => {
    const [modelVersion, peer, migrating] = readArray(body, 'rollout status', 3)
    return {
      modelVersion: readUint(modelVersion, 'model version'),
      peer: readPeers([peer])[0],
      migrating: readBoolean(migrating, 'migrating'),
    }
  },
  writeAnswer: (answer) => [answer.modelVersion, answer.migrating, answer.watching.map(writePeer)],
  readAnswer: (body) => {
    const [modelVersion, migrating, watching] = readArray(body, 'rollout status answer', 3)
    return {
      modelVersion: readUint(modelVersion, 'model version'),
      migrating: readBoolean(migrating, 'migrating'),
      watching: readPeers(watching),
    }
  },
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

/** Fields of every data request: the model version positions were computed with, and a hop budget. */
export interface DataRequest {
  modelVersion: number
  /** Times the request may still be forwarded to a better owner. */
  ttl: number
}

function readDataHeader(modelVersion: unknown, ttl: unknown): DataRequest {
  return { modelVersion: readUint(modelVersion, 'model version'), ttl: readUint(ttl, 'ttl') }
}

/** A key at the position the sender's model gives it. */
export interface PlacedKey {
  position: bigint
  key: NodeKey
}

function writePlacedKeys(keys: readonly PlacedKey[]): unknown {
  return keys.map((item) => [item.position, encodeKeyBytes(item.key)])
}

function readPlacedKeys(value: unknown, size: bigint): PlacedKey[] {
  return readArray(value, 'keys').map((item) => {
    const [position, key] = readArray(item, 'placed key', 2)
    return { position: readBigint(position, 'position', size), key: readKey(key) }
  })
}

/**
 * Every data answer says how many of its items the receiver did not own and forwarded, so that
 * the caller can drop the stale routes it used.
 */
export interface DataAnswer {
  misrouted: number
}

export interface PutRequest extends DataRequest {
  records: ScannedRecord[]
}

export const Put: MessageCodec<PutRequest, DataAnswer> = {
  type: 20,
  writeRequest: (request) => [request.modelVersion, request.ttl, writeRecords(request.records)],
  readRequest: (body, size) => {
    const [modelVersion, ttl, records] = readArray(body, 'put', 3)
    return { ...readDataHeader(modelVersion, ttl), records: readRecords(records, size) }
  },
  writeAnswer: (answer) => answer.misrouted,
  readAnswer: (body) => ({ misrouted: readUint(body, 'misrouted') }),
}

export interface KeysRequest extends DataRequest {
  keys: PlacedKey[]
}

function keysRequest(what: string) {
  return {
    writeRequest: (request: KeysRequest): unknown => [
      request.modelVersion,
      request.ttl,
      writePlacedKeys(request.keys),
    ],
    readRequest: (body: unknown, size: bigint): KeysRequest => {
      const [modelVersion, ttl, keys] = readArray(body, what, 3)
      return { ...readDataHeader(modelVersion, ttl), keys: readPlacedKeys(keys, size) }
    },
  }
}

export interface GetAnswer extends DataAnswer {
  /** In request order; undefined where the key is absent. */
  values: Array<Uint8Array | undefined>
}

/** Values of many keys. */
export const Get: MessageCodec<KeysRequest, GetAnswer> = {
  type: 21,
  ...keysRequest('get'),
  writeAnswer: (answer) => [answer.values.map((value) => value ?? null), answer.misrouted],
  readAnswer: (body) => {
    const [values, misrouted] = readArray(body, 'get answer', 2)
    return {
      values: readArray(values, 'values').map((value) =>
        value === null ? undefined : readBytes(value, 'value'),
      ),
      misrouted: readUint(misrouted, 'misrouted'),
    }
  },
}

export interface DeleteAnswer extends DataAnswer {
  /** In request order: whether each key was present. */
  present: boolean[]
}

/** Deletes many keys. */
export const Delete: MessageCodec<KeysRequest, DeleteAnswer> = {
  type: 22,
  ...keysRequest('delete'),
  writeAnswer: (answer) => [answer.present, answer.misrouted],
  readAnswer: (body) => {
    const [present, misrouted] = readArray(body, 'delete answer', 2)
    return {
      present: readArray(present, 'deleted').map((flag) => readBoolean(flag, 'deleted')),
      misrouted: readUint(misrouted, 'misrouted'),
    }
  },
}

export interface ScanRequest extends DataRequest {
  hashMin: bigint
  hashMax: bigint
  filter: ScanFilter | null
  /** Answer at most about this many bytes of records; the rest is fetched from `resumeFrom`. */
  maxBytes: number
  /** Resuming inside one position: skip the records at `hashMin` up to this key (ring order). */
  after?: NodeKey | null
}

export interface ScanAnswer extends DataAnswer {
  records: ScannedRecord[]
  /** Where to continue when the answer was cut at `maxBytes`; null when complete. */
  resumeFrom: bigint | null
  /** When the cut fell between records of one position: the last key sent (the next `after`). */
  resumeAfter?: NodeKey | null
}

function writeNullableKey(key: NodeKey | null | undefined): unknown {
  return key === undefined || key === null ? null : encodeKeyBytes(key)
}

function writeFilter(filter: ScanFilter | null): unknown {
  if (filter === null) return null
  return [
    filter.keyRange === undefined
      ? null
      : [encodeKeyBytes(filter.keyRange.min), encodeKeyBytes(filter.keyRange.max)],
    filter.box === undefined ? null : [filter.box.min, filter.box.max],
  ]
}

function readCoordinates(value: unknown): number[] {
  return readArray(value, 'box corner').map((coordinate) => readNumber(coordinate, 'coordinate'))
}

function readFilter(value: unknown): ScanFilter {
  const [keyRange, box] = readArray(value, 'filter', 2)
  const filter: ScanFilter = {}
  if (keyRange !== null) {
    const [min, max] = readArray(keyRange, 'key range', 2)
    filter.keyRange = { min: readKey(min), max: readKey(max) }
  }
  if (box !== null) {
    const [min, max] = readArray(box, 'box', 2)
    filter.box = { min: readCoordinates(min), max: readCoordinates(max) }
  }
  return filter
}

/** Records of a position range (inclusive, not wrapping), in position order, paged by size. */
export const Scan: MessageCodec<ScanRequest, ScanAnswer> = {
  type: 23,
  writeRequest: (request) => [
    request.modelVersion,
    request.ttl,
    request.hashMin,
    request.hashMax,
    writeFilter(request.filter),
    request.maxBytes,
    writeNullableKey(request.after),
  ],
  readRequest: (body, size) => {
    const [modelVersion, ttl, hashMin, hashMax, filter, maxBytes, after] = readArray(body, 'scan', 7)
    const request = {
      ...readDataHeader(modelVersion, ttl),
      hashMin: readBigint(hashMin, 'hashMin', size),
      hashMax: readBigint(hashMax, 'hashMax', size),
      filter: readNullable(filter, readFilter),
      maxBytes: readUint(maxBytes, 'maxBytes'),
      after: readNullable(after, readKey),
    }
    if (request.hashMin > request.hashMax) throw new MalformedMessageError('scan range must not wrap')
    return request
  },
  writeAnswer: (answer) => [
    writeRecords(answer.records),
    answer.resumeFrom,
    answer.misrouted,
    writeNullableKey(answer.resumeAfter),
  ],
  readAnswer: (body, size) => {
    const [records, resumeFrom, misrouted, resumeAfter] = readArray(body, 'scan answer', 4)
    return {
      records: readRecords(records, size),
      resumeFrom: readNullable(resumeFrom, (position) => readBigint(position, 'resumeFrom', size)),
      misrouted: readUint(misrouted, 'misrouted'),
      resumeAfter: readNullable(resumeAfter, readKey),
    }
  },
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

// While a rollout migrates entries, the new owner of a key also asks its previous owner. These
// requests are served from the receiver's own store only (no ownership check, no forwarding).

/** Values of keys the receiver may still hold for their previous owner. */
export const GetLocal: MessageCodec<KeysRequest, GetAnswer> = { ...Get, type: 24 }
/** Deletes keys the receiver may still hold for their previous owner. */
export const DeleteLocal: MessageCodec<KeysRequest, DeleteAnswer> = { ...Delete, type: 25 }
/** Records of a range the receiver still holds though it no longer owns it. */
export const ScanLocal: MessageCodec<ScanRequest, ScanAnswer> = { ...Scan, type: 26 }
/** Entries moving to their new owner after a rollout; never overwrite a newer write there. */
export const Migrate: MessageCodec<PutRequest, DataAnswer> = { ...Put, type: 27 }

// Replication: served from the receiver's own store, whatever it owns.

/** Stamped records for a replica of their positions; it keeps the newest version of each key. */
export const Replicate: MessageCodec<PutRequest, DataAnswer> = { ...Put, type: 28 }

export interface GetStampedAnswer extends DataAnswer {
  /** In request order: the value, or null when absent or deleted. */
  values: Array<Uint8Array | null>
  /** In request order: the version held (a tombstone's too), or null when the key is unknown. */
  stamps: Array<Stamp | null>
}

/** Values of keys with their versions, from a replica's own store (a read that asks several replicas). */
export const GetStamped: MessageCodec<KeysRequest, GetStampedAnswer> = {
  type: 29,
  ...keysRequest('get stamped'),
  writeAnswer: (answer) => [
    answer.values,
    answer.stamps.map((stamp) => (stamp === null ? null : [stamp.version, stamp.origin, stamp.deleted])),
    answer.misrouted,
  ],
  readAnswer: (body) => {
    const [values, stamps, misrouted] = readArray(body, 'get stamped answer', 3)
    return {
      values: readArray(values, 'values').map((value) =>
        readNullable(value, (bytes) => readBytes(bytes, 'value')),
      ),
      stamps: readArray(stamps, 'stamps').map((stamp) =>
        readNullable(stamp, (fields) => {
          const [version, origin, deleted] = readArray(fields, 'stamp', 3)
          return {
            version: readUint(version, 'version'),
            origin: readUint(origin, 'origin'),
            deleted: readBoolean(deleted, 'deleted'),
          }
        }),
      ),
      misrouted: readUint(misrouted, 'misrouted'),
    }
  },
}

export interface RepairDigestRequest extends DataRequest {
  hashMin: bigint
  hashMax: bigint
  /** Equal slices of [hashMin, hashMax] to digest separately. */
  buckets: number
}

/** Per bucket: entries and tombstones, and a 32-bit hash of their keys and versions. */
export interface RepairDigestAnswer extends DataAnswer {
  counts: number[]
  hashes: number[]
}

/** Digests of what a replica holds in a range, bucket by bucket (anti-entropy). */
export const RepairDigest: MessageCodec<RepairDigestRequest, RepairDigestAnswer> = {
  type: 30,
  writeRequest: (request) => [
    request.modelVersion,
    request.ttl,
    request.hashMin,
    request.hashMax,
    request.buckets,
  ],
  readRequest: (body, size) => {
    const [modelVersion, ttl, hashMin, hashMax, buckets] = readArray(body, 'repair digest', 5)
    const request = {
      ...readDataHeader(modelVersion, ttl),
      hashMin: readBigint(hashMin, 'hashMin', size),
      hashMax: readBigint(hashMax, 'hashMax', size),
      buckets: readUint(buckets, 'buckets'),
    }
    if (request.hashMin > request.hashMax) throw new MalformedMessageError('digest range must not wrap')
    if (request.buckets < 1 || request.buckets > 4096)
      throw new MalformedMessageError('buckets must be 1..4096')
    return request
  },
  writeAnswer: (answer) => [answer.counts, answer.hashes, answer.misrouted],
  readAnswer: (body) => {
    const [counts, hashes, misrouted] = readArray(body, 'repair digest answer', 3)
    return {
      counts: readArray(counts, 'counts').map((count) => readUint(count, 'count')),
      hashes: readArray(hashes, 'hashes').map((hash) => readUint(hash, 'hash')),
      misrouted: readUint(misrouted, 'misrouted'),
    }
  },
}

/** Stamped records and tombstones of a range, from a replica's own store (anti-entropy). */
export const ScanStamped: MessageCodec<ScanRequest, ScanAnswer> = { ...Scan, type: 31 }

/** Ring maintenance and model rollout messages. */
export const RING_CODECS: ReadonlyArray<MessageCodec<unknown, unknown>> = [
  Ping,
  GetConfig,
  Step,
  Neighbours,
  Notify,
  Leave,
  SuccessorLeft,
  Contribute,
  Prepare,
  Commit,
  Abort,
  RolloutStatus,
  LoadSample,
  MoveVnode,
  HandOverTaken,
  HandOverPart,
  HandOverRecords,
  KeySample,
] as unknown as ReadonlyArray<MessageCodec<unknown, unknown>>
/** Data plane messages. */
export const DATA_CODECS: ReadonlyArray<MessageCodec<unknown, unknown>> = [
  Put,
  Get,
  Delete,
  Scan,
  GetLocal,
  DeleteLocal,
  ScanLocal,
  Migrate,
  Replicate,
  GetStamped,
  RepairDigest,
  ScanStamped,
] as unknown as ReadonlyArray<MessageCodec<unknown, unknown>>

/** Message types served on each protocol. */
export const RING_MESSAGES: ReadonlySet<number> = new Set(RING_CODECS.map((codec) => codec.type))
export const DATA_MESSAGES: ReadonlySet<number> = new Set(DATA_CODECS.map((codec) => codec.type))
