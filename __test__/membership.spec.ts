// A closed ring on loopback: with a swarm key only its holders connect (an outsider can neither read,
// write nor join, and learns why at once), allowedPeers narrows that further, and identities persist.

import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import test from 'ava'
import type { LeadConfigInit } from '../ts/node/config.js'
import { LeadNode } from '../ts/node/lead-node.js'
import { exportPrivateKey, generatePrivateKey } from '../ts/overlay/identity.js'
import { createDlhtLibp2p, type DlhtLibp2p } from '../ts/overlay/libp2p.js'
import { generateSwarmKey, MembershipRefusedError, parseSwarmKey } from '../ts/overlay/private-network.js'
import { PeerUnavailableError } from '../ts/protocol/errors.js'
import { DATA_PROTOCOL, GetConfig, Put, RING_PROTOCOL, Scan } from '../ts/protocol/messages.js'
import { InvalidConfigError } from '../ts/shared/errors.js'
import { startCluster } from './helpers/cluster.js'
import { listenAddresses } from './helpers/ring.js'

const SIZE = 2n ** 62n

function node(config: LeadConfigInit): LeadNode {
  return new LeadNode({ ip: '127.0.0.1', basePort: 0, numVirtualNodes: 2, stabilizeInterval: 0.3, ...config })
}

function portOf(member: LeadNode): number {
  return Number(listenAddresses(member)[0].split('/')[4])
}

/**
 * Waits out libp2p's inbound rate limit (5 connections a second from one host, and every peer of
 * these tests dials from 127.0.0.1), so that a refusal is the membership's, not the limiter's.
 */
function nextSecond(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1100))
}

/** What an outsider can do over a raw libp2p node: read the config, scan everything, write a key. */
async function tryEverything(outsider: DlhtLibp2p, peer: { peerId: string; multiaddrs: string[] }) {
  const service = outsider.services.dlht
  return Promise.allSettled([
    service.call(peer, RING_PROTOCOL, GetConfig, undefined),
    service.call(peer, DATA_PROTOCOL, Scan, {
      modelVersion: 0,
      ttl: 4,
      hashMin: 0n,
      hashMax: SIZE - 1n,
      filter: null,
      maxBytes: 1 << 20,
    }),
    service.call(peer, DATA_PROTOCOL, Put, {
      modelVersion: 0,
      ttl: 4,
      records: [{ position: 1n, key: 'intruder', value: new Uint8Array([1]) }],
    }),
  ])
}

test('a swarm key is checked when the node is made: malformed keys, identities and allow-lists are refused', (t) => {
  const key = generateSwarmKey()
  t.regex(key, /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
  t.deepEqual(parseSwarmKey(Buffer.from(key.replaceAll('\n', '\r\n'))), parseSwarmKey(key))
  t.notThrows(() => node({ swarmKey: Buffer.from(key) }))
  const malformed = [
    '',
    'not a key',
    key.replace('1.0.0', '2.0.0'),
    key.replace('/base16/', '/base64/'),
    key.slice(0, -3),
    `${key}extra\n`,
    key.replace(/[0-9a-f]\n$/, 'z\n'),
  ]
  for (const swarmKey of malformed) {
    const err = t.throws(() => node({ swarmKey }), { instanceOf: InvalidConfigError })
    t.is(err?.field, 'swarmKey')
  }
  t.throws(() => node({ swarmKey: 42 as never }), { instanceOf: InvalidConfigError })
  t.throws(() => node({ privateKey: new Uint8Array(32) }), { instanceOf: InvalidConfigError })
  t.throws(() => node({ allowedPeers: ['not-a-peer-id'] }), { instanceOf: InvalidConfigError })
  t.throws(() => node({ privateKey: exportPrivateKey(generatePrivateKey()), peerKeyFile: '/tmp/x.key' }), {
    instanceOf: InvalidConfigError,
  })
})

test('a private ring of 3 processes: an outsider without the key or with another one cannot read, write or join; a member can', async (t) => {
  const swarmKey = generateSwarmKey()
  const cluster = await startCluster(t, 3, { config: { swarmKey }, numVirtualNodes: 2 })
  const [first] = cluster.nodes
  const entries = Array.from({ length: 300 }, (_, i) => [`key-${i}`, i] as [string, number])
  await first.call('putMany', entries)
  const peer = { peerId: first.peerId, multiaddrs: [first.multiaddr] }

  for (const outsiderKey of [undefined, generateSwarmKey()]) {
    await nextSecond()
    const outsider = await createDlhtLibp2p({ swarmKey: outsiderKey, callTimeout: 5000 })
    t.teardown(() => outsider.stop())
    for (const attempt of await tryEverything(outsider, peer)) {
      t.is(attempt.status, 'rejected')
      const reason = (attempt as PromiseRejectedResult).reason
      // Refused in the handshake, not left to time out.
      t.true(
        reason instanceof PeerUnavailableError || reason instanceof MembershipRefusedError,
        String(reason),
      )
    }

    await nextSecond()
    const joiner = node({ bootstrapPeer: `localhost:${first.port}`, swarmKey: outsiderKey ?? null })
    const err = await t.throwsAsync(joiner.start(), { instanceOf: MembershipRefusedError })
    t.is(err?.code, 'ERR_DLHT_NOT_A_MEMBER')
    t.regex(err?.message ?? '', outsiderKey === undefined ? /no swarm key/ : /another swarm key/)
  }
  // Nothing the outsiders sent was stored.
  t.is((await first.call<unknown[]>('rangeQuery', 0n, SIZE - 1n)).length, 300)

  // A holder of the key is a member: it reads over raw libp2p and joins as a node.
  await nextSecond()
  const insider = await createDlhtLibp2p({ swarmKey, callTimeout: 5000 })
  t.teardown(() => insider.stop())
  const config = await insider.services.dlht.call(peer, RING_PROTOCOL, GetConfig, undefined)
  t.true(config.vnodes.length > 0)
  const member = node({ bootstrapPeer: `localhost:${first.port}`, swarmKey })
  await member.start()
  t.teardown(() => member.stop())
  const values = await member.getMany(entries.map(([key]) => key))
  t.deepEqual(
    values,
    entries.map(([, value]) => value),
  )
})

test('allowedPeers: listed peers join, others are refused by the connection gater', async (t) => {
  const allowedKey = generatePrivateKey()
  const allowedId = peerIdFromPrivateKey(allowedKey).toString()
  const founder = node({ allowedPeers: [allowedId] })
  await founder.start()
  t.teardown(() => founder.stop())
  await founder.put('k', 'v')

  const stranger = node({ bootstrapPeer: `localhost:${portOf(founder)}` })
  await t.throwsAsync(stranger.start(), { instanceOf: MembershipRefusedError })
  const outsider = await createDlhtLibp2p({ callTimeout: 5000 })
  t.teardown(() => outsider.stop())
  const peer = { peerId: founder.peerId, multiaddrs: listenAddresses(founder) }
  for (const attempt of await tryEverything(outsider, peer)) t.is(attempt.status, 'rejected')

  const allowed = node({
    bootstrapPeer: `localhost:${portOf(founder)}`,
    privateKey: exportPrivateKey(allowedKey),
    allowedPeers: [founder.peerId],
  })
  await allowed.start()
  t.teardown(() => allowed.stop())
  t.is(allowed.peerId, allowedId)
  t.is(await allowed.get('k'), 'v')
})

test('peerKeyFile keeps the PeerId across restarts; the file is its owner’s only', async (t) => {
  const peerKeyFile = join(mkdtempSync(join(tmpdir(), 'dlht-identity-')), 'keys', 'peer.key')
  const first = node({ peerKeyFile })
  await first.start()
  const peerId = first.peerId
  await first.stop()
  t.is(statSync(peerKeyFile).mode & 0o777, 0o600)
  const again = node({ peerKeyFile })
  t.is(again.peerId, peerId)
  await again.start()
  t.true(listenAddresses(again)[0].endsWith(peerId))
  await again.stop()
  t.is(node({ privateKey: readFileSync(peerKeyFile) }).peerId, peerId)
})
