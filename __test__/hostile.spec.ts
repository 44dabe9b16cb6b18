// Hostile bytes against a running ring on loopback: random streams, mutated valid frames, lengths
// claiming gigabytes, oversized frames and deep msgpack on both protocols change nothing a member sees.

import { fc } from '@fast-check/ava'
import { multiaddr } from '@multiformats/multiaddr'
import test from 'ava'
import { LeadNode } from '../ts/node/lead-node.js'
import { createDlhtLibp2p, type DlhtLibp2p } from '../ts/overlay/libp2p.js'
import { EnvelopeKind, encodeEnvelope } from '../ts/protocol/codec.js'
import { DATA_PROTOCOL, Get, Put, RING_PROTOCOL, Step } from '../ts/protocol/messages.js'
import { wordKeys } from './helpers/cluster.js'
import { listenAddresses } from './helpers/ring.js'

const SIZE = 2n ** 62n
const STREAMS = Number(process.env.DLHT_FUZZ_RUNS ?? 200)

function ringNode(bootstrapPeer: string | null): LeadNode {
  return new LeadNode({
    ip: '127.0.0.1',
    basePort: 0,
    numVirtualNodes: 2,
    stabilizeInterval: 0.5,
    autoRetrain: false,
    bootstrapPeer,
  })
}

function framed(bytes: Uint8Array): Uint8Array {
  const header: number[] = []
  let length = bytes.byteLength
  while (length >= 0x80) {
    header.push((length & 0x7f) | 0x80)
    length = Math.floor(length / 128)
  }
  header.push(length)
  return Buffer.concat([Uint8Array.from(header), bytes])
}

/** A valid request frame with a few bytes overwritten. */
const mutatedRequest = fc
  .tuple(
    fc.constantFrom(
      encodeEnvelope({
        kind: EnvelopeKind.Request,
        id: 1,
        type: Put.type,
        body: Put.writeRequest({
          modelVersion: 1,
          ttl: 2,
          records: [{ position: 5n, key: '#hostile#', value: new Uint8Array([1, 2]) }],
        }),
      }),
      encodeEnvelope({
        kind: EnvelopeKind.Request,
        id: 2,
        type: Get.type,
        body: Get.writeRequest({ modelVersion: 1, ttl: 2, keys: [{ position: 5n, key: '#hostile#' }] }),
      }),
      encodeEnvelope({
        kind: EnvelopeKind.Request,
        id: 3,
        type: Step.type,
        body: Step.writeRequest({ target: 1n, position: 2n, avoid: [] }),
      }),
    ),
    fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
  )
  .map(([envelope, changes]) => {
    const bytes = Buffer.from(envelope)
    for (const [at, byte] of changes) bytes[at % bytes.length] = byte
    return framed(bytes)
  })

/** What a hostile peer writes on a stream. */
const hostileBytes = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 2000 }),
  mutatedRequest,
  // A length prefix claiming gigabytes, or an over-long varint.
  fc.constantFrom(
    Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f),
    Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
  ),
  // msgpack nested deep inside a valid frame.
  fc
    .integer({ min: 1000, max: 100_000 })
    .map((depth) =>
      framed(Buffer.concat([Uint8Array.of(0x94, 0, 1, 20), Buffer.alloc(depth, 0x91), Uint8Array.of(0xc0)])),
    ),
)

/** Writes `bytes` on a new stream of `protocol` and waits until the node closes or resets it (or 2 s). */
async function throwAt(from: DlhtLibp2p, to: LeadNode, protocol: string, bytes: Uint8Array): Promise<void> {
  let stream: Awaited<ReturnType<DlhtLibp2p['dialProtocol']>>
  try {
    stream = await from.dialProtocol(
      listenAddresses(to).map((address) => multiaddr(address)),
      protocol,
    )
  } catch {
    return
  }
  const ended = new Promise<void>((resolve) => {
    stream.addEventListener('close', () => resolve(), { once: true })
    stream.addEventListener('remoteCloseWrite', () => resolve(), { once: true })
    setTimeout(resolve, 2000)
  })
  try {
    stream.send(bytes)
    await stream.close()
  } catch {
    // The node may reset the stream before the bytes are all out.
  }
  await ended
  stream.abort(new Error('done'))
}

test('hostile streams on both protocols: the ring keeps serving, every entry intact', async (t) => {
  const founder = ringNode(null)
  await founder.start()
  const port = listenAddresses(founder)[0].split('/')[4]
  const member = ringNode(`localhost:${port}`)
  await member.start()
  t.teardown(async () => {
    await member.stop()
    await founder.stop()
  })
  const keys = wordKeys(500)
  await member.putMany(keys.map((key, i) => [key, i]))
  await founder.retrainModel({ force: true })

  const attacker = await createDlhtLibp2p()
  t.teardown(() => attacker.stop())
  const inputs = fc.sample(fc.tuple(fc.constantFrom(RING_PROTOCOL, DATA_PROTOCOL), hostileBytes), {
    numRuns: STREAMS,
    seed: 16,
  })
  // A few streams at a time: a connection carries at most 16 per protocol.
  for (let i = 0; i < inputs.length; i += 8) {
    await Promise.all(
      inputs.slice(i, i + 8).map(([protocol, bytes]) => throwAt(attacker, founder, protocol, bytes)),
    )
  }
  t.deepEqual(
    await member.getMany(keys),
    keys.map((_, i) => i),
  )
  // An open ring takes writes from any peer: a mutated Put that stayed well formed stores its own key
  // (the attacker is a member), but none of ours is lost, duplicated or overwritten.
  const ours = new Set<unknown>(keys)
  const stored = await founder.rangeQuery(0n, SIZE - 1n)
  t.is(stored.filter((entry) => ours.has(entry.key)).length, keys.length)
  t.is(founder.learnedHash.version, member.learnedHash.version)
})
