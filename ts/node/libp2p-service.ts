// dlht as a service of a libp2p node the application builds itself:
// `createLibp2p({ ..., services: { dlht: dlht(config) } })`. Transports, encrypters, swarm key, peer
// discovery and lifecycle are the application's; the service joins the ring once libp2p listens and
// leaves it (handing its entries over) before libp2p closes its connections.

import {
  type Libp2pEvents,
  type PrivateKey,
  type Startable,
  serviceCapabilities,
  type TypedEventTarget,
} from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { type ChordRouterOptions, chordRouter } from '../overlay/chord-router.js'
import { type DlhtLibp2p, startOnUserNode } from '../overlay/libp2p.js'
import { DlhtService, type DlhtServiceComponents, type DlhtServiceInit } from '../protocol/service.js'
import { InvalidConfigError } from '../shared/errors.js'
import { serveClients } from './client-gateway.js'
import type { LeadConfigInit } from './config.js'
import { LeadNode } from './lead-node.js'

/** LeadConfig fields that belong to the libp2p node, with where to set them instead. */
const LIBP2P_FIELDS = {
  ip: 'its addresses.listen',
  basePort: 'its addresses.listen',
  network: 'nothing: the service is always on the network of its libp2p node',
  swarmKey: 'its connectionProtector: swarmKeyProtector(swarmKey)',
  privateKey: 'its privateKey',
  peerKeyFile: 'its privateKey',
  allowedPeers: 'its connectionGater',
} as const

/** A LeadNode's configuration as a service: every LeadConfig field but those of the libp2p node. */
export type DlhtServiceConfig = Omit<LeadConfigInit, keyof typeof LIBP2P_FIELDS>

/** How the service runs besides its configuration. */
export interface DlhtInit extends Omit<DlhtServiceInit, 'callTimeout' | 'maxFrameSize'> {
  /** Options of the Chord overlay (timeouts, frame size, placement); the identity is the libp2p node's. */
  router?: Omit<ChordRouterOptions, 'privateKey'>
  /**
   * Also serve the client protocol (`dlht get --peer`, `DlhtClient`) on this node, so a client can
   * run operations here as this node's own. Default false.
   */
  serveClients?: boolean
}

/** What the service takes from its libp2p node. */
export interface LeadNodeServiceComponents extends DlhtServiceComponents {
  privateKey: PrivateKey
  events: TypedEventTarget<Libp2pEvents>
  addressManager: {
    /** Where the node listens now, each address ending in /p2p/<peer id>. */
    getAddresses(): Multiaddr[]
    /** The addresses the node was configured to listen on. */
    getListenAddrs(): Multiaddr[]
  }
}

/** @throws InvalidConfigError naming a field that the libp2p node owns */
function checkServiceConfig(config: DlhtServiceConfig): void {
  if (typeof config !== 'object' || config === null) return // resolveLeadConfig names the mistake
  for (const [field, instead] of Object.entries(LIBP2P_FIELDS)) {
    if (field in config)
      throw new InvalidConfigError(field, `belongs to your libp2p node as a dlht service: set ${instead}`)
  }
}

/**
 * A LeadNode running as a service of an application's libp2p node (`libp2p.services.dlht`): the
 * whole LeadNode API (put, get, range queries, retrains, stats, typed events) on the application's
 * transports, encrypters and identity. Its lifecycle is libp2p's: `createLibp2p` (or
 * `libp2p.start()`) serves the dlht protocols and joins the ring of `bootstrapPeer` once the node
 * listens; `libp2p.stop()` leaves the ring, handing entries to the successors, while the
 * connections are still open.
 */
export class LeadNodeService extends LeadNode implements Startable {
  readonly [Symbol.toStringTag] = '@dlht/lead-node'
  readonly [serviceCapabilities]: string[] = ['@dlht/key-value-store']
  readonly #components: LeadNodeServiceComponents
  readonly #protocols: DlhtService
  /** What the Chord router runs on: this service's protocols over the application's node, which it never stops. */
  readonly #host: DlhtLibp2p
  readonly #callTimeout: number
  readonly #servesClients: boolean
  #stopServingClients: (() => Promise<void>) | undefined

  /** @throws InvalidConfigError naming the first invalid field, or one that the libp2p node owns */
  constructor(components: LeadNodeServiceComponents, config: DlhtServiceConfig = {}, init: DlhtInit = {}) {
    checkServiceConfig(config)
    const { router: routerOptions = {}, serveClients: servesClients = false, ...limits } = init
    super(config, { router: chordRouter({ ...routerOptions, privateKey: components.privateKey }) })
    this.#components = components
    this.#callTimeout = routerOptions.callTimeout ?? 5000
    this.#protocols = new DlhtService(components, {
      ...limits,
      callTimeout: this.#callTimeout,
      maxFrameSize: routerOptions.maxFrameSize,
    })
    const host: Pick<DlhtLibp2p, 'services' | 'stop'> = {
      services: { dlht: this.#protocols },
      stop: async () => {},
    }
    // The router reads only `services.dlht` and calls `stop()` of the node it runs on.
    this.#host = host as DlhtLibp2p
    this.#servesClients = servesClients
  }

  /** Called by libp2p: serves the dlht protocols. The ring is joined in `afterStart`, once libp2p listens. */
  override async start(): Promise<void> {
    await this.#protocols.start()
  }

  /** Called by libp2p once its transports listen: opens the store and joins (or starts) the ring. */
  async afterStart(): Promise<void> {
    await this.#listening()
    await startOnUserNode(this.#host, () => super.start())
    if (this.#servesClients) this.#stopServingClients = await serveClients(this.#components.registrar, this)
  }

  /** Called by libp2p while its connections are open: leaves the ring, handing entries over. */
  async beforeStop(): Promise<void> {
    await this.#stopServingClients?.()
    this.#stopServingClients = undefined
    await super.stop()
  }

  /** Called by libp2p: leaves the ring if `beforeStop` did not, and stops serving the dlht protocols. */
  override async stop(): Promise<void> {
    await this.beforeStop()
    await this.#protocols.stop()
  }

  /** Where this node listens, each address ending in /p2p/<peer id> (what other peers bootstrap from). */
  multiaddrs(): string[] {
    return this.#protocols.multiaddrs()
  }

  /**
   * Waits (at most a call timeout) until libp2p listens on an address, which the ring needs to call
   * this node back; a node with no listen address (dial only) goes on at once.
   */
  async #listening(): Promise<void> {
    const { addressManager, events } = this.#components
    if (addressManager.getListenAddrs().length === 0) return
    const deadline = AbortSignal.timeout(this.#callTimeout)
    while (addressManager.getAddresses().length === 0 && !deadline.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          events.removeEventListener('transport:listening', done)
          deadline.removeEventListener('abort', done)
          resolve()
        }
        events.addEventListener('transport:listening', done)
        deadline.addEventListener('abort', done)
      })
    }
  }
}

/**
 * dlht as a libp2p service:
 * `createLibp2p({ transports, connectionEncrypters, streamMuxers, services: { dlht: dlht(config) } })`
 * makes `libp2p.services.dlht` a {@link LeadNodeService}. `config` is a LeadConfig without the
 * fields of the libp2p node itself (addresses, identity, swarm key, allowed peers).
 *
 * @example
 * const libp2p = await createLibp2p({
 *   addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
 *   transports: [tcp()],
 *   connectionEncrypters: [noise()],
 *   streamMuxers: [yamux()],
 *   services: { dlht: dlht({ bootstrapPeer: '/ip4/127.0.0.1/tcp/9000' }) },
 * })
 * await libp2p.services.dlht.put('mykey', { data: 'value' })
 */
export function dlht(
  config: DlhtServiceConfig = {},
  init: DlhtInit = {},
): (components: LeadNodeServiceComponents) => LeadNodeService {
  return (components) => new LeadNodeService(components, config, init)
}
