// Forged ring messages against a live 3-node ring on loopback: a stranger speaking for members' vnodes,
// or proposing, committing, migrating and moving without being on the ring, is refused and logged.

import test from 'ava'
import { modelDigest } from '../ts/federation/model-validation.js'
import { RecursiveModelIndex } from '../ts/learned/rmi.js'
import { LeadNode } from '../ts/node/lead-node.js'
import { createDlhtLibp2p } from '../ts/overlay/libp2p.js'
import { UnauthorizedMessageError } from '../ts/protocol/errors.js'
import {
  Commit,
  DATA_PROTOCOL,
  HandOverTaken,
  Leave,
  type MessageCodec,
  Migrate,
  MoveVnode,
  Notify,
  Prepare,
  Replicate,
  RING_PROTOCOL,
  SuccessorLeft,
} from '../ts/protocol/messages.js'
import type { VnodeRef } from '../ts/shared/router.js'
import { wordKeys } from './helpers/cluster.js'
import { listenAddresses } from './helpers/ring.js'

const SIZE = 2n ** 62n

function ringNode(bootstrapPeer: string | null): LeadNode {
  return new LeadNode({
    ip: '127.0.0.1',
    basePort: 0,
    numVirtualNodes: 2,
    stabilizeInterval: 0.3,
    autoRetrain: false,
    bootstrapPeer,
  })
}

test('forged state-changing ring messages are refused with a logged reason; nothing moves, no model is adopted', async (t) => {
  const founder = ringNode(null)
  await founder.start()
  const port = listenAddresses(founder)[0].split('/')[4]
  const others = [ringNode(`localhost:${port}`), ringNode(`localhost:${port}`)]
  for (const other of others) await other.start()
  const nodes = [founder, ...others]
  t.teardown(async () => {
    for (const node of nodes.reverse()) await node.stop()
  })
  const logs: string[] = []
  for (const node of nodes) node.addEventListener('log', (event) => logs.push((event as CustomEvent).detail))
  const keys = wordKeys(600)
  await founder.putMany(keys.map((key, i) => [key, i]))
  await founder.retrainModel({ force: true })
  const version = founder.learnedHash.version

  const stranger = await createDlhtLibp2p({ callTimeout: 8000 })
  t.teardown(() => stranger.stop())
  const strangerId = stranger.peerId.toString()
  const target = founder.getRoutingTableStats().vnodes[0]
  const victim = others[0].getRoutingTableStats().vnodes[0]
  const asVnode = ({ arcStart: _, ...ref }: VnodeRef & { arcStart: bigint }): VnodeRef => ref
  const peer = { peerId: founder.peerId, multiaddrs: listenAddresses(founder) }
  const send = <R>(protocol: string, codec: MessageCodec<R, unknown>, request: R) =>
    stranger.services.dlht.call(peer, protocol, codec, request as never, { hashSpaceSize: SIZE })

  const model = new RecursiveModelIndex({ branchingFactor: 100 })
  model.train(Float64Array.from({ length: 1000 }, (_, i) => i))
  const bytes = model.serialize()
  const offer = { version: version + 1, digest: modelDigest(bytes), bytes }
  const forged: Array<[string, Promise<unknown>]> = [
    [
      'notify for another peer’s vnode',
      send(RING_PROTOCOL, Notify, {
        target: target.id,
        candidate: { ...asVnode(victim), id: (target.arcStart + 1n) % SIZE },
        joining: true,
        modelVersion: version,
      }),
    ],
    [
      'hand-over taken for another peer’s vnode',
      send(RING_PROTOCOL, HandOverTaken, { target: target.id, candidate: asVnode(victim) }),
    ],
    [
      'leave of another peer’s vnode',
      send(RING_PROTOCOL, Leave, {
        target: target.id,
        leaving: asVnode(victim),
        predecessor: null,
        arcStart: victim.arcStart,
        records: [],
        modelVersion: version,
      }),
    ],
    [
      'successor-left of another peer’s vnode',
      send(RING_PROTOCOL, SuccessorLeft, { target: target.id, leaving: asVnode(victim), successors: [] }),
    ],
    [
      'prepare naming a member as coordinator',
      send(RING_PROTOCOL, Prepare, { ...offer, coordinator: founder.peerId, members: [] }),
    ],
    [
      'prepare from a peer off the ring',
      send(RING_PROTOCOL, Prepare, { ...offer, coordinator: strangerId, members: [] }),
    ],
    [
      'commit from a peer off the ring',
      send(RING_PROTOCOL, Commit, { version: offer.version, digest: offer.digest }),
    ],
    ['rebalance move from a peer off the ring', send(RING_PROTOCOL, MoveVnode, { from: target.id, to: 5n })],
    [
      'migration batch from a peer off the ring',
      send(DATA_PROTOCOL, Migrate, {
        modelVersion: version,
        ttl: 0,
        records: [{ position: 1n, key: keys[0], value: new Uint8Array([9]) }],
      }),
    ],
    [
      'replica copy from a peer off the ring',
      send(DATA_PROTOCOL, Replicate, {
        modelVersion: version,
        ttl: 0,
        records: [
          {
            position: 1n,
            key: keys[1],
            value: new Uint8Array([9]),
            stamp: { version: Number.MAX_SAFE_INTEGER, origin: 1, deleted: false },
          },
        ],
      }),
    ],
  ]
  for (const [what, attempt] of forged) {
    const err = await t.throwsAsync(attempt, { instanceOf: UnauthorizedMessageError }, what)
    t.regex(err?.message ?? '', new RegExp(strangerId), what)
  }
  t.true(logs.filter((line) => String(line).includes(`from ${strangerId}`)).length >= forged.length)

  // Nothing moved: the same model everywhere, the same vnodes, every value as written.
  for (const node of nodes) t.is(node.learnedHash.version, version)
  t.deepEqual(founder.getRoutingTableStats().vnodes[0], target)
  t.deepEqual(
    await others[1].getMany(keys),
    keys.map((_, i) => i),
  )
  t.is((await founder.rangeQuery(0n, SIZE - 1n)).length, keys.length)
})
