// A libp2p node ready for dlht: TCP, noise, yamux and the dlht service, listening on ip:port, or the
// user's own node when dlht runs as its service. Also turns a bootstrap peer given as "host:port" or as
// a multiaddr into a dialable address.

import { AsyncLocalStorage } from 'node:async_hooks'
import { isIP, type Socket } from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type {
  ConnectionEncrypter,
  Libp2p,
  MessageStream,
  PrivateKey,
  SecuredConnection,
} from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { InvalidArgumentError } from '../errors.js'
import { type DlhtService, type DlhtServiceInit, dlhtService } from '../protocol/service.js'
import { generatePrivateKey } from './identity.js'
import { allowListGater, type SwarmKey, swarmKeyProtector } from './private-network.js'

/** Options of `createDlhtLibp2p`. */
export interface DlhtLibp2pInit extends DlhtServiceInit {
  /** Address to listen on; 'localhost' means 127.0.0.1. Default '127.0.0.1'. */
  ip?: string
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number
  /** The peer's identity; a new Ed25519 key when absent. */
  privateKey?: PrivateKey
  /** A private network: only peers with this swarm key can connect (`@libp2p/pnet`). */
  swarmKey?: SwarmKey
  /** Only these peer ids may connect, either way (libp2p's connection gater). */
  allowedPeers?: readonly string[]
}

/** A libp2p node carrying the dlht service. */
export type DlhtLibp2p = Libp2p<{ dlht: DlhtService }>

function ipComponent(host: string): string {
  const resolved = host === 'localhost' ? '127.0.0.1' : host
  switch (isIP(resolved)) {
    case 4:
      return `/ip4/${resolved}`
    case 6:
      return `/ip6/${resolved}`
    default:
      return `/dns4/${resolved}`
  }
}

/**
 * The address of a bootstrap peer: a multiaddr (starting with '/') as is, or a
 * "host:port" as /ip4|ip6|dns4/host/tcp/port (without a peer id: the dial learns it).
 * @throws InvalidArgumentError when it is neither
 */
export function bootstrapAddress(peer: string): Multiaddr {
  if (peer.startsWith('/')) {
    try {
      return multiaddr(peer)
    } catch (err) {
      throw new InvalidArgumentError(`bootstrapPeer is not a valid multiaddr: ${peer}`, undefined, {
        cause: err,
      })
    }
  }
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(peer)
  const port = Number(match?.[2])
  if (match === null || port < 1 || port > 65535) {
    throw new InvalidArgumentError(
      `bootstrapPeer must be "host:port" or a multiaddr, got ${JSON.stringify(peer)}`,
    )
  }
  return multiaddr(`${ipComponent(match[1])}/tcp/${port}`)
}

/** A TCP connection as @libp2p/tcp makes it: a message stream over a socket. */
interface SocketStream {
  socket: Socket
  sendData(data: unknown): unknown
}

/**
 * Makes a TCP connection write once per turn of the event loop: the first write of a turn corks the
 * socket and a `process.nextTick` (after every microtask of the turn) uncorks it, so the noise length
 * prefixes, ciphertexts, yamux window updates and answers written in one turn leave in one `writev`
 * and one TCP segment instead of a syscall and a segment each. Other connections are left as they are.
 */
function writeOncePerTurn(connection: MessageStream): MessageStream {
  const tcp = connection as unknown as Partial<SocketStream>
  const socket = tcp.socket
  const sendData = tcp.sendData
  if (socket === undefined || typeof sendData !== 'function') return connection
  let corked = false
  const uncork = () => {
    corked = false
    socket.uncork()
  }
  tcp.sendData = (data) => {
    if (!corked) {
      corked = true
      socket.cork()
      process.nextTick(uncork)
    }
    return sendData.call(connection, data)
  }
  return connection
}

/** Bytes of what noise's length decoder reads: a list of chunks. */
interface ByteList {
  byteLength: number
  get(index: number): number
}

/** The longest noise message, in bytes: the 2-byte length prefix cannot say more. */
const NOISE_MAX_MESSAGE = 0xffff

/**
 * Noise's length prefix (2 bytes, big-endian), read without an exception: noise's own reader throws a
 * RangeError, stack trace included, whenever the bytes received so far end on a message boundary,
 * which is after almost every TCP read (8% of a client's CPU in `benchmark/cluster.ts`). A buffer too
 * short to hold the prefix reports the longest length instead, which its decoder also reads as "wait
 * for more bytes".
 */
function noiseLength(buffer: ByteList): number {
  return buffer.byteLength < 2 ? NOISE_MAX_MESSAGE : buffer.get(0) * 256 + buffer.get(1)
}

/** Gives a secured noise connection the exception-free length reader, when it has noise's own. */
function withNoiseLength<T extends SecuredConnection<unknown>>(secured: T): T {
  const decoder = (secured.connection as { decoder?: { lengthDecoder?: (buffer: ByteList) => number } })
    .decoder
  if (decoder?.lengthDecoder?.name === 'uint16BEDecode') decoder.lengthDecoder = noiseLength
  return secured
}

/**
 * Noise over connections that write once per turn (see `writeOncePerTurn`), reading length prefixes
 * without exceptions (see `noiseLength`).
 */
function fastNoise(): (components: Parameters<ReturnType<typeof noise>>[0]) => ConnectionEncrypter {
  const factory = noise()
  return (components) => {
    const encrypter = factory(components)
    const secureInbound = encrypter.secureInbound.bind(encrypter)
    const secureOutbound = encrypter.secureOutbound.bind(encrypter)
    encrypter.secureInbound = async (connection, options) =>
      withNoiseLength(await secureInbound(writeOncePerTurn(connection), options))
    encrypter.secureOutbound = async (connection, options) =>
      withNoiseLength(await secureOutbound(writeOncePerTurn(connection), options))
    return encrypter
  }
}

/**
 * The libp2p node that a router starting in this async context runs on instead of creating one: the
 * user's own node, which carries dlht as a service (see `dlht()`) and whose transports, encrypters,
 * swarm key and lifecycle are the user's.
 */
const userNode = new AsyncLocalStorage<DlhtLibp2p>()

/** Runs `start` so that `createDlhtLibp2p` calls within it answer `host` instead of creating a node. */
export function startOnUserNode<T>(host: DlhtLibp2p, start: () => Promise<T>): Promise<T> {
  return userNode.run(host, start)
}

/**
 * Creates and starts a libp2p node listening on TCP `ip:port` with noise and yamux, carrying the
 * dlht service as `services.dlht`. Stop it with `node.stop()`. Within `startOnUserNode(host, ...)`
 * it answers `host` instead, and `init` is not used.
 */
export async function createDlhtLibp2p(init: DlhtLibp2pInit = {}): Promise<DlhtLibp2p> {
  const host = userNode.getStore()
  if (host !== undefined) return host
  const listen = `${ipComponent(init.ip ?? '127.0.0.1')}/tcp/${init.port ?? 0}`
  const privateKey = init.privateKey ?? generatePrivateKey()
  const self = peerIdFromPrivateKey(privateKey).toString()
  return createLibp2p({
    privateKey,
    connectionProtector: init.swarmKey === undefined ? undefined : swarmKeyProtector(init.swarmKey),
    connectionGater: init.allowedPeers === undefined ? undefined : allowListGater(init.allowedPeers, self),
    addresses: { listen: [listen] },
    transports: [tcp()],
    connectionEncrypters: [fastNoise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
    services: { dlht: dlhtService(init) },
  })
}
