// A libp2p node ready for dlht: TCP, noise, yamux and the dlht service, listening on ip:port.
// Also turns a bootstrap peer given as "host:port" or as a multiaddr into a dialable address.

import { isIP } from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { InvalidArgumentError } from '../errors.js'
import { type DlhtService, type DlhtServiceInit, dlhtService } from './service.js'

/** Options of `createDlhtLibp2p`. */
export interface DlhtLibp2pInit extends DlhtServiceInit {
  /** Address to listen on; 'localhost' means 127.0.0.1. Default '127.0.0.1'. */
  ip?: string
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number
  /** The peer's identity; a new Ed25519 key when absent. */
  privateKey?: PrivateKey
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
 * The address of a bootstrap peer: a multiaddr (starting with '/') as is, or the seed's
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

/**
 * Creates and starts a libp2p node listening on TCP `ip:port` with noise and yamux, carrying the
 * dlht service as `services.dlht`. Stop it with `node.stop()`.
 */
export async function createDlhtLibp2p(init: DlhtLibp2pInit = {}): Promise<DlhtLibp2p> {
  const listen = `${ipComponent(init.ip ?? '127.0.0.1')}/tcp/${init.port ?? 0}`
  return createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: [listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
    services: { dlht: dlhtService(init) },
  })
}
