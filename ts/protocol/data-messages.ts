// The messages of the data plane: put, get, delete and scans of placed keys, the previous owner's
// requests of a migration, and replication (stamped writes, reads and repair digests).

import type { ScanFilter, ScannedRecord } from '../shared/data-plane.js'
import { encodeKeyBytes, type NodeKey } from '../shared/keys.js'
import type { Stamp } from '../shared/stamp.js'
import { readArray, readBigint, readBoolean, readBytes, readNullable, readNumber, readUint } from './codec.js'
import { MalformedMessageError } from './errors.js'
import { type MessageCodec, readKey, readRecords, writeRecords } from './message-codec.js'

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
