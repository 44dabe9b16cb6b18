// The data plane of this peer's own store as the overlay serves it: operations routed here go to
// the store under the transition gate, which checks ownership once; what moved away meanwhile is forwarded.

import { InvalidArgumentError } from '../errors.js'
import type { PlacedKey } from '../protocol/messages.js'
import type { DataPlane, ScanFilter, ScannedRecord, StoredRecord } from '../shared/data-plane.js'
import type { NodeKey } from '../shared/keys.js'
import type { DataServer } from './data-server.js'
import { type Deadline, deadlineIn } from './deadline.js'
import type { OverlayState } from './overlay-state.js'
import type { VersionAgreement } from './version-agreement.js'

/** This peer's data plane on the ring. */
export class LocalDataPlane implements DataPlane {
  readonly #state: OverlayState
  readonly #data: DataServer
  readonly #versions: VersionAgreement

  constructor(state: OverlayState, data: DataServer, versions: VersionAgreement) {
    this.#state = state
    this.#data = data
    this.#versions = versions
  }

  get modelVersion(): number {
    return this.#state.learnedHash.version
  }

  /** Bounds an operation as a call to another peer is bounded. */
  #deadline(): Deadline {
    return deadlineIn(this.#state.options.callTimeout)
  }

  /** Checks the version the caller placed its items by; a write waits while a newer one is prepared. */
  #agree(write: boolean): Promise<void> | undefined {
    return this.#versions.agree(this.#state.learnedHash.version, undefined, write)
  }

  #place(keys: readonly NodeKey[], positions?: ArrayLike<bigint>): PlacedKey[] {
    const learnedHash = this.#state.learnedHash
    return keys.map((key, i) => ({ key, position: positions?.[i] ?? learnedHash.predict(key) }))
  }

  async put({ key, value }: StoredRecord, position?: bigint): Promise<void> {
    await this.#agree(true)
    const placed = { key, value, position: position ?? this.#state.learnedHash.predict(key) }
    await this.#data.putOne(placed, this.#state.options.maxForwards, this.#deadline())
  }

  async putMany(records: readonly StoredRecord[], positions?: ArrayLike<bigint>): Promise<void> {
    const learnedHash = this.#state.learnedHash
    const placed = records.map(({ key, value }, i) => ({
      key,
      value,
      position: positions?.[i] ?? learnedHash.predict(key),
    }))
    await this.#agree(true)
    await this.#data.putPlaced(placed, this.#state.options.maxForwards, this.#deadline())
  }

  /** Hands records to this peer as their new owner after a rollout (newer writes here are kept). */
  async migrateRecords(records: readonly ScannedRecord[]): Promise<void> {
    await this.#agree(false)
    await this.#data.putPlaced(records, this.#state.options.maxForwards, this.#deadline(), true)
  }

  async get(key: NodeKey, position?: bigint): Promise<Uint8Array | undefined> {
    await this.#agree(false)
    const placed = { key, position: position ?? this.#state.learnedHash.predict(key) }
    return this.#data.getOne(placed, this.#state.options.maxForwards, this.#deadline())
  }

  async getMany(
    keys: readonly NodeKey[],
    positions?: ArrayLike<bigint>,
  ): Promise<Array<Uint8Array | undefined>> {
    await this.#agree(false)
    const placed = this.#place(keys, positions)
    return (await this.#data.getPlaced(placed, this.#state.options.maxForwards, this.#deadline())).values
  }

  async delete(key: NodeKey, position?: bigint): Promise<boolean> {
    return (await this.deleteMany([key], position === undefined ? undefined : [position]))[0]
  }

  async deleteMany(keys: readonly NodeKey[], positions?: ArrayLike<bigint>): Promise<boolean[]> {
    await this.#agree(true)
    const placed = this.#place(keys, positions)
    return (await this.#data.deletePlaced(placed, this.#state.options.maxForwards, this.#deadline())).present
  }

  async scan(hashMin: bigint, hashMax: bigint, filter?: ScanFilter): Promise<ScannedRecord[]> {
    await this.#agree(false)
    return this.#data.scanPlaced(
      hashMin,
      hashMax,
      filter ?? null,
      this.#state.options.maxForwards,
      this.#deadline(),
    )
  }

  /** Entries leave a peer on the ring only through hand-overs. */
  async extract(): Promise<ScannedRecord[]> {
    throw new InvalidArgumentError('extract is only available on the store of a node without a network')
  }
}
