// A client of a running dlht ring: dials one node over libp2p and asks it, over the client protocol, to
// put, get, delete, range-query, report stats or retrain. It joins no ring and holds no data or model.

import { peerIdFromString } from '@libp2p/peer-id'
import { deserializeValue, serializeValue } from '../node/value-codec.js'
import { bootstrapAddress, createDlhtLibp2p, type DlhtLibp2p } from '../overlay/libp2p.js'
import { explainJoinFailure, type SwarmKey } from '../overlay/private-network.js'
import {
  CLIENT_PROTOCOL,
  ClientDelete,
  ClientGet,
  ClientPut,
  ClientRange,
  ClientRetrain,
  ClientStats,
  RETIRED_CLIENT_PROTOCOLS,
} from '../protocol/client-messages.js'
import { ProtocolMismatchError } from '../protocol/errors.js'
import type { MessageCodec } from '../protocol/messages.js'
import type { PeerAddress } from '../protocol/service.js'
import type { NodeKey } from '../shared/keys.js'

/** Options of `DlhtClient.connect`. */
export interface DlhtClientOptions {
  /** Deadline of each request (dial included), in milliseconds. Default 30000. */
  timeout?: number
  /** The key of a private ring (LeadConfig.swarmKey); without it such a ring refuses the connection. */
  swarmKey?: SwarmKey
}

/** An entry of a key range, its value decoded. */
export interface ClientRangeEntry {
  key: NodeKey
  value: unknown
}

/**
 * A connection to one node of a ring (`dlht start` serves clients). Operations run on that node as
 * its own, so they reach every owner on the ring.
 *
 * @example
 * const client = await DlhtClient.connect('127.0.0.1:9000')
 * await client.put('mykey', { data: 'value' })
 * await client.get('mykey') // { data: 'value' }
 * await client.close()
 */
export class DlhtClient {
  readonly #libp2p: DlhtLibp2p
  readonly #peer: PeerAddress

  private constructor(libp2p: DlhtLibp2p, peer: PeerAddress) {
    this.#libp2p = libp2p
    this.#peer = peer
  }

  /**
   * Dials `peer` ("host:port" or a multiaddr).
   * @throws InvalidArgumentError for a bad address, PeerUnavailableError or RemoteCallTimeoutError when
   *   unreachable, MembershipRefusedError when a private ring refuses the handshake (no or another swarm key)
   */
  static async connect(peer: string, options: DlhtClientOptions = {}): Promise<DlhtClient> {
    const address = bootstrapAddress(peer)
    const libp2p = await createDlhtLibp2p({
      ip: '127.0.0.1',
      port: 0,
      callTimeout: options.timeout ?? 30_000,
      swarmKey: options.swarmKey,
    })
    try {
      return new DlhtClient(libp2p, await libp2p.services.dlht.connect(address))
    } catch (err) {
      await libp2p.stop()
      throw explainJoinFailure(err, peer, { swarmKey: options.swarmKey !== undefined, allowedPeers: false })
    }
  }

  /** The peer id of the node this client talks to. */
  get peerId(): string {
    return this.#peer.peerId
  }

  /** @throws ProtocolMismatchError when the node does not speak this client's CLIENT_PROTOCOL */
  async #call<Request, Answer>(codec: MessageCodec<Request, Answer>, request: Request): Promise<Answer> {
    try {
      return await this.#libp2p.services.dlht.call(this.#peer, CLIENT_PROTOCOL, codec, request)
    } catch (err) {
      throw isUnsupportedProtocol(err) ? await this.#mismatch(err) : err
    }
  }

  /** The error of a node that refused CLIENT_PROTOCOL, naming the earlier one it speaks if any. */
  async #mismatch(cause: unknown): Promise<ProtocolMismatchError> {
    const node = `the node ${this.#peer.peerId}`
    try {
      const stream = await this.#libp2p.dialProtocol(
        peerIdFromString(this.#peer.peerId),
        [...RETIRED_CLIENT_PROTOCOLS],
        { signal: AbortSignal.timeout(this.#libp2p.services.dlht.callTimeout) },
      )
      stream.abort(new ProtocolMismatchError('only asked which version the node speaks'))
      return new ProtocolMismatchError(
        `${node} speaks ${stream.protocol}, this client ${CLIENT_PROTOCOL}: use a dlht client of the ring's release`,
        { cause },
      )
    } catch {
      return new ProtocolMismatchError(
        `${node} serves no ${CLIENT_PROTOCOL}: it runs a later dlht release, or does not serve clients ` +
          '(dlht start does; a dlht() service with serveClients: true)',
        { cause },
      )
    }
  }

  /** Stores a value (anything `structuredClone` accepts) under a key. */
  async put(key: NodeKey, value: unknown): Promise<void> {
    await this.#call(ClientPut, { key, value: serializeValue(value, Number.POSITIVE_INFINITY) })
  }

  /** The value stored under `key`, or undefined. */
  async get(key: NodeKey): Promise<unknown> {
    const bytes = await this.#call(ClientGet, key)
    return bytes === null ? undefined : deserializeValue(bytes)
  }

  /** Removes a key; true when it was present. */
  delete(key: NodeKey): Promise<boolean> {
    return this.#call(ClientDelete, key)
  }

  /** Entries whose keys lie in [keyMin, keyMax], in key order, at most `limit` (default 1000). */
  async rangeQueryKeys(
    keyMin: NodeKey,
    keyMax: NodeKey,
    limit = 1000,
  ): Promise<{ entries: ClientRangeEntry[]; truncated: boolean }> {
    const { entries, truncated } = await this.#call(ClientRange, { keyMin, keyMax, limit })
    return { entries: entries.map(({ key, value }) => ({ key, value: deserializeValue(value) })), truncated }
  }

  /** The node's `getStats()`, as JSON (bigints as decimal strings). */
  stats(): Promise<unknown> {
    return this.#call(ClientStats, undefined)
  }

  /** Runs `retrainModel({ force })` on the node (a federated round on a ring); its `RetrainResult`. */
  retrain(force = false): Promise<unknown> {
    return this.#call(ClientRetrain, { force })
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.#libp2p.stop()
  }
}

/** Whether a call failed because the peer refused its protocol (multistream-select found none in common). */
function isUnsupportedProtocol(err: unknown): boolean {
  for (let cause: unknown = err; cause instanceof Error; cause = cause.cause) {
    if (cause.name === 'UnsupportedProtocolError') return true
  }
  return false
}
