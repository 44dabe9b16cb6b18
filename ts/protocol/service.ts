// The dlht libp2p service: registers the /dlht/3.0.0 protocols and keeps one long-lived stream per
// peer and protocol, so every remote call is a pipelined request on a stream that is already open.

import type {
  Connection,
  MessageStream,
  PeerId,
  Startable,
  Stream,
  StreamHandler,
  StreamHandlerOptions,
} from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { DlhtError } from '../errors.js'
import { PeerUnavailableError, RemoteCallTimeoutError } from './errors.js'
import { BytePool, FrameAccount } from './frame-budget.js'
import type { MessageCodec } from './messages.js'
import { DATA_MESSAGES, DATA_PROTOCOL, RING_MESSAGES, RING_PROTOCOL } from './messages.js'
import { DEFAULT_MAX_FRAME_SIZE, RequestCounter, RpcClient, serveRpc } from './rpc.js'

/** Options of the dlht service. */
export interface DlhtServiceInit {
  /** Largest frame sent or accepted, in bytes. Default 4 MiB. */
  maxFrameSize?: number
  /** Deadline of every remote call (dial included), in milliseconds. Default 5000. */
  callTimeout?: number
  /** Bytes of unfinished frames one connection may hold (its streams are reset past it). Default 3 frames. */
  maxBufferedPerConnection?: number
  /** Bytes of unfinished frames all connections together may hold. Default 16 frames. */
  maxBufferedPerNode?: number
  /** Milliseconds a frame may take to arrive once begun. Default 4 call timeouts. */
  frameTimeout?: number
  /** Requests served at once for one connection, over all its streams; more are answered PeerBusyError. Default 4096. */
  maxRequestsPerConnection?: number
}

/** The libp2p components the service uses. */
export interface DlhtServiceComponents {
  peerId: PeerId
  registrar: {
    /** Serves `protocol`'s incoming streams with `handler`. */
    handle(protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void>
    /** Stops serving `protocol`. */
    unhandle(protocol: string): Promise<void>
  }
  connectionManager: {
    /** Open connections, to `peerId` or to every peer. */
    getConnections(peerId?: PeerId): Connection[]
    /** Dials a peer, or reuses a connection to it. */
    openConnection(
      target: PeerId | Multiaddr | Multiaddr[],
      options?: { signal?: AbortSignal },
    ): Promise<Connection>
  }
  addressManager: { getAddresses(): Multiaddr[] }
}

/** A peer to call: its id and where it listens. */
export interface PeerAddress {
  peerId: string
  multiaddrs: readonly string[]
}

/** Serves one request of a dlht protocol; throws typed errors, which travel back to the caller. */
export type DlhtRequestHandler = (
  protocol: string,
  type: number,
  body: unknown,
  options: { signal: AbortSignal; remotePeer: string },
) => unknown

export interface CallOptions {
  signal?: AbortSignal
  /** Positions in answers are checked against this ring size. Default 2^64. */
  hashSpaceSize?: bigint
}

/** Requests arrived before the node attached its handler (it is still starting). */
export class NodeNotReadyError extends DlhtError {
  constructor(message = 'the dlht node is not serving yet') {
    super('ERR_DLHT_NOT_READY', message)
  }
}

/** Streams of one protocol a connection may have open at once, each way. */
const STREAMS_PER_CONNECTION = 16

/** Ring size positions are checked against when the caller names none. */
const RING_SIZE = 2n ** 64n

const SERVED: Record<string, ReadonlySet<number>> = {
  [RING_PROTOCOL]: RING_MESSAGES,
  [DATA_PROTOCOL]: DATA_MESSAGES,
}

/** Resolves like `promise`, or rejects as soon as `signal` aborts. */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function timeoutOrUnavailable(err: unknown, what: string): Error {
  if (err instanceof DOMException && err.name === 'TimeoutError') {
    return new RemoteCallTimeoutError(`${what} timed out`, { cause: err })
  }
  if (err instanceof DlhtError || (err instanceof DOMException && err.name === 'AbortError')) return err
  return new PeerUnavailableError(`${what} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}

/** A yamux stream's receive window, as @chainsafe/libp2p-yamux 8 keeps it. */
interface YamuxReceiveWindow {
  state: number
  recvWindow: number
  recvWindowCapacity: number
  sendWindowUpdate(): void
}

/** `StreamState.Established` of @chainsafe/libp2p-yamux. */
const YAMUX_ESTABLISHED = 3

/**
 * Makes an established yamux stream grant receive window only once half of it is used, as go-yamux
 * and rust-yamux do, instead of after every data frame: a call and its answer then cost two yamux
 * frames (two noise messages, two writes) instead of four. The sender never stalls: it waits only
 * for a whole window, and the update leaves as soon as half of it has arrived. Streams of other
 * muxers are left as they are.
 */
function lazyWindowUpdates(stream: MessageStream): void {
  const window = stream as unknown as Partial<YamuxReceiveWindow>
  const sendWindowUpdate = window.sendWindowUpdate
  if (typeof sendWindowUpdate !== 'function' || typeof window.recvWindowCapacity !== 'number') return
  window.sendWindowUpdate = function (this: YamuxReceiveWindow) {
    if (this.state !== YAMUX_ESTABLISHED || this.recvWindowCapacity * 2 <= this.recvWindow) {
      sendWindowUpdate.call(this)
    }
  }
}

/**
 * The service (`libp2p.services.dlht`). Startable: `start` registers the protocol handlers,
 * `stop` unregisters them and closes the streams. Both are idempotent.
 */
export class DlhtService implements Startable {
  readonly [Symbol.toStringTag] = '@dlht/service'
  readonly maxFrameSize: number
  readonly callTimeout: number
  readonly #components: DlhtServiceComponents
  readonly #clients = new Map<string, Promise<RpcClient>>()
  /** Clients whose stream is open, by protocol and peer id: the path of every call but the first. */
  readonly #open = new Map<string, Map<string, RpcClient>>()
  readonly #served = new Set<Stream>()
  /** Bytes of unfinished frames held by every stream, and by each connection's. */
  readonly #buffered: BytePool
  readonly #bufferedByConnection = new WeakMap<Connection, BytePool>()
  readonly #requestsByConnection = new WeakMap<Connection, RequestCounter>()
  readonly #maxRequestsPerConnection: number
  readonly #maxBufferedPerConnection: number
  readonly #frameTimeout: number
  #handler: DlhtRequestHandler | undefined
  #started = false

  constructor(components: DlhtServiceComponents, init: DlhtServiceInit = {}) {
    this.#components = components
    this.maxFrameSize = init.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE
    this.callTimeout = init.callTimeout ?? 5000
    this.#buffered = new BytePool(init.maxBufferedPerNode ?? 16 * this.maxFrameSize)
    this.#maxBufferedPerConnection = init.maxBufferedPerConnection ?? 3 * this.maxFrameSize
    this.#frameTimeout = init.frameTimeout ?? 4 * this.callTimeout
    this.#maxRequestsPerConnection = init.maxRequestsPerConnection ?? 4096
  }

  /** Bytes of unfinished frames held now, over every connection. */
  get bufferedFrameBytes(): number {
    return this.#buffered.used
  }

  /** Requests being served for `connection`, over all its streams. */
  #requestCounter(connection: Connection): RequestCounter {
    let counter = this.#requestsByConnection.get(connection)
    if (counter === undefined) {
      counter = new RequestCounter(this.#maxRequestsPerConnection)
      this.#requestsByConnection.set(connection, counter)
    }
    return counter
  }

  /** Options of a stream of `connection`: its frame account and limits. */
  #streamOptions(connection: Connection) {
    let pool = this.#bufferedByConnection.get(connection)
    if (pool === undefined) {
      pool = new BytePool(this.#maxBufferedPerConnection)
      this.#bufferedByConnection.set(connection, pool)
    }
    return {
      maxFrameSize: this.maxFrameSize,
      account: new FrameAccount([pool, this.#buffered]),
      frameTimeout: this.#frameTimeout,
    }
  }

  get peerId(): string {
    return this.#components.peerId.toString()
  }

  /** Where this peer listens, each address ending in /p2p/<peer id>. */
  multiaddrs(): string[] {
    return this.#components.addressManager.getAddresses().map((address) => address.toString())
  }

  /** Attaches (or detaches, with undefined) what serves incoming requests. */
  setHandler(handler: DlhtRequestHandler | undefined): void {
    this.#handler = handler
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    for (const protocol of [RING_PROTOCOL, DATA_PROTOCOL]) {
      await this.#components.registrar.handle(
        protocol,
        (stream, connection) => this.#serve(protocol, stream, connection),
        {
          maxInboundStreams: STREAMS_PER_CONNECTION,
          maxOutboundStreams: STREAMS_PER_CONNECTION,
        },
      )
    }
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    for (const protocol of [RING_PROTOCOL, DATA_PROTOCOL]) await this.#components.registrar.unhandle(protocol)
    const clients = [...this.#clients.values()]
    this.#clients.clear()
    this.#open.clear()
    for (const client of await Promise.allSettled(clients))
      if (client.status === 'fulfilled') client.value.close()
    for (const stream of this.#served) stream.abort(new PeerUnavailableError('the dlht service stopped'))
    this.#served.clear()
  }

  /**
   * Calls `codec` on `peer` over the long-lived stream of `protocol`, opening it when needed.
   * Bounded by `callTimeout` and by `options.signal`.
   * @throws RemoteCallTimeoutError, PeerUnavailableError, a protocol error, or the remote's typed error
   */
  call<Request, Answer>(
    peer: PeerAddress,
    protocol: string,
    codec: MessageCodec<Request, Answer>,
    request: Request,
    options: CallOptions = {},
  ): Promise<Answer> {
    const open = this.#open.get(protocol)?.get(peer.peerId)
    if (open?.isOpen) return this.#callOn(open, this.callTimeout, codec, request, options)
    return this.#connectAndCall(peer, protocol, codec, request, options)
  }

  async #connectAndCall<Request, Answer>(
    peer: PeerAddress,
    protocol: string,
    codec: MessageCodec<Request, Answer>,
    request: Request,
    options: CallOptions,
  ): Promise<Answer> {
    const started = performance.now()
    const client = await this.#connected(peer, protocol, options)
    return this.#callOn(client, this.callTimeout - (performance.now() - started), codec, request, options)
  }

  /** One call on an open client, its answer read with `codec`. */
  #callOn<Request, Answer>(
    client: RpcClient,
    timeout: number,
    codec: MessageCodec<Request, Answer>,
    request: Request,
    options: CallOptions,
  ): Promise<Answer> {
    let body: unknown
    try {
      body = codec.writeRequest(request)
    } catch (err) {
      return Promise.reject(err)
    }
    const hashSpaceSize = options.hashSpaceSize ?? RING_SIZE
    return client
      .call(codec.type, body, { signal: options.signal, timeout })
      .then((answer) => codec.readAnswer(answer, hashSpaceSize))
  }

  /** The open client of `peer` and `protocol`, opening a stream within the call's deadline when needed. */
  async #connected(peer: PeerAddress, protocol: string, options: CallOptions): Promise<RpcClient> {
    const timeout = AbortSignal.timeout(this.callTimeout)
    const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal])
    try {
      return await raceSignal(this.#client(peer, protocol), signal)
    } catch (err) {
      throw timeoutOrUnavailable(err, `connecting to ${peer.peerId}`)
    }
  }

  /**
   * Dials an address that may lack a peer id ("host:port" bootstraps) and returns the peer id
   * the connection authenticated (noise proves it).
   */
  async connect(address: Multiaddr, options: { signal?: AbortSignal } = {}): Promise<PeerAddress> {
    const timeout = AbortSignal.timeout(this.callTimeout)
    const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal])
    try {
      const connection = await this.#components.connectionManager.openConnection(address, { signal })
      const peerId = connection.remotePeer.toString()
      return { peerId, multiaddrs: [address.encapsulate(`/p2p/${peerId}`).toString()] }
    } catch (err) {
      throw timeoutOrUnavailable(err, `dialling ${address.toString()}`)
    }
  }

  #client(peer: PeerAddress, protocol: string): Promise<RpcClient> {
    const key = `${peer.peerId} ${protocol}`
    const known = this.#clients.get(key)
    if (known !== undefined) {
      return known.then((client) => {
        if (client.isOpen) return client
        if (this.#clients.get(key) === known) this.#clients.delete(key)
        return this.#client(peer, protocol)
      })
    }
    const opening = this.#openStream(peer, protocol)
    this.#clients.set(key, opening)
    opening.then(
      (client) => {
        if (this.#clients.get(key) !== opening) return
        let open = this.#open.get(protocol)
        if (open === undefined) {
          open = new Map()
          this.#open.set(protocol, open)
        }
        open.set(peer.peerId, client)
        client.stream.addEventListener('close', () => {
          if (open.get(peer.peerId) === client) open.delete(peer.peerId)
          if (this.#clients.get(key) === opening) this.#clients.delete(key)
        })
      },
      () => {
        if (this.#clients.get(key) === opening) this.#clients.delete(key)
      },
    )
    return opening
  }

  async #openStream(peer: PeerAddress, protocol: string): Promise<RpcClient> {
    if (!this.#started) throw new PeerUnavailableError('the dlht service is stopped')
    const signal = AbortSignal.timeout(this.callTimeout)
    const peerId = peerIdFromString(peer.peerId)
    try {
      const connection =
        this.#components.connectionManager.getConnections(peerId).find((open) => open.status === 'open') ??
        (await this.#components.connectionManager.openConnection(
          peer.multiaddrs.length > 0 ? peer.multiaddrs.map((address) => multiaddr(address)) : peerId,
          { signal },
        ))
      const stream = await connection.newStream(protocol, { signal })
      lazyWindowUpdates(stream)
      return new RpcClient(stream, this.#streamOptions(connection))
    } catch (err) {
      throw timeoutOrUnavailable(err, `opening ${protocol} to ${peer.peerId}`)
    }
  }

  async #serve(protocol: string, stream: Stream, connection: Connection): Promise<void> {
    this.#served.add(stream)
    lazyWindowUpdates(stream)
    const remotePeer = connection.remotePeer.toString()
    /** The same for every request of the stream: made once. */
    let handlerOptions: { signal: AbortSignal; remotePeer: string } | undefined
    try {
      await serveRpc(
        stream,
        (type, body, { signal }) => {
          if (this.#handler === undefined) throw new NodeNotReadyError()
          handlerOptions ??= { signal, remotePeer }
          return this.#handler(protocol, type, body, handlerOptions)
        },
        {
          ...this.#streamOptions(connection),
          connectionRequests: this.#requestCounter(connection),
          serves: (type) => SERVED[protocol].has(type),
        },
      )
    } finally {
      this.#served.delete(stream)
    }
  }
}

/**
 * The protocol layer alone, as a libp2p service: it serves and calls the dlht protocols for a Chord
 * router that attaches to it (`createDlhtLibp2p` builds it so). To run a dlht node on your own libp2p
 * node, use `dlht(config)` instead, which brings its router and store.
 */
export function dlhtService(init: DlhtServiceInit = {}): (components: DlhtServiceComponents) => DlhtService {
  return (components) => new DlhtService(components, init)
}
