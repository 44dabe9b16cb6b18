// Anti-entropy between the replicas of the arcs this peer owns: per-bucket digests of keys and
// versions are compared, and only the records of differing buckets move, newest version winning.

import type { LocalStore } from '../node/local-store.js'
import type { ScannedRecord } from '../shared/data-plane.js'
import { encodeKeyBytes, type NodeKey } from '../shared/keys.js'
import type { VnodeRef } from '../shared/router.js'
import { compareStamps, type Stamp } from '../shared/stamp.js'
import { recordBytes } from './records.js'

/** Slices of an arc digested separately: a difference ships only its slice's records. */
export const REPAIR_BUCKETS = 64

/** Deletes are remembered this long: a replica away for longer may bring a deleted key back. */
export const TOMBSTONE_TTL_MS = 7 * 24 * 3600 * 1000

/** Entry counts and order-free hashes of keys and versions, one per bucket of [hashMin, hashMax]. */
export interface Digest {
  counts: number[]
  hashes: number[]
}

/** An arc this peer owns (as non-wrapping ranges) and the other replicas that must hold it. */
export interface OwnedArc {
  ranges: Array<[bigint, bigint]>
  replicas: VnodeRef[]
}

export interface RepairHost {
  store: LocalStore
  ownedArcs(): OwnedArc[]
  digest(replica: VnodeRef, hashMin: bigint, hashMax: bigint, buckets: number): Promise<Digest>
  scan(replica: VnodeRef, hashMin: bigint, hashMax: bigint): Promise<ScannedRecord[]>
  send(replica: VnodeRef, records: ScannedRecord[]): Promise<void>
  /** Bytes per second repair may ship. */
  bytesPerSecond: number
}

/** Progress of repair, in `getStats().replication.repair`. */
export interface RepairStats {
  rounds: number
  /** When the last round ended (ms since the epoch), and what it found. */
  lastRoundAt: number | null
  lastRoundMs: number
  /** Buckets whose digests differed in the last round, and replicas that did not answer it. */
  differingBuckets: number
  unreachableReplicas: number
  /** Entries a replica lacked (or held an older version of) in the last round. */
  underReplicated: number
  /** Records sent to replicas and taken from them, and their bytes, since start. */
  pushedRecords: number
  pulledRecords: number
  repairBytes: number
  /** Tombstones forgotten past the repair horizon. */
  purgedTombstones: number
}

function fnv1a(bytes: Uint8Array, seed: number): number {
  let hash = seed
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i], 16777619)
  return hash >>> 0
}

function stampHash(key: NodeKey, stamp: Stamp): number {
  let hash = fnv1a(encodeKeyBytes(key), 2166136261)
  hash = Math.imul(hash ^ (stamp.version % 4294967296), 16777619)
  hash = Math.imul(hash ^ Math.floor(stamp.version / 4294967296), 16777619)
  hash = Math.imul(hash ^ stamp.origin, 16777619)
  return Math.imul(hash ^ (stamp.deleted ? 1 : 0), 16777619) >>> 0
}

/** The bucket of `position` among `buckets` equal slices of [hashMin, hashMax]. */
function bucketOf(position: bigint, hashMin: bigint, hashMax: bigint, buckets: number): number {
  return Number(((position - hashMin) * BigInt(buckets)) / (hashMax - hashMin + 1n))
}

/** The bounds of bucket `index` of [hashMin, hashMax]. */
function bucketRange(index: number, hashMin: bigint, hashMax: bigint, buckets: number): [bigint, bigint] {
  const span = hashMax - hashMin + 1n
  const low = hashMin + (span * BigInt(index) + BigInt(buckets) - 1n) / BigInt(buckets)
  const high = hashMin + (span * BigInt(index + 1) + BigInt(buckets) - 1n) / BigInt(buckets) - 1n
  return [low, high]
}

/** The digest of what `store` holds in [hashMin, hashMax]. */
export function digestOf(store: LocalStore, hashMin: bigint, hashMax: bigint, buckets: number): Digest {
  const counts = new Array<number>(buckets).fill(0)
  const hashes = new Array<number>(buckets).fill(0)
  store.forEachStamp(hashMin, hashMax, (key, position, stamp) => {
    const bucket = bucketOf(position, hashMin, hashMax, buckets)
    counts[bucket]++
    hashes[bucket] = (hashes[bucket] + stampHash(key, stamp)) >>> 0
  })
  return { counts, hashes }
}

/** Runs anti-entropy rounds over the arcs this peer owns. */
export class Repairer {
  readonly #host: RepairHost
  readonly stats: RepairStats = {
    rounds: 0,
    lastRoundAt: null,
    lastRoundMs: 0,
    differingBuckets: 0,
    unreachableReplicas: 0,
    underReplicated: 0,
    pushedRecords: 0,
    pulledRecords: 0,
    repairBytes: 0,
    purgedTombstones: 0,
  }

  constructor(host: RepairHost) {
    this.#host = host
  }

  /** One round: every owned arc against each of its other replicas. */
  async round(signal: AbortSignal): Promise<void> {
    const started = performance.now()
    let differing = 0
    let unreachable = 0
    let missing = 0
    for (const { ranges, replicas } of this.#host.ownedArcs()) {
      for (const replica of replicas) {
        for (const [hashMin, hashMax] of ranges) {
          if (signal.aborted) return
          try {
            const found = await this.#compare(replica, hashMin, hashMax, signal)
            differing += found.differing
            missing += found.missing
          } catch {
            unreachable++
            break
          }
        }
      }
    }
    this.stats.purgedTombstones += await this.#host.store.purgeTombstones(TOMBSTONE_TTL_MS)
    Object.assign(this.stats, {
      rounds: this.stats.rounds + 1,
      lastRoundAt: Date.now(),
      lastRoundMs: performance.now() - started,
      differingBuckets: differing,
      unreachableReplicas: unreachable,
      underReplicated: missing,
    })
  }

  /** Compares one range with one replica and repairs the buckets that differ, both ways. */
  async #compare(
    replica: VnodeRef,
    hashMin: bigint,
    hashMax: bigint,
    signal: AbortSignal,
  ): Promise<{ differing: number; missing: number }> {
    const { store } = this.#host
    const theirs = await this.#host.digest(replica, hashMin, hashMax, REPAIR_BUCKETS)
    const ours = digestOf(store, hashMin, hashMax, REPAIR_BUCKETS)
    let differing = 0
    let missing = 0
    for (let bucket = 0; bucket < REPAIR_BUCKETS; bucket++) {
      if (theirs.counts[bucket] === ours.counts[bucket] && theirs.hashes[bucket] === ours.hashes[bucket])
        continue
      differing++
      const [low, high] = bucketRange(bucket, hashMin, hashMax, REPAIR_BUCKETS)
      const started = performance.now()
      const remote = await this.#host.scan(replica, low, high)
      const held = new Map<string, Stamp>()
      const newer: ScannedRecord[] = []
      for (const record of remote) {
        const stamp = record.stamp as Stamp
        held.set(Buffer.from(encodeKeyBytes(record.key)).toString('latin1'), stamp)
        const mine = store.stampOf(record.key)
        if (mine === undefined || compareStamps(stamp, mine) > 0) newer.push(record)
      }
      if (newer.length > 0) await store.merge(newer)
      const lacking = store.scanStamped(low, high).filter((record) => {
        const theirStamp = held.get(Buffer.from(encodeKeyBytes(record.key)).toString('latin1'))
        return theirStamp === undefined || compareStamps(record.stamp as Stamp, theirStamp) > 0
      })
      if (lacking.length > 0) await this.#host.send(replica, lacking)
      missing += lacking.length
      let bytes = 0
      for (const record of remote) bytes += recordBytes(record)
      for (const record of lacking) bytes += recordBytes(record)
      this.stats.pulledRecords += newer.length
      this.stats.pushedRecords += lacking.length
      this.stats.repairBytes += bytes
      await this.#pace(bytes, performance.now() - started, signal)
    }
    return { differing, missing }
  }

  /** Sleeps so that shipping `bytes` took at least as long as the rate allows. */
  async #pace(bytes: number, tookMs: number, signal: AbortSignal): Promise<void> {
    const waitMs = (bytes / this.#host.bytesPerSecond) * 1000 - tookMs
    if (waitMs <= 0 || signal.aborted) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs)
      signal.addEventListener('abort', () => {
        clearTimeout(timer)
        resolve()
      })
    })
  }
}
