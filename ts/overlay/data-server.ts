// The data side of the overlay: the data planes of peers (requests batched into messages), and the
// serving of data requests: the items this peer owns from its store, the others forwarded on.

import { clockwiseDistance, LookupFailedError, type OwnedArc, rangeWalk } from '../chord/index.js'
import { DlhtError } from '../errors.js'
import { pageOf, recordBytes, recordsAfter, valuesWithin } from '../protocol/answer-pages.js'
import { PeerUnavailableError, UnknownMessageError, UnknownModelVersionError } from '../protocol/errors.js'
import {
  DATA_PROTOCOL,
  type DataAnswer,
  type DataRequest,
  Delete,
  type DeleteAnswer,
  DeleteLocal,
  Get,
  type GetAnswer,
  GetLocal,
  type KeysRequest,
  type MessageCodec,
  Migrate,
  type PlacedKey,
  Put,
  type PutRequest,
  Scan,
  type ScanAnswer,
  ScanLocal,
  type ScanRequest,
} from '../protocol/messages.js'
import { Replication } from '../replication/replication.js'
import type { ScanFilter, ScannedRecord } from '../shared/data-plane.js'
import { compareAnyKeys, type NodeKey } from '../shared/keys.js'
import type { VnodeRef } from '../shared/router.js'
import { type Deadline, signalOf } from './deadline.js'
import { LocalDataPlane } from './local-data-plane.js'
import type { OverlayState, PeerAddressRef } from './overlay-state.js'
import { RemoteDataPlane } from './remote-data-plane.js'
import type { Routing } from './routing.js'
import type { VersionAgreement } from './version-agreement.js'

/** Data messages that change entries. */
const WRITES: ReadonlySet<number> = new Set([Put.type, Delete.type])

/** A piece of a range, and whether this peer owns it. */
interface RangePiece {
  from: bigint
  to: bigint
  local: boolean
}

/** Serves data requests and hands out the data planes of peers. */
export class DataServer {
  readonly #state: OverlayState
  readonly #routing: Routing
  readonly #versions: VersionAgreement
  readonly #replication: Replication
  readonly #planes = new Map<string, RemoteDataPlane>()
  /**
   * This peer's plane. Its operations were routed here before an `await`, and a hand-over may have
   * moved the arc since: they check ownership under the gate, and forward what moved.
   */
  readonly local: LocalDataPlane

  constructor(state: OverlayState, routing: Routing, versions: VersionAgreement, replication: Replication) {
    this.#state = state
    this.#routing = routing
    this.#versions = versions
    this.#replication = replication
    this.local = new LocalDataPlane(state, this, versions)
  }

  /** Forgets the planes of peers (the overlay stopped). */
  clear(): void {
    this.#planes.clear()
  }

  /** The data plane of `owner`'s peer: this peer's own, or a remote one that sends messages. */
  planeFor(owner: PeerAddressRef): LocalDataPlane | RemoteDataPlane {
    return owner.peerId === this.#state.peerId ? this.local : this.planeOf(owner)
  }

  /** The data plane of another peer, requests batched into messages. */
  planeOf(owner: PeerAddressRef): RemoteDataPlane {
    let plane = this.#planes.get(owner.peerId)
    if (plane === undefined) {
      const state = this.#state
      const peer = { peerId: owner.peerId, multiaddrs: owner.multiaddrs }
      plane = new RemoteDataPlane({
        peerId: owner.peerId,
        call: (codec, request) => this.#call(peer, codec, request),
        positionOf: (key) => state.learnedHash.predict(key),
        modelVersion: () => state.learnedHash.version,
        maxForwards: state.options.maxForwards,
        maxMessageBytes: Math.floor(state.options.maxFrameSize / 4),
        onAnswer: (answer: DataAnswer) => {
          if (answer.misrouted > 0) state.cache.removeWhere((cached) => cached.peerId === owner.peerId)
        },
      })
      this.#planes.set(owner.peerId, plane)
    }
    return plane
  }

  /**
   * A data call to `peer`. When the peer is gone (it left or died since we routed to it), the
   * request is sent once more, with one hop less, to whoever owns its first position now.
   */
  async #call<Request, Answer>(
    peer: PeerAddressRef,
    codec: MessageCodec<Request, Answer>,
    request: Request,
  ): Promise<Answer> {
    const state = this.#state
    state.stats.dataMessages++
    if (codec.type === Scan.type) state.stats.scanMessages++
    try {
      return await state.call(peer, DATA_PROTOCOL, codec, request)
    } catch (err) {
      // The peer is on another model version: learn it (the caller then routes again).
      if (err instanceof UnknownModelVersionError) await this.#versions.catchUpWith(peer)
      // Routing went round in circles from this route: forget what we believed the peer owns.
      if (err instanceof DlhtError && err.code === 'ERR_DLHT_LOOKUP_FAILED') {
        state.cache.removeWhere((cached) => cached.peerId === peer.peerId)
      }
      const data = request as DataRequest & Partial<PutRequest & KeysRequest & ScanRequest>
      const position = data.records?.[0]?.position ?? data.keys?.[0]?.position ?? data.hashMin
      if (!(err instanceof PeerUnavailableError) || data.ttl === 0 || position === undefined) throw err
      // The peer is gone (a leave our cache has not seen yet): look the owner up afresh.
      state.cache.removeWhere((cached) => cached.peerId === peer.peerId)
      const retried = { ...data, ttl: data.ttl - 1 } as Request
      const signal = AbortSignal.timeout(state.options.callTimeout)
      const owner = await this.#routing.findSuccessor(position, { signal })
      if (owner.peerId !== state.peerId) return this.#call(owner, codec, retried)
      return (await this.serve(codec.type, retried, signal)) as Answer
    }
  }

  /** Serves a data request (decoded), from a peer or re-routed from here. */
  async serve(type: number, request: unknown, signal: AbortSignal, from?: string): Promise<unknown> {
    if (Replication.MESSAGES.has(type)) return this.#replication.serve(type, request)
    await this.#versions.agree((request as DataRequest).modelVersion, from, WRITES.has(type))
    const store = this.#state.store
    switch (type) {
      case Put.type:
        return this.#servePut(request as PutRequest, signal)
      case Get.type:
        return this.#serveGet(request as KeysRequest, signal)
      case Delete.type:
        return this.#serveDelete(request as KeysRequest, signal)
      case Scan.type:
        return this.#serveScan(request as ScanRequest, signal)
      case Migrate.type:
        return this.#servePut(request as PutRequest, signal, true)
      case GetLocal.type: {
        const { keys } = request as KeysRequest
        const values = await store.getMany(keys.map((item) => item.key))
        return { values: valuesWithin(values, this.#state.frameBudget), misrouted: 0 }
      }
      case DeleteLocal.type: {
        const { keys } = request as KeysRequest
        return { present: await store.discard(keys.map((item) => item.key)), misrouted: 0 }
      }
      case ScanLocal.type: {
        const { hashMin, hashMax, filter, maxBytes, after } = request as ScanRequest
        const records = store.scanSync(hashMin, hashMax, filter ?? undefined)
        return this.#page(recordsAfter(records, hashMin, after, this.#ringOrder), maxBytes, null, 0)
      }
    }
    throw new UnknownMessageError(`unknown data message ${type}`)
  }

  /** Splits items into those this peer owns and those to forward (which need a hop left). */
  #partition<T extends { position: bigint }>(
    items: readonly T[],
    ttl: number,
  ): { owned: number[]; foreign: number[] } {
    const owned: number[] = []
    const foreign: number[] = []
    for (let i = 0; i < items.length; i++)
      (this.#state.ownsLocally(items[i].position) ? owned : foreign).push(i)
    if (foreign.length > 0 && ttl === 0) {
      throw new LookupFailedError(
        `${foreign.length} items reached a peer that does not own them, with no hop left`,
      )
    }
    this.#state.stats.forwardedItems += foreign.length
    return { owned, foreign }
  }

  /** Groups items by the peer that owns them now, for forwarding. */
  async #byOwner<T extends { position: bigint }>(
    items: readonly T[],
    indexes: readonly number[],
    signal: Deadline,
  ): Promise<Map<RemoteDataPlane, number[]>> {
    const state = this.#state
    const owners = await this.#routing.findSuccessorMany(
      BigUint64Array.from(indexes, (i) => items[i].position),
      { signal: signalOf(signal) },
    )
    const groups = new Map<RemoteDataPlane, number[]>()
    for (let j = 0; j < indexes.length; j++) {
      const owner = owners[j]
      if (owner.peerId === state.peerId) {
        // Someone's tables still name a vnode of ours that left or is not active: drop it here
        // (the caller routes again a moment later, once stabilization has repaired the others).
        if (!state.vnodes.get(owner.id)?.active) state.forget(owner)
        throw new LookupFailedError('routing sent a forwarded request back here')
      }
      const plane = this.planeOf(owner)
      const group = groups.get(plane)
      if (group === undefined) groups.set(plane, [indexes[j]])
      else group.push(indexes[j])
    }
    return groups
  }

  /**
   * Stores the records this peer owns and forwards the others. A migration (`migrating`) keeps
   * keys written here since the rollout began and forwards as a migration too.
   */
  #servePut({ records, ttl }: PutRequest, signal: AbortSignal, migrating = false): Promise<DataAnswer> {
    return this.putPlaced(records, ttl, signal, migrating)
  }

  /** `#servePut` of placed records: the ones owned here stored, the others forwarded with `ttl - 1` hops. */
  async putPlaced(
    records: readonly ScannedRecord[],
    ttl: number,
    signal: Deadline,
    migrating = false,
  ): Promise<DataAnswer> {
    const store = this.#state.store
    const { foreign, stored } = await this.#state.gate.shared(async () => {
      const parts = this.#partition(records, ttl)
      const mine = parts.owned.map((i) => records[i])
      let stored: ScannedRecord[] = []
      if (mine.length > 0) stored = await (migrating ? store.putUntouched(mine) : store.write(mine))
      return { ...parts, stored }
    }, signal)
    const forward = async () => {
      if (foreign.length === 0) return
      const groups = await this.#byOwner(records, foreign, signal)
      await Promise.all(
        [...groups].map(([plane, indexes]) => {
          const forwarded = indexes.map((i) => records[i])
          return migrating ? plane.migrateRecords(forwarded, ttl - 1) : plane.putRecords(forwarded, ttl - 1)
        }),
      )
    }
    await Promise.all([this.#replication.replicate(stored), forward()])
    return { misrouted: foreign.length }
  }

  /**
   * Stores one placed record: in the store when this peer owns it, checked under the gate, then on
   * its other replicas; forwarded like a Put when its arc moved away since it was routed here.
   */
  async putOne(record: ScannedRecord, ttl: number, signal: Deadline): Promise<void> {
    const state = this.#state
    const stored = await state.gate.shared(
      async () => (state.ownsLocally(record.position) ? state.store.write([record]) : undefined),
      signal,
    )
    if (stored === undefined) await this.putPlaced([record], ttl, signal)
    else await this.#replication.replicate(stored)
  }

  async #serveGet({ keys, ttl }: KeysRequest, signal: AbortSignal): Promise<GetAnswer> {
    const { values, misrouted } = await this.getPlaced(keys, ttl, signal)
    // A prefix when the values exceed a frame: the caller asks again for the rest.
    return { values: valuesWithin(values, this.#state.frameBudget), misrouted }
  }

  /** Values of placed keys, in order: the ones owned here from the store, the others forwarded. */
  async getPlaced(keys: readonly PlacedKey[], ttl: number, signal: Deadline): Promise<GetAnswer> {
    const values: Array<Uint8Array | undefined> = new Array(keys.length)
    const { foreign } = await this.#serveOwnedKeys(keys, ttl, signal, values, async (owned) => ({
      results: await this.#state.store.getMany(owned.map((placed) => placed.key)),
    }))
    await this.#forwardKeys(keys, foreign, signal, (plane, placed) => plane.getKeys(placed, ttl - 1), values)
    return { values, misrouted: foreign.length }
  }

  /**
   * The value of one placed key: from the store when this peer owns it, checked under the gate;
   * forwarded like a Get when its arc moved away since it was routed here.
   */
  async getOne(placed: PlacedKey, ttl: number, signal: Deadline): Promise<Uint8Array | undefined> {
    const state = this.#state
    const local = await state.gate.shared(async () => {
      if (!state.ownsLocally(placed.position)) return undefined
      return { value: await state.store.get(placed.key) }
    }, signal)
    return local === undefined ? (await this.getPlaced([placed], ttl, signal)).values[0] : local.value
  }

  #serveDelete({ keys, ttl }: KeysRequest, signal: AbortSignal): Promise<DeleteAnswer> {
    return this.deletePlaced(keys, ttl, signal)
  }

  /** Deletes placed keys (whether each was present, in order): here if owned here, else where owned. */
  async deletePlaced(keys: readonly PlacedKey[], ttl: number, signal: Deadline): Promise<DeleteAnswer> {
    const present: boolean[] = new Array(keys.length)
    const { foreign, local } = await this.#serveOwnedKeys(keys, ttl, signal, present, async (owned) => {
      const erased = await this.#state.store.erase(owned)
      return { results: erased.present, tombstones: erased.tombstones }
    })
    await Promise.all([
      this.#replication.replicate(local.tombstones),
      this.#forwardKeys(keys, foreign, signal, (plane, placed) => plane.deleteKeys(placed, ttl - 1), present),
    ])
    return { present, misrouted: foreign.length }
  }

  /**
   * Runs `serveLocally` on the keys this peer owns, with no hand-over in between, and puts its
   * results in place; returns what it returned and the indexes of the keys to forward.
   */
  async #serveOwnedKeys<R, Local extends { results: readonly R[] }>(
    keys: readonly PlacedKey[],
    ttl: number,
    signal: Deadline,
    results: R[],
    serveLocally: (owned: PlacedKey[]) => Promise<Local>,
  ): Promise<{ foreign: number[]; local: Local }> {
    return this.#state.gate.shared(async () => {
      const { owned, foreign } = this.#partition(keys, ttl)
      const local = await serveLocally(owned.map((i) => keys[i]))
      for (let j = 0; j < owned.length; j++) results[owned[j]] = local.results[j]
      return { foreign, local }
    }, signal)
  }

  async #forwardKeys<R>(
    keys: readonly PlacedKey[],
    foreign: readonly number[],
    signal: Deadline,
    send: (plane: RemoteDataPlane, placed: PlacedKey[]) => Promise<R[]>,
    results: R[],
  ): Promise<void> {
    if (foreign.length === 0) return
    const groups = await this.#byOwner(keys, foreign, signal)
    await Promise.all(
      [...groups].map(async ([plane, indexes]) => {
        const answers = await send(
          plane,
          indexes.map((i) => keys[i]),
        )
        for (let j = 0; j < indexes.length; j++) results[indexes[j]] = answers[j]
      }),
    )
  }

  /** Scans the pieces of the range this peer owns, forwards the others, and pages the result. */
  async #serveScan(request: ScanRequest, signal: AbortSignal): Promise<ScanAnswer> {
    const { hashMin, hashMax, filter, ttl, maxBytes, after } = request
    const limit = Math.min(maxBytes, this.#state.frameBudget)
    const { records, next, misrouted } = await this.#scanPieces(
      hashMin,
      hashMax,
      filter,
      ttl,
      signal,
      limit,
      after ?? null,
    )
    return this.#page(records, maxBytes, next, misrouted)
  }

  /** Every record of `[hashMin, hashMax]` (not wrapping), this peer's pieces from its store, the others where owned. */
  async scanPlaced(
    hashMin: bigint,
    hashMax: bigint,
    filter: ScanFilter | null,
    ttl: number,
    signal: Deadline,
  ): Promise<ScannedRecord[]> {
    return (await this.#scanPieces(hashMin, hashMax, filter, ttl, signal, Number.POSITIVE_INFINITY, null))
      .records
  }

  /**
   * The records of `[hashMin, hashMax]` after key `after` (of position `hashMin`), piece by piece,
   * until past `limitBytes`; `next` is the first piece not read then.
   */
  async #scanPieces(
    hashMin: bigint,
    hashMax: bigint,
    filter: ScanFilter | null,
    ttl: number,
    signal: Deadline,
    limitBytes: number,
    after: NodeKey | null,
  ): Promise<{ records: ScannedRecord[]; next: bigint | null; misrouted: number }> {
    const state = this.#state
    // The pieces owned here are read together, with no hand-over in between; others go on later.
    const pieces = await state.gate.shared(
      async () =>
        this.#ownedPieces(hashMin, hashMax).map((piece) => ({
          ...piece,
          found: piece.local ? state.store.scanSync(piece.from, piece.to, filter ?? undefined) : null,
        })),
      signal,
    )
    const records: ScannedRecord[] = []
    let bytes = 0
    let misrouted = 0
    for (const piece of pieces) {
      if (bytes > limitBytes) return { records, next: piece.from, misrouted }
      let found: ScannedRecord[]
      if (piece.found !== null) found = piece.found
      else {
        if (ttl === 0)
          throw new LookupFailedError('a scan reached a peer that does not own it, with no hop left')
        misrouted++
        found = await this.#scanRouted(piece.from, piece.to, filter, ttl - 1, signal)
      }
      found = recordsAfter(found, hashMin, after, this.#ringOrder)
      for (const record of found) bytes += recordBytes(record)
      records.push(...found)
    }
    return { records, next: null, misrouted }
  }

  /** Cuts records at `maxBytes` (at most what fits a frame); `next` is where the range goes on. */
  #page(records: ScannedRecord[], maxBytes: number, next: bigint | null, misrouted: number): ScanAnswer {
    return {
      ...pageOf(records, Math.min(maxBytes, this.#state.frameBudget), next),
      misrouted,
    }
  }

  /** The order of keys within one ring position, as the store keeps them: by encoding, then by key. */
  readonly #ringOrder = (a: NodeKey, b: NodeKey): number =>
    this.#state.learnedHash.encode(a) - this.#state.learnedHash.encode(b) || compareAnyKeys(a, b)

  async #scanRouted(
    hashMin: bigint,
    hashMax: bigint,
    filter: ScanFilter | null,
    ttl: number,
    signal: Deadline,
  ): Promise<ScannedRecord[]> {
    const segments = await this.#routing.coveringSegments(hashMin, hashMax, { signal: signalOf(signal) })
    const pages = await Promise.all(
      segments.map((segment) =>
        segment.owner.peerId === this.#state.peerId
          ? this.#state.store.scan(segment.hashMin, segment.hashMax, filter ?? undefined)
          : this.planeOf(segment.owner).scanRange(segment.hashMin, segment.hashMax, filter, ttl),
      ),
    )
    return pages.flat()
  }

  /** `[hashMin, hashMax]` cut into pieces this peer owns and pieces it does not, in order. */
  #ownedPieces(hashMin: bigint, hashMax: bigint): RangePiece[] {
    const state = this.#state
    const localArc = (position: bigint): OwnedArc<VnodeRef> | undefined => state.localArc(position)
    const size = state.hashSpaceSize
    const pieces: RangePiece[] = []
    let cursor = hashMin
    for (;;) {
      const walk = rangeWalk(cursor, hashMax, localArc, size)
      for (const segment of walk.segments)
        pieces.push({ from: segment.hashMin, to: segment.hashMax, local: true })
      if (walk.unknownFrom === undefined) return pieces
      const gapStart = walk.unknownFrom
      const remaining = clockwiseDistance(gapStart, hashMax, size)
      let nextOwned: bigint | undefined
      for (const vnode of state.vnodes.values()) {
        if (!vnode.active) continue
        const first = (vnode.chord.arcStart + 1n) % size
        const distance = clockwiseDistance(gapStart, first, size)
        if (distance > 0n && distance <= remaining) {
          if (nextOwned === undefined || distance < clockwiseDistance(gapStart, nextOwned, size))
            nextOwned = first
        }
      }
      if (nextOwned === undefined) {
        pieces.push({ from: gapStart, to: hashMax, local: false })
        return pieces
      }
      pieces.push({ from: gapStart, to: nextOwned - 1n, local: false })
      cursor = nextOwned
    }
  }
}
