// Property tests over every decoder that reads bytes from outside: random and mutated-valid inputs
// give a valid value or a typed DlhtError, never another exception. `npm run fuzz` runs them longer.

import { fc, test, testProp } from '@fast-check/ava'
import { Packr } from 'msgpackr'
import { DlhtError } from '../ts/errors.js'
import { RecursiveModelIndex } from '../ts/learned/rmi.js'
import { deserializeValue, serializeValue } from '../ts/node/value-codec.js'
import { generateSwarmKey, parseSwarmKey } from '../ts/overlay/private-network.js'
import { decodeFrame, EnvelopeKind, encodeEnvelope } from '../ts/protocol/codec.js'
import { DATA_CODECS, Leave, Notify, Prepare, Put, RING_CODECS, Scan, Step } from '../ts/protocol/messages.js'
import { FrameReader } from '../ts/protocol/rpc.js'
import { decodeKeyBytes, encodeKeyBytes, type NodeKey } from '../ts/shared/keys.js'

/** Cases per property: a short run in `npm test`, `DLHT_FUZZ_RUNS` (set by `npm run fuzz`) for a long one. */
const RUNS = Number(process.env.DLHT_FUZZ_RUNS ?? 200)
const params = { numRuns: RUNS }
const SIZE = 2n ** 62n
const packr = new Packr({ useRecords: false, int64AsType: 'bigint', moreTypes: false, mapsAsObjects: true })
const CODECS = [...RING_CODECS, ...DATA_CODECS]

/** Runs `decode`: a value is fine, a DlhtError is fine, anything else is rethrown (the property fails). */
function typedOrValue<T>(decode: () => T): T | DlhtError {
  try {
    return decode()
  } catch (err) {
    if (err instanceof DlhtError) return err
    throw err
  }
}

type Mutation = [kind: 'set' | 'cut' | 'insert' | 'repeat', at: number, byte: number]

/** Applies byte-level mutations (overwrite, truncate, insert, repeat a stretch) to a valid input. */
function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = Buffer.from(bytes)
  for (const [kind, at, byte] of mutations) {
    const i = out.length === 0 ? 0 : at % out.length
    if (kind === 'set' && out.length > 0) out[i] = byte
    else if (kind === 'cut') out = out.subarray(0, i)
    else if (kind === 'insert')
      out = Buffer.concat([out.subarray(0, i), Uint8Array.of(byte), out.subarray(i)])
    else if (kind === 'repeat')
      out = Buffer.concat([out.subarray(0, i), out.subarray(i - (byte % 16)), out.subarray(i)])
  }
  return out
}

const mutations = fc.array(
  fc.tuple(
    fc.constantFrom('set', 'cut', 'insert', 'repeat'),
    fc.nat(),
    fc.nat(255),
  ) as fc.Arbitrary<Mutation>,
  { minLength: 1, maxLength: 8 },
)

/** Values as msgpack decodes them, and some it cannot produce. */
const anyValue = fc.anything({
  withBigInt: true,
  withTypedArray: true,
  withBoxedValues: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  maxDepth: 4,
})

/** Replaces the `index`-th node (depth-first) of an array/object tree with `replacement`. */
function replaceAt(value: unknown, index: number, replacement: unknown): unknown {
  let seen = 0
  const walk = (node: unknown): unknown => {
    if (seen++ === index) return replacement
    if (Array.isArray(node)) return node.map(walk)
    if (node !== null && typeof node === 'object' && !(node instanceof Uint8Array)) {
      return Object.fromEntries(Object.entries(node).map(([key, child]) => [key, walk(child)]))
    }
    return node
  }
  return walk(value)
}

const record = (i: number) => ({ position: BigInt(i) * 1000n, key: `key-${i}`, value: new Uint8Array([i]) })
const vnode = (i: number) => ({
  peerId: `peer-${i}`,
  vnodeId: i,
  id: BigInt(i) * 77n,
  multiaddrs: ['/ip4/1.2.3.4/tcp/5'],
})

/** A valid body of each kind of request that carries data, for structural mutation. */
const VALID_BODIES: Array<{ type: number; body: unknown }> = [
  {
    type: Put.type,
    body: Put.writeRequest({ modelVersion: 2, ttl: 3, records: [record(1), { ...record(2), key: 7n }] }),
  },
  {
    type: Scan.type,
    body: Scan.writeRequest({
      modelVersion: 1,
      ttl: 0,
      hashMin: 5n,
      hashMax: SIZE - 1n,
      filter: { keyRange: { min: 'a', max: 'b' }, box: { min: [0, 1], max: [2, 3] } },
      maxBytes: 100,
    }),
  },
  { type: Step.type, body: Step.writeRequest({ target: 3n, position: 9n, avoid: [1n, 2n] }) },
  {
    type: Notify.type,
    body: Notify.writeRequest({ target: 3n, candidate: vnode(1), joining: true, modelVersion: 4 }),
  },
  {
    type: Leave.type,
    body: Leave.writeRequest({
      target: 1n,
      leaving: vnode(2),
      predecessor: vnode(3),
      arcStart: 4n,
      records: [record(3)],
      modelVersion: 1,
    }),
  },
  {
    type: Prepare.type,
    body: Prepare.writeRequest({
      version: 2,
      digest: 'ab',
      bytes: new Uint8Array([1, 2, 3]),
      coordinator: 'peer-1',
      members: [{ peerId: 'peer-2', multiaddrs: [] }],
    }),
  },
]

/** Every codec's readers on one decoded body. */
function readWithEveryCodec(body: unknown): void {
  for (const codec of CODECS) {
    typedOrValue(() => codec.readRequest(body, SIZE))
    typedOrValue(() => codec.readAnswer(body, SIZE))
  }
}

// --- frames and envelopes -----------------------------------------------------------------------

/** A varint length prefix and the frame. */
function framed(frame: Uint8Array): Uint8Array {
  const header: number[] = []
  let length = frame.byteLength
  while (length >= 0x80) {
    header.push((length & 0x7f) | 0x80)
    length = Math.floor(length / 128)
  }
  header.push(length)
  return Buffer.concat([Uint8Array.from(header), frame])
}

/** Cuts bytes at the given points (taken modulo the length) into chunks, as a socket might. */
function chunked(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => (bytes.length === 0 ? 0 : cut % bytes.length)))].sort(
    (a, b) => a - b,
  )
  const chunks: Uint8Array[] = []
  let from = 0
  for (const point of [...points, bytes.length]) {
    if (point > from) chunks.push(bytes.subarray(from, point))
    from = point
  }
  return chunks
}

testProp(
  'frame reader: valid frames cut anywhere come out whole and in order',
  [fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 20 })],
  (t, frames, cuts) => {
    const reader = new FrameReader(300)
    const out: Uint8Array[] = []
    for (const chunk of chunked(Buffer.concat(frames.map(framed)), cuts))
      reader.push(chunk, (frame) => out.push(Uint8Array.from(frame)))
    t.deepEqual(
      out,
      frames.map((frame) => Uint8Array.from(frame)),
    )
    t.is(reader.buffered, 0)
  },
  params,
)

testProp(
  'frame reader: random or mutated bytes give frames within the limit or a typed error',
  [fc.uint8Array({ maxLength: 600 }), mutations, fc.array(fc.nat(), { maxLength: 20 })],
  (t, random, changes, cuts) => {
    const valid = Buffer.concat([framed(new Uint8Array(40)), framed(new Uint8Array(200))])
    for (const bytes of [random, mutate(valid, changes)]) {
      const reader = new FrameReader(256)
      const outcome = typedOrValue(() => {
        for (const chunk of chunked(bytes, cuts))
          reader.push(chunk, (frame) => t.true(frame.byteLength <= 256))
      })
      if (!(outcome instanceof DlhtError)) t.true(reader.buffered <= 256 + 5)
    }
    t.pass()
  },
  params,
)

testProp(
  'envelopes: random bytes, mutated frames and random values decode to envelopes or MalformedMessageError',
  [fc.uint8Array({ maxLength: 400 }), mutations, fc.nat(VALID_BODIES.length - 1), anyValue],
  (t, random, changes, which, value) => {
    const { type, body } = VALID_BODIES[which]
    const frame = Buffer.concat([
      encodeEnvelope({ kind: EnvelopeKind.Request, id: 1, type, body }),
      encodeEnvelope({ kind: EnvelopeKind.Failure, id: 2, code: 'ERR_X', message: 'no' }),
    ])
    let packed: Uint8Array = new Uint8Array(0)
    try {
      packed = packr.pack([EnvelopeKind.Request, 3, type, value])
    } catch {
      // Not every generated value packs; the others still run.
    }
    for (const bytes of [random, mutate(frame, changes), packed]) {
      const envelopes = typedOrValue(() => decodeFrame(bytes))
      if (envelopes instanceof DlhtError) {
        t.is(envelopes.code, 'ERR_DLHT_MALFORMED_MESSAGE')
        continue
      }
      for (const envelope of envelopes) if ('body' in envelope) readWithEveryCodec(envelope.body)
    }
    t.pass()
  },
  params,
)

testProp(
  'envelopes: msgpack nested up to 200,000 deep is refused or read, never a crash',
  [fc.integer({ min: 1, max: 200_000 })],
  (t, depth) => {
    const bytes = Buffer.concat([
      Buffer.from([0x94, 0, 1, 20]),
      Buffer.alloc(depth, 0x91),
      Buffer.from([0xc0]),
    ])
    const envelopes = typedOrValue(() => decodeFrame(bytes))
    if (!(envelopes instanceof DlhtError))
      for (const envelope of envelopes) if ('body' in envelope) readWithEveryCodec(envelope.body)
    t.pass()
  },
  { numRuns: Math.min(RUNS, 50) },
)

testProp(
  'message schemas: valid bodies with one part replaced by anything are read or refused with a typed error',
  [fc.nat(VALID_BODIES.length - 1), fc.nat(60), anyValue],
  (t, which, index, replacement) => {
    const mutated = replaceAt(VALID_BODIES[which].body, index, replacement)
    readWithEveryCodec(mutated)
    readWithEveryCodec(replacement)
    t.pass()
  },
  params,
)

// --- values, keys, models, swarm keys --------------------------------------------------------------

testProp(
  'value codec: random and mutated value bytes decode or throw CorruptValueError',
  [fc.uint8Array({ maxLength: 300 }), fc.jsonValue({ maxDepth: 4 }), mutations],
  (t, random, value, changes) => {
    const valid = serializeValue(value, 1 << 20)
    t.deepEqual(deserializeValue(valid), value)
    for (const bytes of [random, mutate(valid, changes)]) {
      const outcome = typedOrValue(() => deserializeValue(bytes))
      if (outcome instanceof DlhtError) t.is(outcome.code, 'ERR_DLHT_CORRUPT_VALUE')
    }
  },
  params,
)

const nodeKeys: fc.Arbitrary<NodeKey> = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Object.is(x, -0)),
  fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }),
  fc.uint8Array({ maxLength: 40 }),
)

testProp(
  'keys: canonical bytes round-trip; random and mutated bytes decode or throw InvalidKeyError',
  [nodeKeys, fc.uint8Array({ maxLength: 64 }), mutations],
  (t, key, random, changes) => {
    const bytes = encodeKeyBytes(key)
    const back = decodeKeyBytes(bytes)
    t.deepEqual(back instanceof Uint8Array ? Uint8Array.from(back) : back, key)
    for (const input of [
      random,
      mutate(bytes, changes),
      Buffer.concat([Uint8Array.of(2), Buffer.alloc(5000, 0x39)]),
    ]) {
      const outcome = typedOrValue(() => decodeKeyBytes(input))
      if (outcome instanceof DlhtError) t.is(outcome.code, 'ERR_DLHT_INVALID_KEY')
    }
  },
  params,
)

const trained = (() => {
  const model = new RecursiveModelIndex({ branchingFactor: 8, modelType: 'cubic' })
  model.train(Float64Array.from({ length: 2000 }, (_, i) => Math.exp(i / 300)))
  return model
})()

/** Uses a decoded model as a peer would: predictions and ranges never throw untyped errors. */
function useModel(model: RecursiveModelIndex): void {
  for (const key of [-1e300, 0, 1, 5.5, 1e300, Number.MAX_VALUE]) {
    typedOrValue(() => model.predictWithError(key))
    typedOrValue(() => model.predictRange(key, key + 1))
  }
}

testProp(
  'model format: random and mutated model bytes deserialize or throw a typed error',
  [fc.uint8Array({ maxLength: 400 }), mutations],
  (t, random, changes) => {
    for (const bytes of [random, mutate(trained.serialize(), changes)]) {
      const model = typedOrValue(() => RecursiveModelIndex.deserialize(bytes))
      if (model instanceof RecursiveModelIndex) useModel(model)
    }
    t.pass()
  },
  params,
)

testProp(
  'model dicts: fromDict on dicts with one part replaced (as JSON crosses the wire) gives a model or a typed error',
  [fc.nat(200), fc.oneof(anyValue, fc.constantFrom(-1, 0, 1e308, 2 ** 53, '', 'NaN', null, [], {}))],
  (t, index, replacement) => {
    const dict = JSON.parse(JSON.stringify(trained.toDict()))
    for (const candidate of [replaceAt(dict, index, replacement), replacement]) {
      const model = typedOrValue(() => RecursiveModelIndex.fromDict(candidate as never))
      if (model instanceof RecursiveModelIndex) useModel(model)
    }
    t.pass()
  },
  params,
)

testProp(
  'swarm keys: random and mutated keys parse to the canonical 95 bytes or throw InvalidSwarmKeyError',
  [fc.string({ maxLength: 120 }), mutations],
  (t, random, changes) => {
    for (const key of [random, mutate(Buffer.from(generateSwarmKey()), changes)]) {
      const outcome = typedOrValue(() => parseSwarmKey(key))
      if (outcome instanceof DlhtError) t.is(outcome.code, 'ERR_DLHT_INVALID_SWARM_KEY')
      else t.is(outcome.byteLength, 95)
    }
  },
  params,
)

test('regressions found by fuzzing', (t) => {
  const dict = JSON.parse(JSON.stringify(trained.toDict()))
  // A string where the binding expects a number used to escape as the binding's untyped error.
  t.throws(() => RecursiveModelIndex.fromDict({ ...dict, keyRange: ['', 1] }), {
    code: 'ERR_DLHT_CORRUPT_MODEL',
  })
  // A format version that cannot be printed used to throw a TypeError while the error was made.
  t.throws(() => RecursiveModelIndex.fromDict({ ...dict, formatVersion: Object.create(null) }), {
    code: 'ERR_DLHT_UNSUPPORTED_FORMAT_VERSION',
  })
  // Value bytes that are not V8's format used to throw V8's own Error.
  t.throws(() => deserializeValue(Uint8Array.of(0xff, 0x0f, 0x6f, 0x22)), { code: 'ERR_DLHT_CORRUPT_VALUE' })
  // A 4 MB digit string used to take seconds to parse as a bigint key.
  t.throws(() => decodeKeyBytes(Buffer.concat([Uint8Array.of(2), Buffer.alloc(4 << 20, 0x39)])), {
    code: 'ERR_DLHT_INVALID_KEY',
  })
})
