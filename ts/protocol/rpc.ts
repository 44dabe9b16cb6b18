// Request/response over one long-lived stream: ids pair answers with calls, so many calls share the
// stream (pipelining), and all envelopes queued by one run of JavaScript travel in one frame (batching).

import type { MessageStream } from '@libp2p/interface'
import { decodeFrame, type Envelope, EnvelopeKind, encodeEnvelope } from './codec.js'
import {
  errorFromWire,
  errorToWire,
  FrameTooLargeError,
  MalformedMessageError,
  PeerBusyError,
  PeerUnavailableError,
  ProtocolError,
  RemoteCallTimeoutError,
  UnknownMessageError,
} from './errors.js'
import { type FrameAccount, SlowFrameError } from './frame-budget.js'

/** Id of a failure that concerns the whole stream (no call has it: call ids stay below 2^31). */
const STREAM_FAILURE_ID = 0xffffffff

/** Default largest frame, in bytes of payload (4 MiB). */
export const DEFAULT_MAX_FRAME_SIZE = 4 * 1024 * 1024

/** Bytes of the longest frame length prefix accepted (an unsigned varint: up to 2^35 - 1). */
const MAX_LENGTH_BYTES = 5

/** Microtask rounds a flush waits while the running code keeps queueing work. */
const COALESCE_ROUNDS = 4

/** Where coalescing rounds are chained: a resolved promise's reactions are plain microtasks. */
const SETTLED = Promise.resolve()

/**
 * Runs `flush` once the running code stops queueing: after the microtask rounds in which `queued()`
 * still grew (at most a few), never on a timer, so callers resumed together share one batch.
 * `schedule` again only after `flush` ran. Rounds are chained on a resolved promise with one
 * callback made once: `queueMicrotask` would create an AsyncResource and a closure every round.
 */
export class AfterQueueing {
  readonly #queued: () => number
  readonly #flush: () => void
  #seen = -1
  #rounds = 0

  constructor(queued: () => number, flush: () => void) {
    this.#queued = queued
    this.#flush = flush
  }

  schedule(): void {
    this.#seen = -1
    this.#rounds = 0
    SETTLED.then(this.#settle)
  }

  /** One microtask round: one more while `queued()` grew since the last round. */
  readonly #settle = (): void => {
    const count = this.#queued()
    if (count > this.#seen && this.#rounds < COALESCE_ROUNDS) {
      this.#seen = count
      this.#rounds++
      SETTLED.then(this.#settle)
    } else this.#flush()
  }
}

export interface RpcStreamOptions {
  /** Largest frame accepted or sent, in bytes. Default 4 MiB. */
  maxFrameSize?: number
  /** Where bytes of unfinished frames are counted; past its limits the stream is reset. Default: none. */
  account?: FrameAccount
  /** Milliseconds a frame may take to arrive once begun; a slower one resets the stream. Default: none. */
  frameTimeout?: number
}

/** What a stream's 'message' event carries: bytes, or a list of byte chunks. */
type Chunk = Uint8Array | { subarray(): Uint8Array }

/**
 * Cuts a stream's chunks into frames (an unsigned varint length, then that many bytes), all the
 * frames of a chunk in one synchronous loop. Bytes of an unfinished frame wait, joined only once
 * the frame is complete.
 */
export class FrameReader {
  readonly #maxFrameSize: number
  #chunks: Uint8Array[] = []
  #buffered = 0
  /** Bytes needed before the next frame can be cut (header included); 0 when not yet known. */
  #needed = 0
  /** Length of the frame `#frameEnd` found last. */
  #frameLength = 0

  constructor(maxFrameSize: number) {
    this.#maxFrameSize = maxFrameSize
  }

  /** Bytes of an unfinished frame waiting for the rest. */
  get buffered(): number {
    return this.#buffered
  }

  /** Drops what is buffered (the stream ended). */
  clear(): void {
    this.#chunks = []
    this.#buffered = 0
  }

  /**
   * Adds a chunk and passes every frame it completes to `onFrame`, in order.
   * @throws FrameTooLargeError or MalformedMessageError for a bad length prefix
   */
  push(chunk: Chunk, onFrame: (frame: Uint8Array) => void): void {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
    if (bytes.byteLength === 0) return
    this.#chunks.push(bytes)
    this.#buffered += bytes.byteLength
    if (this.#buffered < this.#needed) return
    const data = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#buffered)
    let offset = 0
    for (;;) {
      const frameEnd = this.#frameEnd(data, offset)
      if (frameEnd < 0) {
        this.#needed = -frameEnd - offset
        break
      }
      const start = frameEnd - this.#frameLength
      offset = frameEnd
      onFrame(data.subarray(start, frameEnd))
    }
    // A rest after whole frames is copied: a view would keep the frames' bytes alive as well.
    this.#chunks = offset === data.byteLength ? [] : [offset === 0 ? data : data.slice(offset)]
    this.#buffered = data.byteLength - offset
  }

  /** End of the frame starting at `offset`, or minus the bytes needed to know it when incomplete. */
  #frameEnd(data: Uint8Array, offset: number): number {
    let length = 0
    let position = offset
    for (let shift = 0; ; shift += 7) {
      if (position === data.byteLength) return -(position + 1)
      if (position - offset === MAX_LENGTH_BYTES)
        throw new MalformedMessageError('received a malformed frame length')
      const byte = data[position++]
      length += (byte & 0x7f) * 2 ** shift
      if (byte < 0x80) break
    }
    if (length > this.#maxFrameSize) {
      throw new FrameTooLargeError(`received a frame larger than the maximum of ${this.#maxFrameSize} bytes`)
    }
    this.#frameLength = length
    const end = position + length
    return end <= data.byteLength ? end : -end
  }
}

/** Bytes of `length` as an unsigned varint. */
function varintSize(length: number): number {
  let size = 1
  while (length >= 0x80) {
    length = Math.floor(length / 128)
    size++
  }
  return size
}

/**
 * Queues encoded envelopes and writes them as frames once the running code is done queueing (a few
 * microtask rounds, never a timer), so everything queued by one turn shares a frame; each frame
 * whole, length prefix and envelopes in one buffer (one `send`, so never a partial frame), waiting
 * for the stream to drain when it is full.
 */
class FrameWriter {
  readonly #stream: MessageStream
  readonly #maxFrameSize: number
  #queue: Uint8Array[] = []
  readonly #coalescing = new AfterQueueing(
    () => this.#queue.length,
    () => this.#startFlush(),
  )
  #scheduled = false
  /** True while a flush is handing frames to the stream (or waiting for it to drain). */
  #sending = false
  #flushing: Promise<void> = Promise.resolve()
  #closed = false

  constructor(stream: MessageStream, maxFrameSize: number) {
    this.#stream = stream
    this.#maxFrameSize = maxFrameSize
  }

  /**
   * Queues one encoded envelope.
   * @throws FrameTooLargeError when the envelope alone exceeds the maximum frame size
   */
  write(envelope: Uint8Array): void {
    if (envelope.byteLength > this.#maxFrameSize) {
      throw new FrameTooLargeError(
        `message of ${envelope.byteLength} bytes exceeds the maximum frame size of ${this.#maxFrameSize}`,
      )
    }
    if (this.#closed) return
    this.#queue.push(envelope)
    if (this.#scheduled || this.#sending) return
    this.#scheduled = true
    this.#coalescing.schedule()
  }

  /** Hands the queued frames to the stream, synchronously unless the stream is full. */
  #startFlush(): void {
    this.#scheduled = false
    this.#sending = true
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        if (!this.#stream.send(this.#takeFrame())) {
          this.#flushing = this.#flushAfterDrain()
          return
        }
      }
    } catch {
      this.close()
    }
    this.#sending = false
  }

  async #flushAfterDrain(): Promise<void> {
    try {
      await this.#stream.onDrain()
      while (this.#queue.length > 0 && !this.#closed) {
        if (!this.#stream.send(this.#takeFrame())) await this.#stream.onDrain()
      }
    } catch {
      this.close()
    } finally {
      this.#sending = false
    }
  }

  /** Resolves once every envelope queued so far was handed to the stream (or dropped on close). */
  async drained(): Promise<void> {
    while (this.#scheduled || this.#sending) await (this.#sending ? this.#flushing : Promise.resolve())
  }

  close(): void {
    this.#closed = true
    this.#queue = []
  }

  /** Length prefix and as many queued envelopes as fit, in one buffer. */
  #takeFrame(): Uint8Array {
    let bytes = 0
    let count = 0
    while (count < this.#queue.length && bytes + this.#queue[count].byteLength <= this.#maxFrameSize) {
      bytes += this.#queue[count].byteLength
      count++
    }
    const header = varintSize(bytes)
    const frame = Buffer.allocUnsafe(header + bytes)
    let length = bytes
    for (let i = 0; i < header - 1; i++) {
      frame[i] = (length & 0x7f) | 0x80
      length = Math.floor(length / 128)
    }
    frame[header - 1] = length
    let offset = header
    for (let i = 0; i < count; i++) {
      frame.set(this.#queue[i], offset)
      offset += this.#queue[i].byteLength
    }
    this.#queue = count === this.#queue.length ? [] : this.#queue.slice(count)
    return frame
  }
}

/** Maps what can go wrong while reading a stream onto the protocol's typed errors. */
function asStreamError(err: unknown): Error {
  if (err instanceof ProtocolError) return err
  return new PeerUnavailableError('the stream to the peer broke', { cause: err })
}

function asAbortError(reason: unknown): unknown {
  if (reason instanceof DOMException && reason.name === 'TimeoutError') {
    return new RemoteCallTimeoutError('the remote call timed out', { cause: reason })
  }
  return reason
}

/**
 * Reads a stream's frames as they arrive, without an async iterator: `onEnvelope` runs synchronously.
 * Bytes of an unfinished frame are held in `options.account` and must arrive within
 * `options.frameTimeout`; once the stream ends or fails nothing more is read and they are released.
 */
function readStream(
  stream: MessageStream,
  options: RpcStreamOptions,
  handlers: { onEnvelope(envelope: Envelope): void; onEnd(err?: Error): void },
): void {
  const { account, frameTimeout } = options
  const reader = new FrameReader(options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE)
  let failed = false
  let slowFrame: ReturnType<typeof setTimeout> | undefined
  const stopReading = () => {
    failed = true
    reader.clear()
    account?.release()
    if (slowFrame !== undefined) clearTimeout(slowFrame)
  }
  /** Frames read so far: a frame that completes restarts the clock of the next. */
  let frames = 0
  const onFrame = (frame: Uint8Array) => {
    frames++
    for (const envelope of decodeFrame(frame)) handlers.onEnvelope(envelope)
  }
  const onSlowFrame = () => {
    stopReading()
    handlers.onEnd(new SlowFrameError(`a frame did not arrive whole within ${frameTimeout} ms`))
  }
  stream.addEventListener('message', (event) => {
    if (failed) return
    const framesBefore = frames
    try {
      reader.push(event.data, onFrame)
      account?.hold(reader.buffered)
    } catch (err) {
      stopReading()
      handlers.onEnd(asStreamError(err))
      return
    }
    if (frameTimeout === undefined || (slowFrame !== undefined && frames === framesBefore)) return
    if (slowFrame !== undefined) clearTimeout(slowFrame)
    slowFrame = undefined
    if (reader.buffered > 0) {
      slowFrame = setTimeout(onSlowFrame, frameTimeout)
      slowFrame.unref()
    }
  })
  stream.addEventListener('remoteCloseWrite', () => handlers.onEnd(), { once: true })
  stream.addEventListener(
    'close',
    (event) => {
      stopReading()
      handlers.onEnd(event.error === undefined ? undefined : asStreamError(event.error))
    },
    { once: true },
  )
}

interface PendingCall {
  resolve(body: unknown): void
  reject(err: unknown): void
  /** `performance.now()` after which the call fails with RemoteCallTimeoutError. */
  deadline: number
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
}

export interface CallOptions {
  /** Cancels the call; a TimeoutError reason (AbortSignal.timeout) fails it with RemoteCallTimeoutError. */
  signal?: AbortSignal
  /** Milliseconds after which the call fails with RemoteCallTimeoutError. Default: no deadline. */
  timeout?: number
}

/**
 * The calling end of a stream. `call` may be used concurrently; answers are matched by id. When
 * the stream fails every waiting call is rejected with a typed error and the client is closed.
 * Deadlines share one timer per client instead of one per call.
 */
export class RpcClient {
  readonly stream: MessageStream
  readonly #writer: FrameWriter
  readonly #pending = new Map<number, PendingCall>()
  #nextId = 0
  #failure: Error | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  #timerAt = Number.POSITIVE_INFINITY

  constructor(stream: MessageStream, options: RpcStreamOptions = {}) {
    this.stream = stream
    const maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE
    this.#writer = new FrameWriter(stream, maxFrameSize)
    readStream(stream, options, {
      onEnvelope: (envelope) => this.#answered(envelope),
      onEnd: (err) => this.#fail(err ?? new PeerUnavailableError('the peer closed the stream')),
    })
  }

  /** False once the stream failed or closed; a new stream is needed. */
  get isOpen(): boolean {
    return this.#failure === undefined
  }

  /** Number of calls waiting for an answer. */
  get pendingCalls(): number {
    return this.#pending.size
  }

  /**
   * Sends one request and resolves with the answer's body.
   * @throws FrameTooLargeError (nothing sent), RemoteCallTimeoutError at the deadline or when
   * `signal` times out, PeerUnavailableError when the stream fails, or the typed error the remote
   * handler reported
   */
  call(type: number, body: unknown, options: CallOptions = {}): Promise<unknown> {
    const { signal, timeout } = options
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    if (signal?.aborted) return Promise.reject(asAbortError(signal.reason))
    const id = this.#nextId
    this.#nextId = (this.#nextId + 1) % 0x7fffffff
    try {
      this.#writer.write(encodeEnvelope({ kind: EnvelopeKind.Request, id, type, body }))
    } catch (err) {
      return Promise.reject(
        err instanceof ProtocolError
          ? err
          : new MalformedMessageError('cannot encode the request', { cause: err }),
      )
    }
    return new Promise((resolve, reject) => {
      const pending: PendingCall = {
        resolve,
        reject,
        deadline: timeout === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeout,
        signal,
        onAbort: undefined,
      }
      if (signal !== undefined) {
        pending.onAbort = () => {
          this.#pending.delete(id)
          reject(asAbortError(signal.reason))
        }
        signal.addEventListener('abort', pending.onAbort, { once: true })
      }
      this.#pending.set(id, pending)
      if (pending.deadline < this.#timerAt) this.#armTimer(pending.deadline)
    })
  }

  /** Closes the stream; waiting calls fail with PeerUnavailableError. */
  close(): void {
    this.#fail(new PeerUnavailableError('the client was closed'))
  }

  #answered(envelope: Envelope): void {
    if (this.#failure !== undefined) return
    if (envelope.kind === EnvelopeKind.Request) {
      throw new MalformedMessageError('received a request on the calling end of a stream')
    }
    if (envelope.kind === EnvelopeKind.Failure && envelope.id === STREAM_FAILURE_ID) {
      throw errorFromWire(envelope.code, envelope.message)
    }
    const pending = this.#pending.get(envelope.id)
    if (pending === undefined) return
    this.#pending.delete(envelope.id)
    if (pending.onAbort !== undefined) pending.signal?.removeEventListener('abort', pending.onAbort)
    if (envelope.kind === EnvelopeKind.Response) pending.resolve(envelope.body)
    else pending.reject(errorFromWire(envelope.code, envelope.message))
  }

  #armTimer(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timerAt = at
    this.#timer = setTimeout(this.#expire, Math.max(0, at - performance.now()))
    this.#timer.unref()
  }

  /** Fails the calls past their deadline and re-arms the timer for the earliest one left. */
  readonly #expire = (): void => {
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
    const now = performance.now()
    let next = Number.POSITIVE_INFINITY
    for (const [id, pending] of this.#pending) {
      if (pending.deadline <= now) {
        this.#pending.delete(id)
        if (pending.onAbort !== undefined) pending.signal?.removeEventListener('abort', pending.onAbort)
        pending.reject(new RemoteCallTimeoutError('the remote call timed out'))
      } else if (pending.deadline < next) next = pending.deadline
    }
    if (next !== Number.POSITIVE_INFINITY) this.#armTimer(next)
  }

  #fail(err: Error): void {
    if (this.#failure !== undefined) return
    this.#failure = err
    this.#writer.close()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    for (const pending of this.#pending.values()) {
      if (pending.onAbort !== undefined) pending.signal?.removeEventListener('abort', pending.onAbort)
      pending.reject(err)
    }
    this.#pending.clear()
    this.stream.abort(err)
  }
}

/** Serves one request: returns the answer's body (or a promise of it), or throws a typed error. */
export type RpcHandler = (type: number, body: unknown, options: { signal: AbortSignal }) => unknown

export interface ServeOptions extends RpcStreamOptions {
  /** Whether `type` is a message this stream serves; others are answered UnknownMessageError. */
  serves(type: number): boolean
  /** Requests handled at once on this stream before reading pauses. Default 512. */
  maxInFlight?: number
  /** Requests in flight on all streams of the connection; past its limit requests are answered PeerBusyError. */
  connectionRequests?: RequestCounter
}

/** Requests being served on the streams of one connection, with a limit. */
export class RequestCounter {
  readonly limit: number
  count = 0

  constructor(limit: number) {
    this.limit = limit
  }
}

/** A protocol violation after which the serving end answers what it can and closes the stream. */
function isFatal(err: unknown): boolean {
  return err instanceof MalformedMessageError || err instanceof UnknownMessageError
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function'
}

/**
 * The answering end of a stream: handles requests concurrently and writes each answer as soon as
 * it is ready. Malformed, oversized or unknown messages close the stream (after answering the
 * offending request when its id is known); the process is never at risk. Resolves when done.
 */
export function serveRpc(stream: MessageStream, handler: RpcHandler, options: ServeOptions): Promise<void> {
  const maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE
  const maxInFlight = options.maxInFlight ?? 512
  const writer = new FrameWriter(stream, maxFrameSize)
  const closing = new AbortController()
  const handlerOptions = { signal: closing.signal }
  let inFlight = 0
  let paused = false
  let inputEnded = false
  let finished: () => void = () => {}
  const done = new Promise<void>((resolve) => {
    finished = resolve
  })

  /** Stops serving: answers already queued are written, then the stream is closed. */
  const close = (reason: Error) => {
    if (closing.signal.aborted) return
    closing.abort(reason)
    writer
      .drained()
      .then(() => stream.close({ signal: AbortSignal.timeout(1000) }))
      .catch((err) => stream.abort(err))
      .finally(finished)
  }

  /** Ends the stream after a protocol violation or a broken stream, telling the caller why when it can. */
  const fail = (err: Error) => {
    if (closing.signal.aborted) {
      if (!(err instanceof ProtocolError)) finished()
      return
    }
    closing.abort(err)
    const abort = () => {
      writer.close()
      stream.abort(err)
      finished()
    }
    if (!(err instanceof ProtocolError)) return abort()
    // Tell the caller why its stream is closing, in place of an answer it cannot be matched to.
    const [code, message] = errorToWire(err)
    writer.write(encodeEnvelope({ kind: EnvelopeKind.Failure, id: STREAM_FAILURE_ID, code, message }))
    Promise.race([writer.drained(), new Promise((resolve) => setTimeout(resolve, 1000))]).then(abort)
  }

  const answer = (id: number, outcome: { body: unknown } | { error: unknown }) => {
    if ('body' in outcome) {
      try {
        writer.write(encodeEnvelope({ kind: EnvelopeKind.Response, id, body: outcome.body }))
        return
      } catch (err) {
        outcome = { error: err }
      }
    }
    const [code, message] = errorToWire(outcome.error)
    writer.write(encodeEnvelope({ kind: EnvelopeKind.Failure, id, code, message }))
    if (isFatal(outcome.error)) close(outcome.error as Error)
  }

  const connectionRequests = options.connectionRequests
  const settle = (id: number, outcome: { body: unknown } | { error: unknown }) => {
    inFlight--
    if (connectionRequests !== undefined) connectionRequests.count--
    answer(id, outcome)
    if (paused && inFlight < maxInFlight && !closing.signal.aborted) {
      paused = false
      try {
        stream.resume()
      } catch (err) {
        fail(asStreamError(err))
      }
    }
    if (inputEnded && inFlight === 0) close(new PeerUnavailableError('the peer closed the stream'))
  }

  const handle = (id: number, type: number, body: unknown) => {
    if (connectionRequests !== undefined) {
      if (connectionRequests.count >= connectionRequests.limit) {
        const busy = `the connection has ${connectionRequests.count} requests in flight already`
        answer(id, { error: new PeerBusyError(busy) })
        return
      }
      connectionRequests.count++
    }
    inFlight++
    let result: unknown
    try {
      result = handler(type, body, handlerOptions)
    } catch (err) {
      settle(id, { error: err })
      return
    }
    if (isThenable(result)) {
      result.then(
        (answered) => settle(id, { body: answered }),
        (err: unknown) => settle(id, { error: err }),
      )
    } else settle(id, { body: result })
  }

  readStream(stream, options, {
    onEnvelope: (envelope) => {
      if (closing.signal.aborted) return
      if (envelope.kind !== EnvelopeKind.Request) {
        throw new MalformedMessageError('received an answer on the serving end of a stream')
      }
      if (!options.serves(envelope.type)) {
        answer(envelope.id, { error: new UnknownMessageError(`unknown message type ${envelope.type}`) })
        return
      }
      handle(envelope.id, envelope.type, envelope.body)
      if (inFlight >= maxInFlight && !paused) {
        paused = true
        stream.pause()
      }
    },
    onEnd: (err) => {
      if (err !== undefined) return fail(err)
      inputEnded = true
      if (inFlight === 0) close(new PeerUnavailableError('the peer closed the stream'))
    },
  })
  return done
}
