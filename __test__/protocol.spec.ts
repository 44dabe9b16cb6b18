// The dlht wire protocol against live libp2p nodes on loopback: framing, pipelining, and every way
// a call can go wrong (oversized, malformed, unknown, slow, dead) ending in a typed error.

import type { Stream } from '@libp2p/interface'
import test from 'ava'
import * as lp from 'it-length-prefixed'
import { Packr } from 'msgpackr'
import { DlhtError } from '../ts/errors.js'
import { bootstrapAddress, createDlhtLibp2p, type DlhtLibp2p } from '../ts/overlay/libp2p.js'
import { decodeFrame, EnvelopeKind, encodeEnvelope } from '../ts/protocol/codec.js'
import {
  FrameTooLargeError,
  MalformedMessageError,
  PeerUnavailableError,
  RemoteCallTimeoutError,
  UnknownMessageError,
} from '../ts/protocol/errors.js'
import {
  DATA_PROTOCOL,
  type MessageCodec,
  Ping,
  Put,
  RING_PROTOCOL,
  Scan,
  Step,
} from '../ts/protocol/messages.js'

const SIZE = 2n ** 62n

/** Answers Ping, echoes Put as `misrouted = number of records`, and never answers Step. */
function serveTestMessages(node: DlhtLibp2p): void {
  node.services.dlht.setHandler((_protocol, type, body) => {
    if (type === Ping.type) return null
    if (type === Put.type) return Put.writeAnswer({ misrouted: Put.readRequest(body, SIZE).records.length })
    if (type === Step.type) return new Promise(() => {})
    throw new UnknownMessageError(`type ${type}`)
  })
}

async function pair(
  t: { teardown(fn: () => Promise<void>): void },
  options: { maxFrameSizeA?: number; callTimeout?: number } = {},
) {
  const a = await createDlhtLibp2p({ maxFrameSize: options.maxFrameSizeA })
  // A generous deadline by default: these tests run beside the cluster tests' processes on 2 cores.
  const b = await createDlhtLibp2p({ callTimeout: options.callTimeout ?? 5000 })
  t.teardown(async () => {
    await b.stop()
    await a.stop()
  })
  serveTestMessages(a)
  const peerA = { peerId: a.peerId.toString(), multiaddrs: a.getMultiaddrs().map(String) }
  return { a, b, peerA }
}

const record = (i: number, bytes = 8) => ({
  position: BigInt(i) * 1000n,
  key: `key-${i}`,
  value: new Uint8Array(bytes).fill(i % 256),
})

/** Reads everything the remote sends until the stream ends; decoded envelopes. */
async function readAll(stream: Stream) {
  const envelopes = []
  try {
    for await (const frame of lp.decode(stream)) envelopes.push(...decodeFrame(frame.subarray()))
  } catch {
    // A reset ends the stream too.
  }
  return envelopes
}

test('envelopes and message bodies round-trip, several envelopes to a frame', (t) => {
  const put = Put.writeRequest({ modelVersion: 3, ttl: 2, records: [record(1), { ...record(2), key: 7n }] })
  const scan = Scan.writeRequest({
    modelVersion: 3,
    ttl: 0,
    hashMin: 5n,
    hashMax: SIZE - 1n,
    filter: { keyRange: { min: 'a', max: 'b' }, box: { min: [0, 1], max: [2, 3] } },
    maxBytes: 100,
  })
  const frame = Buffer.concat([
    encodeEnvelope({ kind: EnvelopeKind.Request, id: 1, type: Put.type, body: put }),
    encodeEnvelope({ kind: EnvelopeKind.Request, id: 2, type: Scan.type, body: scan }),
    encodeEnvelope({ kind: EnvelopeKind.Failure, id: 3, code: 'ERR_X', message: 'no' }),
  ])
  const [first, second, third] = decodeFrame(frame)
  t.like(first, { kind: EnvelopeKind.Request, id: 1, type: Put.type })
  const decodedPut = Put.readRequest((first as { body: unknown }).body, SIZE)
  t.deepEqual(
    decodedPut.records.map((r) => r.key),
    ['key-1', 7n],
  )
  t.deepEqual([...decodedPut.records[0].value], [...record(1).value])
  t.deepEqual(Scan.readRequest((second as { body: unknown }).body, SIZE).filter, {
    keyRange: { min: 'a', max: 'b' },
    box: { min: [0, 1], max: [2, 3] },
  })
  t.like(third, { kind: EnvelopeKind.Failure, code: 'ERR_X' })
})

test("envelopes are msgpack byte for byte as msgpackr writes them, whatever the value's edge", (t) => {
  const packr = new Packr({ useRecords: false, int64AsType: 'bigint', moreTypes: false, mapsAsObjects: true })
  const edges = [
    [0, -0, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, -32, -33, -128, -129, -32_768],
    [-32_769, -(2 ** 31), -(2 ** 31) - 1, 1.5, Number.NaN, -Infinity, 2 ** 53],
    [0n, -1n, SIZE - 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, -(2n ** 63n)],
    ['', 'x'.repeat(31), 'x'.repeat(32), 'é'.repeat(200), '日本'.repeat(20_000)],
    [new Uint8Array(0), new Uint8Array(16).fill(7), new Uint8Array(300), Buffer.alloc(70_000, 1)],
    [null, true, false, undefined, { a: [1n] }, Array.from({ length: 70_000 }, (_, i) => i)],
  ]
  const written = edges.map((body, id) => encodeEnvelope({ kind: EnvelopeKind.Response, id, body }))
  for (const [id, bytes] of written.entries()) {
    t.deepEqual(Buffer.from(bytes), packr.pack([EnvelopeKind.Response, id, edges[id]]))
  }
  t.throws(() => encodeEnvelope({ kind: EnvelopeKind.Response, id: 9, body: 2n ** 64n }))
  t.deepEqual(decodeFrame(Buffer.concat(written)).length, edges.length)
})

test('bodies of the wrong shape are rejected before use', (t) => {
  const packr = new Packr({ useRecords: false })
  t.throws(() => decodeFrame(Uint8Array.of(0xc1)), { instanceOf: MalformedMessageError })
  t.throws(() => decodeFrame(packr.pack([0, -1, 3, null])), { instanceOf: MalformedMessageError })
  t.throws(() => decodeFrame(packr.pack({ kind: 0 })), { instanceOf: MalformedMessageError })
  t.throws(() => Put.readRequest([1, 1, [[5, new Uint8Array([3]), 'not bytes']]], SIZE), {
    instanceOf: MalformedMessageError,
  })
  t.throws(
    () => Step.readRequest([1n, SIZE, []], SIZE),
    { instanceOf: MalformedMessageError },
    'off the ring',
  )
  t.throws(() => Put.readRequest([1, 1, [[5n, new Uint8Array([99]), new Uint8Array()]]], SIZE), {
    instanceOf: MalformedMessageError,
  })
})

test('many calls share one long-lived stream, pipelined', async (t) => {
  const { a, b, peerA } = await pair(t)
  const answers = await Promise.all(
    Array.from({ length: 2000 }, (_, i) =>
      b.services.dlht.call(peerA, DATA_PROTOCOL, Put, { modelVersion: 0, ttl: 0, records: [record(i)] }),
    ),
  )
  t.true(answers.every((answer) => answer.misrouted === 1))
  const streams = b.getConnections(a.peerId).flatMap((connection) => connection.streams)
  t.is(streams.filter((stream) => stream.protocol === DATA_PROTOCOL).length, 1)
})

test('frames are read whatever the chunking: several in one chunk, one split byte by byte', async (t) => {
  const { a, b } = await pair(t)
  const stream = await b.dialProtocol(a.getMultiaddrs(), RING_PROTOCOL)
  const ping = (id: number) =>
    lp.encode
      .single(encodeEnvelope({ kind: EnvelopeKind.Request, id, type: Ping.type, body: null }))
      .subarray()
  stream.send(Buffer.concat([ping(1), ping(2)]))
  for (const byte of ping(3)) {
    stream.send(Uint8Array.of(byte))
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  const ids: number[] = []
  for await (const frame of lp.decode(stream)) {
    for (const envelope of decodeFrame(frame.subarray())) {
      t.is(envelope.kind, EnvelopeKind.Response)
      ids.push(envelope.id)
    }
    if (ids.length === 3) break
  }
  t.deepEqual(ids, [1, 2, 3])
})

test('a request larger than the maximum frame fails locally and nothing is written', async (t) => {
  const { b, peerA } = await pair(t)
  const huge = { modelVersion: 0, ttl: 0, records: [record(1, 5 * 1024 * 1024)] }
  await t.throwsAsync(b.services.dlht.call(peerA, DATA_PROTOCOL, Put, huge), {
    instanceOf: FrameTooLargeError,
  })
  const after = await b.services.dlht.call(peerA, DATA_PROTOCOL, Put, {
    modelVersion: 0,
    ttl: 0,
    records: [],
  })
  t.is(after.misrouted, 0, 'the stream still works')
})

test('a frame above the receiver limit: typed error for the caller, stream closed, node fine', async (t) => {
  const { b, peerA } = await pair(t, { maxFrameSizeA: 64 * 1024 })
  const big = { modelVersion: 0, ttl: 0, records: [record(1, 200 * 1024)] }
  await t.throwsAsync(b.services.dlht.call(peerA, DATA_PROTOCOL, Put, big), {
    instanceOf: FrameTooLargeError,
  })
  await t.notThrowsAsync(b.services.dlht.call(peerA, RING_PROTOCOL, Ping, undefined))
  const small = await b.services.dlht.call(peerA, DATA_PROTOCOL, Put, {
    modelVersion: 0,
    ttl: 0,
    records: [],
  })
  t.is(small.misrouted, 0, 'a new stream replaced the closed one')
})

test('malformed bytes on a raw stream close it; the node keeps serving', async (t) => {
  const { a, b, peerA } = await pair(t)
  const garbage: Uint8Array[] = [
    Uint8Array.of(0xc1, 0xc1, 0xc1),
    new Packr({ useRecords: false }).pack([7, 'x']),
    Uint8Array.from({ length: 64 }, (_, i) => (i * 37) % 256),
  ]
  for (const bytes of garbage) {
    const stream = await b.dialProtocol(a.getMultiaddrs(), DATA_PROTOCOL)
    stream.send(lp.encode.single(bytes))
    const envelopes = await readAll(stream)
    t.like(envelopes.at(-1), { kind: EnvelopeKind.Failure, code: 'ERR_DLHT_MALFORMED_MESSAGE' })
  }
  const badLength = await b.dialProtocol(a.getMultiaddrs(), DATA_PROTOCOL)
  badLength.send(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
  t.like((await readAll(badLength)).at(-1), { kind: EnvelopeKind.Failure })
  await t.notThrowsAsync(b.services.dlht.call(peerA, RING_PROTOCOL, Ping, undefined))
})

test('an unknown message type: UnknownMessageError, then a fresh stream works', async (t) => {
  const { b, peerA } = await pair(t)
  const unknown: MessageCodec<undefined, undefined> = { ...Ping, type: 99 }
  await t.throwsAsync(b.services.dlht.call(peerA, RING_PROTOCOL, unknown, undefined), {
    instanceOf: UnknownMessageError,
  })
  const wrongProtocol = b.services.dlht.call(peerA, DATA_PROTOCOL, Ping, undefined)
  await t.throwsAsync(
    wrongProtocol,
    { instanceOf: UnknownMessageError },
    'ring messages are not data messages',
  )
  await t.notThrowsAsync(b.services.dlht.call(peerA, RING_PROTOCOL, Ping, undefined))
})

test('a peer that never answers: RemoteCallTimeoutError at the deadline, other calls unaffected', async (t) => {
  const { b, peerA } = await pair(t, { callTimeout: 10_000 })
  await b.services.dlht.call(peerA, RING_PROTOCOL, Ping, undefined)
  const started = performance.now()
  const silent = b.services.dlht.call(
    peerA,
    RING_PROTOCOL,
    Step,
    { target: 1n, position: 2n, avoid: [] },
    { signal: AbortSignal.timeout(500) },
  )
  await t.notThrowsAsync(b.services.dlht.call(peerA, RING_PROTOCOL, Ping, undefined))
  await t.throwsAsync(silent, { instanceOf: RemoteCallTimeoutError })
  const elapsed = performance.now() - started
  t.true(elapsed >= 490 && elapsed < 3000, `timed out after ${elapsed} ms`)
})

test('a call is cancellable with an AbortSignal', async (t) => {
  const { b, peerA } = await pair(t)
  const controller = new AbortController()
  const call = b.services.dlht.call(
    peerA,
    RING_PROTOCOL,
    Step,
    { target: 1n, position: 2n, avoid: [] },
    { signal: controller.signal },
  )
  setTimeout(() => controller.abort(), 50)
  const err = await t.throwsAsync(call)
  t.is(err?.name, 'AbortError')
})

test('a peer that vanishes mid-call or is gone: PeerUnavailableError well within the timeout', async (t) => {
  const { a, b, peerA } = await pair(t, { callTimeout: 3000 })
  await b.services.dlht.call(peerA, RING_PROTOCOL, Ping, undefined)
  const started = performance.now()
  const pending = b.services.dlht.call(peerA, RING_PROTOCOL, Step, { target: 1n, position: 2n, avoid: [] })
  await a.stop()
  const err = await t.throwsAsync(pending)
  t.true(err instanceof PeerUnavailableError, `got ${err?.name}`)
  const afterwards = await t.throwsAsync(b.services.dlht.call(peerA, RING_PROTOCOL, Ping, undefined))
  t.true(afterwards instanceof PeerUnavailableError, `got ${afterwards?.name}`)
  t.true(performance.now() - started < 2500)
  t.true(err instanceof DlhtError)
})

test('"host:port" bootstraps learn the peer id from the connection', async (t) => {
  const { a, b } = await pair(t)
  const port = a.getMultiaddrs()[0].toString().split('/')[4]
  const peer = await b.services.dlht.connect(bootstrapAddress(`localhost:${port}`))
  t.is(peer.peerId, a.peerId.toString())
  await t.notThrowsAsync(b.services.dlht.call(peer, RING_PROTOCOL, Ping, undefined))
  t.is(bootstrapAddress('10.0.0.1:9000').toString(), '/ip4/10.0.0.1/tcp/9000')
  t.is(bootstrapAddress('[::1]:9000').toString(), '/ip6/::1/tcp/9000')
  t.is(bootstrapAddress('/ip4/127.0.0.1/tcp/1').toString(), '/ip4/127.0.0.1/tcp/1')
  t.throws(() => bootstrapAddress('nonsense'), { code: 'ERR_DLHT_INVALID_ARGUMENT' })
})
