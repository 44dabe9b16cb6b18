// Bounds under hostile peers, on live libp2p nodes over loopback: streams that hold the start of big
// frames cost at most the per-connection and per-node budgets, slow frames are cut, members keep being served.

import type { Stream } from '@libp2p/interface'
import test from 'ava'
import { createDlhtLibp2p, type DlhtLibp2p } from '../ts/overlay/libp2p.js'
import { PeerBusyError } from '../ts/protocol/errors.js'
import { DATA_PROTOCOL, Ping, Put, RING_PROTOCOL, Step } from '../ts/protocol/messages.js'
import { until } from './helpers/cluster.js'

const SIZE = 2n ** 62n
const MiB = 1024 * 1024

/** Answers Ping, Put with the number of records, and Step only when `release` is called. */
async function servingNode(init: Parameters<typeof createDlhtLibp2p>[0]): Promise<DlhtLibp2p> {
  const node = await createDlhtLibp2p(init)
  node.services.dlht.setHandler((_protocol, type, body) => {
    if (type === Ping.type) return null
    if (type === Step.type) return new Promise((resolve) => stalled.push(() => resolve(STEP_ANSWER)))
    return Put.writeAnswer({ misrouted: Put.readRequest(body, SIZE).records.length })
  })
  return node
}

const STEP_ANSWER = Step.writeAnswer({
  kind: 'owner',
  owner: { peerId: 'p', vnodeId: 0, id: 1n, multiaddrs: [] },
  arcStart: 0n,
})

/** Answers of Step requests held back by the serving node. */
const stalled: Array<() => void> = []

/** The varint length prefix of a frame of `length` bytes. */
function lengthPrefix(length: number): Uint8Array {
  const bytes: number[] = []
  while (length >= 0x80) {
    bytes.push((length & 0x7f) | 0x80)
    length = Math.floor(length / 128)
  }
  bytes.push(length)
  return Uint8Array.from(bytes)
}

/**
 * Opens a data stream and sends the first `sent` bytes of a frame announced as `announced` bytes;
 * `closed` resolves when the node resets the stream (or never).
 */
async function unfinishedFrame(from: DlhtLibp2p, to: DlhtLibp2p, announced: number, sent: number) {
  let stream: Stream
  try {
    stream = await from.dialProtocol(to.getMultiaddrs(), DATA_PROTOCOL)
  } catch (err) {
    // Reset while the protocol was being agreed: the node had no room left for it.
    return { stream: undefined, closed: Promise.resolve(err as Error) }
  }
  const closed = new Promise<Error | undefined>((resolve) =>
    stream.addEventListener('close', (event) => resolve(event.error), { once: true }),
  )
  try {
    stream.send(lengthPrefix(announced))
    for (let offset = 0; offset < sent; offset += 64 * 1024) {
      if (!stream.send(new Uint8Array(Math.min(64 * 1024, sent - offset)))) await stream.onDrain()
    }
  } catch {
    // The node reset the stream: what the budget is for.
  }
  return { stream, closed }
}

test('streams holding unfinished 4 MiB frames: memory stays within the budgets, members are served, all is released', async (t) => {
  const node = await servingNode({ maxBufferedPerConnection: 8 * MiB, maxBufferedPerNode: 20 * MiB })
  const member = await createDlhtLibp2p({ callTimeout: 10_000 })
  const attackers = await Promise.all(Array.from({ length: 4 }, () => createDlhtLibp2p()))
  t.teardown(async () => {
    await Promise.all([member, ...attackers].map((peer) => peer.stop()))
    await node.stop()
  })
  const peer = { peerId: node.peerId.toString(), multiaddrs: node.getMultiaddrs().map(String) }
  await member.services.dlht.call(peer, RING_PROTOCOL, Ping, undefined)

  let highest = 0
  const sampler = setInterval(() => {
    highest = Math.max(highest, node.services.dlht.bufferedFrameBytes)
  }, 5)
  t.teardown(() => clearInterval(sampler))
  // 4 connections x 16 streams, each announcing 4 MiB - 1 and sending 1 MiB of it: 64 MiB if all were kept.
  const streams: Array<{ stream?: Stream; closed: Promise<Error | undefined> }> = []
  for (const attacker of attackers) {
    // A connection both ends have set up: libp2p closes one that opens over 10 streams before that.
    await attacker.services.dlht.call(peer, RING_PROTOCOL, Ping, undefined)
    streams.push(
      ...(await Promise.all(
        Array.from({ length: 16 }, () => unfinishedFrame(attacker, node, 4 * MiB - 1, MiB)),
      )),
    )
    // The member keeps being served meanwhile, small writes and pings alike.
    const answer = await member.services.dlht.call(peer, DATA_PROTOCOL, Put, {
      modelVersion: 0,
      ttl: 0,
      records: Array.from({ length: 50 }, (_, i) => ({
        position: BigInt(i),
        key: `k${i}`,
        value: new Uint8Array(100),
      })),
    })
    t.is(answer.misrouted, 50)
    await member.services.dlht.call(peer, RING_PROTOCOL, Ping, undefined)
  }
  await until(async () => node.services.dlht.bufferedFrameBytes > 0)
  highest = Math.max(highest, node.services.dlht.bufferedFrameBytes)
  t.true(highest <= 20 * MiB, `held ${highest} bytes`)
  t.true(highest >= 8 * MiB, `the attack held ${highest} bytes`)
  // Streams past a budget were reset by the node (64 MiB were sent, 20 fit), the others still wait.
  const stillOpen = new Promise<false>((resolve) => setTimeout(() => resolve(false), 200))
  const reset = await Promise.all(
    streams.map(({ closed }) => Promise.race([closed.then(() => true), stillOpen])),
  )
  t.true(reset.filter(Boolean).length >= 32, `${reset.filter(Boolean).length} streams reset`)

  // Aborted by their senders, the streams give everything back.
  for (const { stream } of streams) stream?.abort(new Error('gone'))
  await until(async () => node.services.dlht.bufferedFrameBytes === 0)
  t.is(node.services.dlht.bufferedFrameBytes, 0)
  await member.services.dlht.call(peer, RING_PROTOCOL, Ping, undefined)
})

test('a frame that does not arrive in time resets its stream and releases its bytes', async (t) => {
  const node = await servingNode({ frameTimeout: 300 })
  const slow = await createDlhtLibp2p()
  t.teardown(async () => {
    await slow.stop()
    await node.stop()
  })
  const { closed } = await unfinishedFrame(slow, node, 2 * MiB, 256 * 1024)
  await until(async () => node.services.dlht.bufferedFrameBytes > 0)
  await closed
  await until(async () => node.services.dlht.bufferedFrameBytes === 0)
  t.is(node.services.dlht.bufferedFrameBytes, 0)
})

test('requests in flight on one connection are bounded: past the limit, PeerBusyError at once', async (t) => {
  const node = await servingNode({ maxRequestsPerConnection: 32 })
  const caller = await createDlhtLibp2p({ callTimeout: 10_000 })
  t.teardown(async () => {
    await caller.stop()
    await node.stop()
  })
  const peer = { peerId: node.peerId.toString(), multiaddrs: node.getMultiaddrs().map(String) }
  const step = { target: 1n, position: 2n, avoid: [] }
  const calls = Array.from({ length: 40 }, () =>
    caller.services.dlht.call(peer, RING_PROTOCOL, Step, step).then(
      () => 'answered',
      (err) => (err instanceof PeerBusyError ? 'busy' : String(err)),
    ),
  )
  await until(async () => stalled.length === 32)
  // Once the node answers what it holds, the connection takes requests again.
  for (const release of stalled.splice(0)) release()
  const outcomes = await Promise.all(calls)
  t.is(outcomes.filter((outcome) => outcome === 'busy').length, 8)
  t.is(outcomes.filter((outcome) => outcome === 'answered').length, 32)
  await t.notThrowsAsync(caller.services.dlht.call(peer, RING_PROTOCOL, Ping, undefined))
})
