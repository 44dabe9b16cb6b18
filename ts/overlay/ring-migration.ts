// Entries that move between peers because the model changed: a rollout's migration to the new
// owners, the previous holders a read asks while it runs, hand-over entries placed by another version.

import { encodedRangeOf, MigratingDataPlane, type PreviousHolder } from '../federation/migrating-plane.js'
import type { ModelRollout } from '../federation/model-rollout.js'
import type { DataPlane, ScannedRecord } from '../shared/data-plane.js'
import type { NodeKey } from '../shared/keys.js'
import type { VnodeRef } from '../shared/router.js'
import type { DataServer } from './data-server.js'
import { LEAVE_PATIENCE_TIMEOUTS, type OverlayState } from './overlay-state.js'
import type { Routing } from './routing.js'

/** Moves entries to the owners the current model gives them. */
export class RingMigration {
  readonly #state: OverlayState
  readonly #routing: Routing
  readonly #data: DataServer
  readonly #rollout: ModelRollout
  /** Data planes that also reach previous holders, while a rollout migrates entries. */
  readonly #migratingPlanes = new Map<string, MigratingDataPlane>()
  #localHolder: PreviousHolder | undefined

  constructor(state: OverlayState, routing: Routing, data: DataServer, rollout: ModelRollout) {
    this.#state = state
    this.#routing = routing
    this.#data = data
    this.#rollout = rollout
  }

  /** The data plane of `owner`'s peer; while a rollout migrates, one that also asks previous holders. */
  dataPlane(owner: VnodeRef): DataPlane {
    const plane = this.#data.planeFor(owner)
    if (!this.#rollout.migrating) {
      if (this.#migratingPlanes.size > 0) this.#migratingPlanes.clear()
      return plane
    }
    let migrating = this.#migratingPlanes.get(owner.peerId)
    if (migrating === undefined) {
      migrating = new MigratingDataPlane(plane, {
        holdersOfKeys: (keys) => this.#holdersOfKeys(keys),
        holdersOfRange: (hashMin, hashMax) => this.#holdersOfRange(hashMin, hashMax),
      })
      this.#migratingPlanes.set(owner.peerId, migrating)
    }
    return migrating
  }

  /** Sends migrating records to the peers that own them now. */
  async migrate(records: ScannedRecord[], signal: AbortSignal): Promise<void> {
    const owners = await this.#routing.findSuccessorMany(
      BigUint64Array.from(records, (record) => record.position),
      { signal },
    )
    const groups = new Map<string, { owner: VnodeRef; records: ScannedRecord[] }>()
    for (let i = 0; i < records.length; i++) {
      const group = groups.get(owners[i].peerId)
      if (group === undefined) groups.set(owners[i].peerId, { owner: owners[i], records: [records[i]] })
      else group.records.push(records[i])
    }
    await Promise.all(
      Array.from(groups.values(), async ({ owner, records: owned }) => {
        // Ownership may have come back here meanwhile: the local plane serves it as a migration too.
        await this.#data.planeFor(owner).migrateRecords(owned)
      }),
    )
  }

  /** `records` with their positions under this peer's model version. */
  placed(records: readonly ScannedRecord[]): ScannedRecord[] {
    const learnedHash = this.#state.learnedHash
    const positions = learnedHash.model.predictMany(
      learnedHash.encodeMany(records.map((record) => record.key)),
    )
    return records.map((record, i) => ({ ...record, position: positions[i] }))
  }

  /**
   * Hand-over entries this peer does not own under its model version (mid-rollout, the giver
   * placed them by another one) go on to their owners, as a migration would move them; if that
   * fails they stay here, where the next migration finds them.
   */
  async sendOnMisplaced(
    records: readonly ScannedRecord[],
    owns: (position: bigint) => boolean,
  ): Promise<void> {
    const state = this.#state
    const misplaced = this.placed(records).filter((record) => !owns(record.position))
    if (misplaced.length === 0) return
    try {
      await this.migrate(misplaced, AbortSignal.timeout(LEAVE_PATIENCE_TIMEOUTS * state.options.callTimeout))
      await state.gate.exclusive(() => state.store.removeCopies(misplaced, owns))
    } catch (err) {
      state.log(`${misplaced.length} entries handed over here belong elsewhere and stay for now: ${err}`)
    }
  }

  /** For each key, the peer that may still hold it under the previous model, while it migrates. */
  async #holdersOfKeys(keys: readonly NodeKey[]): Promise<Array<PreviousHolder | undefined>> {
    const learnedHash = this.#state.learnedHash
    const previous = learnedHash.previous
    if (previous === null) return new Array(keys.length).fill(undefined)
    const owners = await this.#routing.findSuccessorMany(
      previous.model.predictMany(learnedHash.encodeManyFor(previous.model, keys)),
    )
    return owners.map((owner) => this.#holder(owner))
  }

  /** The peers that may still hold entries now placed in [hashMin, hashMax]. */
  async #holdersOfRange(hashMin: bigint, hashMax: bigint): Promise<PreviousHolder[]> {
    const learnedHash = this.#state.learnedHash
    const previous = learnedHash.previous
    if (previous === null) return []
    const keys = encodedRangeOf(learnedHash.model, hashMin, hashMax)
    if (keys === null) return []
    // Encoded keys of one code say nothing about another's: then any previous holder may hold them.
    const sameCode = previous.model.sameKeyCode(learnedHash.model)
    const from = sameCode ? previous.model.predict(keys.low) : 0n
    const to = sameCode ? previous.model.predict(keys.high) : learnedHash.options.hashSpaceSize - 1n
    const holders = new Set<PreviousHolder>()
    for (const { owner } of await this.#routing.coveringSegments(from, to)) {
      const holder = this.#holder(owner)
      if (holder !== undefined) holders.add(holder)
    }
    return [...holders]
  }

  #holder(owner: VnodeRef): PreviousHolder | undefined {
    const state = this.#state
    if (!this.#rollout.isMigrating(owner.peerId)) return undefined
    if (owner.peerId !== state.peerId) return this.#data.planeOf(owner)
    const store = state.store
    this.#localHolder ??= {
      peerId: state.peerId,
      getLocal: (keys) => store.getMany(keys),
      deleteLocal: (keys) => store.discard(keys),
      scanLocal: (hashMin, hashMax, filter) => store.scan(hashMin, hashMax, filter),
    }
    return this.#localHolder
  }
}
