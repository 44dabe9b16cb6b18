// The data plane of a key's owner while a rollout migrates entries: an entry may still be on the
// peer that owned it under the previous model. Reads ask the new owner, then the previous holder,
// then the new owner again (the entry may have moved in between: it is stored at the new owner
// before the old copy goes). Deletes reach both. Writes go to the new owner only, which remembers
// them so that the migrating copy never overwrites them.

import type { RecursiveModelIndex } from '../learned/rmi.js'
import type { DataPlane, ScanFilter, ScannedRecord, StoredRecord } from '../shared/data-plane.js'
import { KeyMap, type NodeKey } from '../shared/keys.js'

/** A peer that may hold entries for their previous owner: served from its own store only. */
export interface PreviousHolder {
  readonly peerId: string
  getLocal(keys: readonly NodeKey[]): Promise<Array<Uint8Array | undefined>>
  deleteLocal(keys: readonly NodeKey[]): Promise<boolean[]>
  scanLocal(hashMin: bigint, hashMax: bigint, filter?: ScanFilter): Promise<ScannedRecord[]>
}

/** Where entries of the previous model may still be. */
export interface MigrationRoutes {
  /** For each key, the peer that may still hold it (undefined when it cannot be elsewhere). */
  holdersOfKeys(keys: readonly NodeKey[]): Promise<Array<PreviousHolder | undefined>>
  /** The peers that may still hold entries whose current position lies in [hashMin, hashMax]. */
  holdersOfRange(hashMin: bigint, hashMax: bigint): Promise<PreviousHolder[]>
}

/** Groups `indexes` by holder (`holders[j]` is the holder of `indexes[j]`). */
function byHolder(
  holders: ReadonlyArray<PreviousHolder | undefined>,
  indexes: readonly number[],
): Map<PreviousHolder, number[]> {
  const groups = new Map<PreviousHolder, number[]>()
  for (let j = 0; j < indexes.length; j++) {
    const holder = holders[j]
    if (holder === undefined) continue
    const group = groups.get(holder)
    if (group === undefined) groups.set(holder, [indexes[j]])
    else group.push(indexes[j])
  }
  return groups
}

/** `owner`'s data plane, with reads and deletes that also reach previous holders. */
export class MigratingDataPlane implements DataPlane {
  readonly #owner: DataPlane
  readonly #routes: MigrationRoutes

  constructor(owner: DataPlane, routes: MigrationRoutes) {
    this.#owner = owner
    this.#routes = routes
  }

  get modelVersion(): number {
    return this.#owner.modelVersion
  }

  put(record: StoredRecord, position?: bigint): Promise<void> {
    return this.#owner.put(record, position)
  }

  putMany(records: readonly StoredRecord[], positions?: ArrayLike<bigint>): Promise<void> {
    return this.#owner.putMany(records, positions)
  }

  async get(key: NodeKey, position?: bigint): Promise<Uint8Array | undefined> {
    const value = await this.#owner.get(key, position)
    if (value !== undefined) return value
    const [holder] = await this.#holders([key])
    if (holder === undefined) return undefined
    const [held] = await holder.getLocal([key])
    return held ?? this.#owner.get(key, position)
  }

  async getMany(
    keys: readonly NodeKey[],
    positions?: ArrayLike<bigint>,
  ): Promise<Array<Uint8Array | undefined>> {
    const values = await this.#owner.getMany(keys, positions)
    const missing: number[] = []
    for (let i = 0; i < keys.length; i++) if (values[i] === undefined) missing.push(i)
    if (missing.length === 0) return values
    const holders = await this.#holders(missing.map((i) => keys[i]))
    const stillMissing: number[] = []
    await Promise.all(
      Array.from(byHolder(holders, missing), async ([holder, indexes]) => {
        const held = await holder.getLocal(indexes.map((i) => keys[i]))
        for (let j = 0; j < indexes.length; j++) {
          if (held[j] === undefined) stillMissing.push(indexes[j])
          else values[indexes[j]] = held[j]
        }
      }),
    )
    if (stillMissing.length > 0) {
      const again = await this.#owner.getMany(
        stillMissing.map((i) => keys[i]),
        positions === undefined ? undefined : stillMissing.map((i) => positions[i]),
      )
      for (let j = 0; j < stillMissing.length; j++) values[stillMissing[j]] = again[j]
    }
    return values
  }

  async delete(key: NodeKey, position?: bigint): Promise<boolean> {
    const [[holder], deleted] = await Promise.all([this.#holders([key]), this.#owner.delete(key, position)])
    if (holder === undefined) return deleted
    const [held] = await holder.deleteLocal([key])
    return deleted || held
  }

  async deleteMany(keys: readonly NodeKey[], positions?: ArrayLike<bigint>): Promise<boolean[]> {
    const [holders, deleted] = await Promise.all([
      this.#holders(keys),
      this.#owner.deleteMany(keys, positions),
    ])
    const all = keys.map((_, i) => i)
    await Promise.all(
      Array.from(byHolder(holders, all), async ([holder, indexes]) => {
        const held = await holder.deleteLocal(indexes.map((i) => keys[i]))
        for (let j = 0; j < indexes.length; j++) deleted[indexes[j]] ||= held[j]
      }),
    )
    return deleted
  }

  /** Previous holders first, then the owner: an entry moving meanwhile is seen at least once. */
  async scan(hashMin: bigint, hashMax: bigint, filter?: ScanFilter): Promise<ScannedRecord[]> {
    const holders = await this.#routes.holdersOfRange(hashMin, hashMax)
    const held = (
      await Promise.all(holders.map((holder) => holder.scanLocal(hashMin, hashMax, filter)))
    ).flat()
    const owned = await this.#owner.scan(hashMin, hashMax, filter)
    if (held.length === 0) return owned
    const seen = new KeyMap<true>()
    for (const record of owned) seen.set(record.key, true)
    const merged = [...owned]
    for (const record of held) {
      if (seen.get(record.key) === undefined) {
        seen.set(record.key, true)
        merged.push(record)
      }
    }
    return merged.sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0))
  }

  extract(hashMin: bigint, hashMax: bigint): Promise<ScannedRecord[]> {
    return this.#owner.extract(hashMin, hashMax)
  }

  /**
   * Previous holders of keys, the owner's peer included: when our route to the owner is stale, the
   * peer we asked forwarded the read and never looked at the copy it may still hold itself.
   */
  #holders(keys: readonly NodeKey[]): Promise<Array<PreviousHolder | undefined>> {
    return this.#routes.holdersOfKeys(keys)
  }
}

const bits = new Float64Array(1)
const word = new BigUint64Array(bits.buffer)
const SIGN = 1n << 63n
const MASK = (1n << 64n) - 1n

/** A double's place in numeric order as an unsigned 64-bit integer (finite doubles only). */
function ordinal(x: number): bigint {
  bits[0] = x
  const raw = word[0]
  return raw & SIGN ? ~raw & MASK : raw | SIGN
}

function fromOrdinal(o: bigint): number {
  word[0] = o & SIGN ? o & ~SIGN : ~o & MASK
  return bits[0]
}

/**
 * The encoded keys `[low, high]` a monotone model maps into `[hashMin, hashMax]` (by bisection
 * over the doubles, 64 predictions each), or null when none does.
 */
export function encodedRangeOf(
  model: RecursiveModelIndex,
  hashMin: bigint,
  hashMax: bigint,
): { low: number; high: number } | null {
  const first = ordinal(-Number.MAX_VALUE)
  const last = ordinal(Number.MAX_VALUE)
  // Smallest ordinal whose position is >= hashMin.
  let lo = first
  let hi = last + 1n
  while (lo < hi) {
    const mid = (lo + hi) >> 1n
    if (model.predict(fromOrdinal(mid)) < hashMin) lo = mid + 1n
    else hi = mid
  }
  if (lo > last) return null
  const low = lo
  // Largest ordinal whose position is <= hashMax.
  lo = first - 1n
  hi = last
  while (lo < hi) {
    const mid = (lo + hi + 1n) >> 1n
    if (model.predict(fromOrdinal(mid)) <= hashMax) lo = mid
    else hi = mid - 1n
  }
  if (lo < low) return null
  return { low: fromOrdinal(low), high: fromOrdinal(lo) }
}
