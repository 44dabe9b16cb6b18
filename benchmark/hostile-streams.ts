// The slow-loris: 128 streams over 8 connections, each sending the start of a frame just under
// 4 MiB and never the rest, against a node process of a 2-process ring; its RSS and a member's reads.

import type { Stream } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { startNode } from '../__test__/helpers/cluster.js'
import { createDlhtLibp2p, type DlhtLibp2p } from '../ts/overlay/libp2p.js'
import { DATA_PROTOCOL, Ping, RING_PROTOCOL } from '../ts/protocol/messages.js'
import { writeResults } from './measure.js'

const MiB = 1024 * 1024
const CONNECTIONS = 8
const STREAMS_PER_CONNECTION = 16
const FRAME = 4 * MiB - 1

/** What became of one attacking stream. */
interface Attempt {
  opened: boolean
  /** The whole frame but its last byte was handed to the stream. */
  sent: boolean
  /** Set when the node reset or closed the stream. */
  closedByNode: boolean
}

/** Opens a data stream and sends a length prefix of `FRAME` bytes, then all of them but one. */
async function holdFrame(attacker: DlhtLibp2p, target: Multiaddr): Promise<Attempt> {
  const attempt = { opened: false, sent: false, closedByNode: false }
  let stream: Stream
  try {
    stream = await attacker.dialProtocol(target, DATA_PROTOCOL)
  } catch {
    return attempt
  }
  attempt.opened = true
  stream.addEventListener('close', () => {
    attempt.closedByNode = true
  })
  try {
    stream.send(Uint8Array.of(0xff, 0xff, 0xff, 0x01))
    for (let sent = 0; sent < FRAME - 1 && !attempt.closedByNode; sent += 64 * 1024) {
      if (!stream.send(new Uint8Array(Math.min(64 * 1024, FRAME - 1 - sent)))) await stream.onDrain()
    }
    attempt.sent = !attempt.closedByNode
  } catch {
    // Reset by the node while sending.
  }
  return attempt
}

const node = await startNode(null, { numVirtualNodes: 2 })
const member = await startNode(`localhost:${node.port}`, { numVirtualNodes: 2 })
const keys = Array.from({ length: 2000 }, (_, i) => `key-${i}`)
await member.call(
  'putMany',
  keys.map((key, i) => [key, i]),
)
const memory = (collect: boolean) => node.call<NodeJS.MemoryUsage>('memory', collect)
const rss = async (collect: boolean) => (await memory(collect)).rss
const buffersBefore = (await memory(true)).arrayBuffers
const before = await rss(true)

const attackers = await Promise.all(Array.from({ length: CONNECTIONS }, () => createDlhtLibp2p()))
let peak = before
const sampler = setInterval(async () => {
  peak = Math.max(peak, await rss(false).catch(() => 0))
}, 100)
const peer = { peerId: node.peerId, multiaddrs: [node.multiaddr] }
const started = performance.now()
const attempts: Array<Promise<Attempt>> = []
for (const attacker of attackers) {
  await attacker.services.dlht.call(peer, RING_PROTOCOL, Ping, undefined)
  for (let i = 0; i < STREAMS_PER_CONNECTION; i++)
    attempts.push(holdFrame(attacker, multiaddr(node.multiaddr)))
  // libp2p takes 5 connections a second from one host.
  await new Promise((resolve) => setTimeout(resolve, 250))
}
// The member reads every key while the streams hold their frames.
const readsStarted = performance.now()
const values = await member.call<unknown[]>('getMany', keys)
const readMs = performance.now() - readsStarted
const correct = values.filter((value, i) => value === i).length
const settled = await Promise.all(attempts)
const during = await rss(false)
const count = (holds: (attempt: Attempt) => boolean) => settled.filter(holds).length
const closedByNode = count((attempt) => attempt.closedByNode)
const stillHolding = count((attempt) => attempt.opened && !attempt.closedByNode)
const buffersHeld = (await memory(true)).arrayBuffers
for (const attacker of attackers) await attacker.stop()
await new Promise((resolve) => setTimeout(resolve, 2000))
const after = await rss(true)
const buffersAfter = (await memory(true)).arrayBuffers
clearInterval(sampler)
const results = {
  streams: CONNECTIONS * STREAMS_PER_CONNECTION,
  frameBytes: FRAME,
  streamsOpened: count((attempt) => attempt.opened),
  /** Streams the node closed or reset before the attacker was done sending or the member done reading. */
  streamsClosedByNode: closedByNode,
  /** Streams still open then: the frame timeout resets them (4 call timeouts, 6 s here). */
  streamsStillHolding: stillHolding,
  nodeRssMB: {
    before: before / 1e6,
    peak: Math.max(peak, during) / 1e6,
    afterAttackersLeft: after / 1e6,
  },
  /** Bytes of array buffers after a full GC: before, while the streams were open, after they left. */
  nodeArrayBuffersMB: { before: buffersBefore / 1e6, held: buffersHeld / 1e6, after: buffersAfter / 1e6 },
  memberReads: { keys: keys.length, correct, ms: readMs },
  attackMs: performance.now() - started,
}
console.log(results)
writeResults('hostile-streams', results)
await member.stop()
await node.stop()
process.exit(0)
