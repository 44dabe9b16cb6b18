// The slow-loris: 128 streams over 8 connections, each sending the start of a frame just under
// 4 MiB and never the rest, against a node process of a 2-process ring; its RSS and a member's reads.

import { startNode } from '../__test__/helpers/cluster.js'
import { createDlhtLibp2p, type DlhtLibp2p } from '../ts/net/libp2p.js'
import { DATA_PROTOCOL, Ping, RING_PROTOCOL } from '../ts/protocol/messages.js'
import { writeResults } from './measure.js'

const MiB = 1024 * 1024
const CONNECTIONS = 8
const STREAMS_PER_CONNECTION = 16
const FRAME = 4 * MiB - 1

/** Opens a data stream and sends a length prefix of `FRAME` bytes, then all of them but one. */
async function holdFrame(attacker: DlhtLibp2p, target: string[]): Promise<'held' | 'reset'> {
  try {
    const stream = await attacker.dialProtocol(
      target.map((address) => address),
      DATA_PROTOCOL,
    )
    stream.send(Uint8Array.of(0xff, 0xff, 0xff, 0x01))
    for (let sent = 0; sent < FRAME - 1; sent += 64 * 1024) {
      if (stream.status !== 'open') return 'reset'
      if (!stream.send(new Uint8Array(Math.min(64 * 1024, FRAME - 1 - sent)))) await stream.onDrain()
    }
    return 'held'
  } catch {
    return 'reset'
  }
}

const node = await startNode(null, { numVirtualNodes: 2 })
const member = await startNode(`localhost:${node.port}`, { numVirtualNodes: 2 })
const keys = Array.from({ length: 2000 }, (_, i) => `key-${i}`)
await member.call(
  'putMany',
  keys.map((key, i) => [key, i]),
)
const rss = async () => (await node.call<NodeJS.MemoryUsage>('memory')).rss
const before = await rss()

const attackers = await Promise.all(Array.from({ length: CONNECTIONS }, () => createDlhtLibp2p()))
let peak = before
const sampler = setInterval(async () => {
  peak = Math.max(peak, await rss().catch(() => 0))
}, 100)
const peer = { peerId: node.peerId, multiaddrs: [node.multiaddr] }
const started = performance.now()
const outcomes: Array<Promise<'held' | 'reset'>> = []
for (const attacker of attackers) {
  await attacker.services.dlht.call(peer, RING_PROTOCOL, Ping, undefined)
  for (let i = 0; i < STREAMS_PER_CONNECTION; i++) outcomes.push(holdFrame(attacker, [node.multiaddr]))
  // libp2p takes 5 connections a second from one host.
  await new Promise((resolve) => setTimeout(resolve, 250))
}
// The member reads every key while the streams hold their frames.
const readsStarted = performance.now()
const values = await member.call<unknown[]>('getMany', keys)
const readMs = performance.now() - readsStarted
const correct = values.filter((value, i) => value === i).length
const settled = await Promise.race([
  Promise.all(outcomes),
  new Promise<null>((resolve) => setTimeout(() => resolve(null), 20_000)),
])
const during = await rss()
for (const attacker of attackers) await attacker.stop()
await new Promise((resolve) => setTimeout(resolve, 2000))
const after = await rss()
clearInterval(sampler)
const results = {
  streams: CONNECTIONS * STREAMS_PER_CONNECTION,
  frameBytes: FRAME,
  streamsReset: settled?.filter((outcome) => outcome === 'reset').length ?? null,
  nodeRssMB: {
    before: before / 1e6,
    peak: Math.max(peak, during) / 1e6,
    afterAttackersLeft: after / 1e6,
  },
  memberReads: { keys: keys.length, correct, ms: readMs },
  attackMs: performance.now() - started,
}
console.log(results)
writeResults('hostile-streams', results)
await member.stop()
await node.stop()
process.exit(0)
