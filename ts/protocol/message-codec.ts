import type { ScannedRecord } from '../shared/data-plane.js'
import { decodeKeyBytes, encodeKeyBytes, type NodeKey } from '../shared/keys.js'
import type { VnodeRef } from '../shared/router.js'
import { readArray, readBigint, readBoolean, readBytes, readString, readUint } from './codec.js'
import { MalformedMessageError } from './errors.js'

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

export function writeRef(ref: VnodeRef): unknown {
  return [ref.peerId, ref.vnodeId, ref.id, ref.multiaddrs]
}

export function readRef(value: unknown, hashSpaceSize: bigint): VnodeRef {
  const [peerId, vnodeId, id, multiaddrs] = readArray(value, 'vnode', 4)
  return {
    peerId: readString(peerId, 'peer id'),
    vnodeId: readUint(vnodeId, 'vnode index'),
    id: readBigint(id, 'vnode id', hashSpaceSize),
    multiaddrs: readArray(multiaddrs, 'multiaddrs').map((address) => readString(address, 'multiaddr')),
  }
}

export function readRefs(value: unknown, hashSpaceSize: bigint): VnodeRef[] {
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
export function writeRecords(records: readonly ScannedRecord[]): unknown {
  return records.map(({ position, key, value, stamp }) =>
    stamp === undefined
      ? [position, encodeKeyBytes(key), value]
      : [position, encodeKeyBytes(key), value, stamp.version, stamp.origin, stamp.deleted],
  )
}

export function readRecords(value: unknown, hashSpaceSize: bigint): ScannedRecord[] {
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

export function readNothing(body: unknown): undefined {
  if (body !== null && body !== undefined) throw new MalformedMessageError('expected an empty body')
  return undefined
}

/** The codec half of an empty request or answer. */
export const nothing = {
  write: (): unknown => null,
  read: (body: unknown): undefined => readNothing(body),
}

/** A peer and where it listens. */
export interface PeerRef {
  peerId: string
  multiaddrs: string[]
}

export function writePeer(peer: PeerRef): unknown {
  return [peer.peerId, peer.multiaddrs]
}

export function readPeers(value: unknown): PeerRef[] {
  return readArray(value, 'peers').map((peer) => {
    const [peerId, multiaddrs] = readArray(peer, 'peer', 2)
    return {
      peerId: readString(peerId, 'peer id'),
      multiaddrs: readArray(multiaddrs, 'multiaddrs').map((address) => readString(address, 'multiaddr')),
    }
  })
}
