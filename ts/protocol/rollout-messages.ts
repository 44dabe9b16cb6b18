// The ring's configuration and the messages of a model rollout: contributions to a federated round,
// prepare, commit and abort of the model it makes, and the status of the migration that follows.

import type { VnodeRef } from '../shared/router.js'
import { readArray, readBigint, readBoolean, readBytes, readNullable, readString, readUint } from './codec.js'
import {
  type MessageCodec,
  nothing,
  type PeerRef,
  readPeers,
  readRefs,
  writePeer,
  writeRef,
} from './message-codec.js'

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
