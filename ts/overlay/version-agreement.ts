// Entries move and are served only between peers on one model version: the checks a served
// request passes, and learning a peer's newer version when it refused ours.

import type { ModelRollout } from '../federation/model-rollout.js'
import { UnknownModelVersionError } from '../protocol/errors.js'
import { GetConfig, RING_PROTOCOL } from '../protocol/messages.js'
import type { OverlayState, PeerAddressRef } from './overlay-state.js'

const MODEL_VERSION_HINT = 'use the same model on every peer (model versions differ)'

/** Agrees with other peers on the model version that places entries. */
export class VersionAgreement {
  readonly #state: OverlayState
  readonly #rollout: ModelRollout
  readonly #catchingUp = new Map<string, Promise<void>>()

  constructor(state: OverlayState, rollout: ModelRollout) {
    this.#state = state
    this.#rollout = rollout
  }

  /**
   * Serves a request only under the version it was routed by: a newer version prepared here is
   * committed at once; any other mismatch is refused (and a newer one learnt from the sender). A
   * write under the current version waits for a prepared one to be committed or aborted: accepted
   * after some peer committed, it could land behind a newer write made under the new version.
   */
  agree(version: number, from: string | undefined, write: boolean): Promise<void> | undefined {
    if (write && version === this.#state.learnedHash.version && this.#rollout.prepared) {
      return this.#rollout
        .decided(this.#state.options.callTimeout / 2)
        .then(() => this.require(version, from, 'request'))
    }
    this.require(version, from, 'request')
    return undefined
  }

  /** The version check of `agree`, synchronous: a newer prepared version is committed. */
  require(version: number, from: string | undefined, what: string): void {
    const current = this.#state.learnedHash.version
    if (version === current || (version > current && this.#rollout.commitPrepared(version))) return
    if (version > current && from !== undefined) void this.catchUpWith({ peerId: from, multiaddrs: [] })
    throw new UnknownModelVersionError(
      `${what} placed with model version ${version}, this peer uses ${current}: ${MODEL_VERSION_HINT}`,
    )
  }

  /** Learns the model version of a peer that refused ours, once at a time per peer. */
  catchUpWith(peer: PeerAddressRef): Promise<void> {
    let running = this.#catchingUp.get(peer.peerId)
    if (running === undefined) {
      running = (async () => {
        const signal = AbortSignal.timeout(this.#state.options.callTimeout)
        const config = await this.#state.call(peer, RING_PROTOCOL, GetConfig, undefined, signal)
        this.#rollout.catchUp(config, peer)
      })()
        .catch(() => {})
        .finally(() => this.#catchingUp.delete(peer.peerId))
      this.#catchingUp.set(peer.peerId, running)
    }
    return running
  }
}
