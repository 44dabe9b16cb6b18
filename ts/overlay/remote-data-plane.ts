// The data plane of another peer, reached over its long-lived /dlht/3.0.0/data stream.
// Single calls made together are batched into one message; large batches are split.

import { InvalidArgumentError } from '../errors.js'
import { MalformedMessageError } from '../protocol/errors.js'
import {
  type DataAnswer,
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
import { AfterQueueing } from '../protocol/rpc.js'
import type { DataPlane, ScanFilter, ScannedRecord, StoredRecord } from '../shared/data-plane.js'
import type { NodeKey } from '../shared/keys.js'

/** Calls a data message on the peer (bound to its address and stream by the router). */
export type DataCall = <Request, Answer>(
  codec: MessageCodec<Request, Answer>,
  request: Request,
) => Promise<Answer>

export interface RemoteDataPlaneInit {
  /** The peer this plane reaches. */
  peerId: string
  call: DataCall
  /** Position of a key under the local model (the peer checks it uses the same version). */
  positionOf(key: NodeKey): bigint
  /** Version of the local model. */
  modelVersion(): number
  /** Times a request may be forwarded by peers that no longer own its keys. */
  maxForwards: number
  /** Approximate budget of one message's payload, in bytes. */
  maxMessageBytes: number
  /** Told about every answer (for stats and to drop stale routes). */
  onAnswer(answer: DataAnswer): void
}

/** Estimated wire size of a record beyond its value. */
const RECORD_OVERHEAD = 32

/** Collects the items queued by the running code (see `AfterQueueing`) and sends them as one request. */
class Batcher<Item, Result> {
  #items: Item[] = []
  #resolves: Array<(result: Result) => void> = []
  #rejects: Array<(err: unknown) => void> = []
  readonly #send: (items: Item[]) => Promise<Result[]>
  readonly #coalescing = new AfterQueueing(
    () => this.#items.length,
    () => this.#flush(),
  )

  constructor(send: (items: Item[]) => Promise<Result[]>) {
    this.#send = send
  }

  add(item: Item): Promise<Result> {
    if (this.#items.length === 0) this.#coalescing.schedule()
    this.#items.push(item)
    return new Promise((resolve, reject) => {
      this.#resolves.push(resolve)
      this.#rejects.push(reject)
    })
  }

  #flush(): void {
    const items = this.#items
    const resolves = this.#resolves
    const rejects = this.#rejects
    this.#items = []
    this.#resolves = []
    this.#rejects = []
    this.#send(items).then(
      (results) => {
        for (let i = 0; i < resolves.length; i++) resolves[i](results[i])
      },
      (err) => {
        for (const reject of rejects) reject(err)
      },
    )
  }
}

/** Splits items into chunks of about `budget` bytes each. */
function chunked<T>(items: readonly T[], sizeOf: (item: T) => number, budget: number): T[][] {
  const chunks: T[][] = []
  let current: T[] = []
  let bytes = 0
  for (const item of items) {
    const size = sizeOf(item)
    if (current.length > 0 && bytes + size > budget) {
      chunks.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += size
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}

function keySize(key: NodeKey): number {
  if (typeof key === 'string') return key.length * 3
  if (key instanceof Uint8Array) return key.byteLength
  return Array.isArray(key) ? key.length * 9 : 16
}

/**
 * A remote peer's DataPlane. Keys carry the position the local model gives them; the peer serves
 * the keys it owns and forwards the others (at most `maxForwards` times).
 */
export class RemoteDataPlane implements DataPlane {
  readonly #init: RemoteDataPlaneInit
  readonly #puts = new Batcher<ScannedRecord, undefined>((records) => this.putRecords(records))
  readonly #gets = new Batcher<PlacedKey, Uint8Array | undefined>((keys) => this.getKeys(keys))
  readonly #deletes = new Batcher<PlacedKey, boolean>((keys) => this.deleteKeys(keys))

  constructor(init: RemoteDataPlaneInit) {
    this.#init = init
  }

  get peerId(): string {
    return this.#init.peerId
  }

  get modelVersion(): number {
    return this.#init.modelVersion()
  }

  #place(key: NodeKey, position = this.#init.positionOf(key)): PlacedKey {
    return { position, key }
  }

  #placeAll(keys: readonly NodeKey[], positions?: ArrayLike<bigint>): PlacedKey[] {
    return keys.map((key, i) => this.#place(key, positions?.[i]))
  }

  /** Calls `codec` and tells `onAnswer` about the answer. */
  #answered<Request, A extends DataAnswer>(codec: MessageCodec<Request, A>, request: Request): Promise<A> {
    return this.#init.call(codec, request).then((answer) => {
      this.#init.onAnswer(answer)
      return answer
    })
  }

  put(record: StoredRecord, position?: bigint): Promise<void> {
    try {
      return this.#puts.add({
        key: record.key,
        value: record.value,
        position: position ?? this.#init.positionOf(record.key),
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  async putMany(records: readonly StoredRecord[], positions?: ArrayLike<bigint>): Promise<void> {
    await this.putRecords(
      records.map(({ key, value }, i) => ({
        key,
        value,
        position: positions?.[i] ?? this.#init.positionOf(key),
      })),
    )
  }

  /** Stores placed records, split into messages of about `maxMessageBytes`. */
  putRecords(records: readonly ScannedRecord[], ttl = this.#init.maxForwards): Promise<undefined[]> {
    return this.#putWith(Put, records, ttl)
  }

  /** Hands records to their new owner after a rollout (it keeps newer writes of the same keys). */
  migrateRecords(records: readonly ScannedRecord[], ttl = this.#init.maxForwards): Promise<undefined[]> {
    return this.#putWith(Migrate, records, ttl)
  }

  async #putWith(
    codec: MessageCodec<PutRequest, DataAnswer>,
    records: readonly ScannedRecord[],
    ttl: number,
  ): Promise<undefined[]> {
    const chunks = chunked(
      records,
      (record) => record.value.byteLength + keySize(record.key) + RECORD_OVERHEAD,
      this.#init.maxMessageBytes,
    )
    const modelVersion = this.#init.modelVersion()
    await Promise.all(chunks.map((chunk) => this.#answered(codec, { modelVersion, ttl, records: chunk })))
    return new Array(records.length).fill(undefined)
  }

  get(key: NodeKey, position?: bigint): Promise<Uint8Array | undefined> {
    return this.#gets.add(this.#place(key, position))
  }

  getMany(keys: readonly NodeKey[], positions?: ArrayLike<bigint>): Promise<Array<Uint8Array | undefined>> {
    return this.getKeys(this.#placeAll(keys, positions))
  }

  /** Values of placed keys, in order. */
  getKeys(keys: readonly PlacedKey[], ttl = this.#init.maxForwards): Promise<Array<Uint8Array | undefined>> {
    return this.#getWith(Get, keys, ttl)
  }

  /** Values the peer still holds for keys' previous owner (from its own store, never forwarded). */
  getLocal(keys: readonly NodeKey[]): Promise<Array<Uint8Array | undefined>> {
    return this.#getWith(GetLocal, this.#placeAll(keys), 0)
  }

  #getWith(
    codec: MessageCodec<KeysRequest, GetAnswer>,
    keys: readonly PlacedKey[],
    ttl: number,
  ): Promise<Array<Uint8Array | undefined>> {
    const chunks = chunked(
      keys,
      (item) => keySize(item.key) + RECORD_OVERHEAD,
      this.#init.maxMessageBytes / 4,
    )
    if (chunks.length === 1) return this.#getChunk(codec, chunks[0], ttl)
    return Promise.all(chunks.map((chunk) => this.#getChunk(codec, chunk, ttl))).then((values) =>
      values.flat(),
    )
  }

  /**
   * Values of one chunk of keys. An answer may hold the values of a prefix of the keys only (they
   * would not fit a frame together): the rest is asked for again, until every key is answered.
   */
  #getChunk(
    codec: MessageCodec<KeysRequest, GetAnswer>,
    keys: readonly PlacedKey[],
    ttl: number,
  ): Promise<Array<Uint8Array | undefined>> {
    const modelVersion = this.#init.modelVersion()
    return this.#answered(codec, { modelVersion, ttl, keys: keys as PlacedKey[] }).then((answer) => {
      const { values } = answer
      if (values.length === keys.length) return values
      if (values.length === 0 || values.length > keys.length) {
        throw new MalformedMessageError(`a get of ${keys.length} keys was answered ${values.length} values`)
      }
      return this.#getChunk(codec, keys.slice(values.length), ttl).then((rest) => values.concat(rest))
    })
  }

  delete(key: NodeKey, position?: bigint): Promise<boolean> {
    return this.#deletes.add(this.#place(key, position))
  }

  deleteMany(keys: readonly NodeKey[], positions?: ArrayLike<bigint>): Promise<boolean[]> {
    return this.deleteKeys(this.#placeAll(keys, positions))
  }

  /** Deletes placed keys; whether each was present, in order. */
  deleteKeys(keys: readonly PlacedKey[], ttl = this.#init.maxForwards): Promise<boolean[]> {
    return this.#deleteWith(Delete, keys, ttl)
  }

  /** Deletes keys the peer may still hold for their previous owner (its own store only). */
  deleteLocal(keys: readonly NodeKey[]): Promise<boolean[]> {
    return this.#deleteWith(DeleteLocal, this.#placeAll(keys), 0)
  }

  async #deleteWith(
    codec: MessageCodec<KeysRequest, DeleteAnswer>,
    keys: readonly PlacedKey[],
    ttl: number,
  ): Promise<boolean[]> {
    const chunks = chunked(keys, (item) => keySize(item.key) + RECORD_OVERHEAD, this.#init.maxMessageBytes)
    const modelVersion = this.#init.modelVersion()
    const answers = await Promise.all(
      chunks.map((chunk) => this.#answered(codec, { modelVersion, ttl, keys: chunk })),
    )
    return answers.flatMap((answer) => answer.present)
  }

  scan(hashMin: bigint, hashMax: bigint, filter?: ScanFilter): Promise<ScannedRecord[]> {
    return this.scanRange(hashMin, hashMax, filter ?? null)
  }

  /** Scans `[hashMin, hashMax]` page by page (each page about `maxMessageBytes`). */
  scanRange(
    hashMin: bigint,
    hashMax: bigint,
    filter: ScanFilter | null,
    ttl = this.#init.maxForwards,
  ): Promise<ScannedRecord[]> {
    return this.#scanWith(Scan, hashMin, hashMax, filter, ttl)
  }

  /** Records of the range the peer still holds for their previous owner (its own store only). */
  scanLocal(hashMin: bigint, hashMax: bigint, filter?: ScanFilter): Promise<ScannedRecord[]> {
    return this.#scanWith(ScanLocal, hashMin, hashMax, filter ?? null, 0)
  }

  async #scanWith(
    codec: MessageCodec<ScanRequest, ScanAnswer>,
    hashMin: bigint,
    hashMax: bigint,
    filter: ScanFilter | null,
    ttl: number,
  ): Promise<ScannedRecord[]> {
    const records: ScannedRecord[] = []
    let from: bigint | null = hashMin
    let after: NodeKey | null = null
    while (from !== null) {
      const page: ScanAnswer = await this.#answered(codec, {
        modelVersion: this.#init.modelVersion(),
        ttl,
        hashMin: from,
        hashMax,
        filter,
        maxBytes: this.#init.maxMessageBytes,
        after,
      })
      if (page.records.length === 0 && page.resumeFrom !== null)
        throw new MalformedMessageError('a scan page was empty but not the last')
      records.push(...page.records)
      from = page.resumeFrom
      after = page.resumeAfter ?? null
    }
    return records
  }

  /** Entries leave a peer only through the ring's hand-off, never by a remote extract. */
  async extract(): Promise<ScannedRecord[]> {
    throw new InvalidArgumentError('extract is only available on the local data plane')
  }
}
