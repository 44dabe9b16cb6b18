// Who may be a member of a ring: a libp2p private-network key (swarm.key) that every member shares,
// an optional allow-list of peer ids enforced by libp2p's connection gater, and the typed errors of both.

import { randomBytes } from 'node:crypto'
import type {
  AbortOptions,
  ConnectionGater,
  ConnectionProtector,
  MessageStream,
  PeerId,
} from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { preSharedKey } from '@libp2p/pnet'
import { byteStream } from '@libp2p/utils'
import { CodedError, InvalidArgumentError } from '../errors.js'
import { PeerUnavailableError } from '../protocol/errors.js'

/** First line of the standard swarm.key format (libp2p private networks, IPFS private swarms). */
const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/'
/** The only encoding `@libp2p/pnet` reads. */
const SWARM_KEY_ENCODING = '/base16/'
const SWARM_KEY_BYTES = 32

/** A swarm key as accepted in configuration: the text of a swarm.key file, or its bytes. */
export type SwarmKey = string | Uint8Array

/** A swarm key that is not in the swarm.key format (`ERR_DLHT_INVALID_SWARM_KEY`). */
export class InvalidSwarmKeyError extends InvalidArgumentError {
  constructor(message: string) {
    super(message, 'ERR_DLHT_INVALID_SWARM_KEY')
  }
}

/**
 * This node could not become a member of the ring it was pointed at: the connection to the
 * bootstrap peer was refused during its handshake (`ERR_DLHT_NOT_A_MEMBER`). The message says which
 * of the membership conditions (swarm key, allow-list) is the likely cause.
 */
export class MembershipRefusedError extends CodedError {
  static override readonly code = 'ERR_DLHT_NOT_A_MEMBER'
}

/**
 * Reads a swarm key (`/key/swarm/psk/1.0.0/`, `/base16/`, then 64 hex digits, one per line; a
 * trailing newline and CRLF line ends are fine) and returns it in canonical form, the bytes
 * `@libp2p/pnet` expects.
 * @throws InvalidSwarmKeyError for anything else
 */
export function parseSwarmKey(key: SwarmKey): Uint8Array {
  if (typeof key !== 'string' && !(key instanceof Uint8Array)) {
    throw new InvalidSwarmKeyError('a swarm key must be a string or bytes in the swarm.key format')
  }
  const text = typeof key === 'string' ? key : Buffer.from(key).toString('latin1')
  const lines = text.split(/\r?\n/)
  while (lines.length > 3 && lines.at(-1) === '') lines.pop()
  const [header, encoding, hex] = lines
  if (lines.length !== 3 || header !== SWARM_KEY_HEADER) {
    throw new InvalidSwarmKeyError(`a swarm key has three lines and starts with ${SWARM_KEY_HEADER}`)
  }
  if (encoding !== SWARM_KEY_ENCODING) {
    throw new InvalidSwarmKeyError(`only ${SWARM_KEY_ENCODING} swarm keys are supported, got ${encoding}`)
  }
  if (!new RegExp(`^[0-9a-fA-F]{${2 * SWARM_KEY_BYTES}}$`).test(hex)) {
    throw new InvalidSwarmKeyError(`a swarm key's third line is ${2 * SWARM_KEY_BYTES} hex digits`)
  }
  return Buffer.from(`${SWARM_KEY_HEADER}\n${SWARM_KEY_ENCODING}\n${hex.toLowerCase()}`, 'latin1')
}

/** A new random swarm key, as the text of a swarm.key file. Give the same one to every member. */
export function generateSwarmKey(): string {
  return `${SWARM_KEY_HEADER}\n${SWARM_KEY_ENCODING}\n${randomBytes(SWARM_KEY_BYTES).toString('hex')}\n`
}

/** Zero bytes each side sends through the private-network cipher, to prove it holds the same key. */
const KEY_CHECK_BYTES = 16

/**
 * Milliseconds a connection has to pass the key check. A peer without a key may wait for more
 * bytes than the check sends (its multistream-select reads our nonce as a length): this side
 * closes the connection then, which ends the other's wait too.
 */
const KEY_CHECK_TIMEOUT = 2000

/** Marks the error of a failed key check, so that a dialler can say why it was refused. */
const KEY_MISMATCH = 'the peer uses another swarm key'

/**
 * `@libp2p/pnet`'s connection protector (XSalsa20 under the swarm key, a random nonce each way)
 * followed by a key check: each side sends 16 zero bytes through the cipher and expects to read
 * zeros back. Without it a peer with another key would not fail before noise gave up waiting for a
 * garbled length prefix (a call timeout); with it the handshake fails at once, on both sides, or within `KEY_CHECK_TIMEOUT`.
 */
export function swarmKeyProtector(key: SwarmKey): () => ConnectionProtector {
  const pnet = preSharedKey({ psk: parseSwarmKey(key) })()
  return () => ({
    async protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
      const deadline = AbortSignal.timeout(KEY_CHECK_TIMEOUT)
      const signal = options?.signal === undefined ? deadline : AbortSignal.any([deadline, options.signal])
      const protectedStream = await pnet.protect(connection, { signal })
      const bytes = byteStream(protectedStream)
      try {
        const [check] = await Promise.all([
          bytes.read({ bytes: KEY_CHECK_BYTES, signal }),
          bytes.write(new Uint8Array(KEY_CHECK_BYTES), { signal }),
        ])
        if (check.subarray().some((byte) => byte !== 0)) throw new MembershipRefusedError(KEY_MISMATCH)
      } catch (err) {
        protectedStream.abort(err as Error)
        connection.abort(err as Error)
        throw err
      }
      return bytes.unwrap()
    },
  })
}

/**
 * Reads a list of peer ids.
 * @throws InvalidArgumentError naming the first entry that is not a peer id
 */
export function parsePeerIds(peers: unknown): PeerId[] {
  if (!Array.isArray(peers)) throw new InvalidArgumentError('must be an array of peer ids')
  return peers.map((peer, index) => {
    try {
      return peerIdFromString(String(peer))
    } catch (err) {
      throw new InvalidArgumentError(`entry ${index} (${String(peer)}) is not a peer id`, undefined, {
        cause: err,
      })
    }
  })
}

/**
 * A connection gater that lets only `allowed` peers (and `self`) connect, either way: dials to
 * others are not made, and connections from others are closed once their peer id is known
 * (after encryption, before any protocol runs).
 */
export function allowListGater(allowed: readonly string[], self: string): ConnectionGater {
  const members = new Set([...allowed, self])
  const denied = (peerId: PeerId) => !members.has(peerId.toString())
  return {
    denyDialPeer: denied,
    denyInboundEncryptedConnection: denied,
    denyOutboundEncryptedConnection: denied,
  }
}

/**
 * Why joining through a bootstrap peer failed, when the failure says that the ring refused this
 * node: a connection was made but the peer closed it during its handshake (another or no swarm
 * key) or right after it (an allow-list). Other failures (no one listening, unreachable, a
 * timeout, an error the peer answered) are returned as they are.
 */
export function explainJoinFailure(
  err: unknown,
  address: string,
  local: { swarmKey: boolean; allowedPeers: boolean },
): unknown {
  const causes: string[] = []
  for (let cause: unknown = err; cause instanceof Error; cause = cause.cause) {
    causes.push(`${(cause as { code?: string }).code ?? ''} ${cause.name} ${cause.message}`)
  }
  const reasons = causes.join(' ')
  const refused = `the ring at ${address} refused this node during the connection handshake`
  if (reasons.includes(KEY_MISMATCH)) {
    return new MembershipRefusedError(`${refused}: ${KEY_MISMATCH} than this node`, { cause: err })
  }
  const closedByPeer =
    err instanceof PeerUnavailableError &&
    !/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|TimeoutError/.test(reasons)
  if (!closedByPeer) return err
  const swarm = local.swarmKey
    ? 'this node has a swarm key and the peer has none'
    : 'this node has no swarm key and the ring is private (LeadConfig.swarmKey)'
  const allow = local.allowedPeers
    ? 'the peer is not in this allowedPeers list, or this node is not in the peer’s'
    : 'this node is not in the peer’s allowedPeers'
  return new MembershipRefusedError(`${refused}: ${swarm}, or ${allow}`, { cause: err })
}
