// The README's promises at the edges on a 2-process ring (a node process and an in-process node):
// whole-batch checks, one error class wherever a fault is found, and values near maxValueBytes
// read, written, scanned and handed over in any number, each message under the frame limit.

import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import test from 'ava'
import { vnodePosition } from '../ts/chord/index.js'
import {
  chordRouter,
  InvalidKeyError,
  type LeadConfigInit,
  LeadNode,
  type NodeKey,
  ValueTooLargeError,
} from '../ts/index.js'
import { wordKeys } from './helpers/cluster.js'
import { startTwoNodeRing, type TwoNodeRing } from './helpers/two-node-ring.js'

/** The ring's model is trained on these, so that keys like them spread over both nodes. */
const WORDS = wordKeys(2000)

/** A value that serializes to just under the default maxValueBytes (1 MiB). */
function bigValue(seed: number): Uint8Array {
  const bytes = new Uint8Array(1_040_000)
  for (let i = 0; i < bytes.length; i += 4096) bytes[i] = (seed + i) & 0xff
  bytes[0] = seed
  return bytes
}

/** The 2-process ring of a test, closed at its teardown. */
async function ring(
  t: { teardown(fn: () => Promise<void>): void },
  remoteConfig: LeadConfigInit = {},
): Promise<TwoNodeRing> {
  const started = await startTwoNodeRing({ remoteConfig, trainOn: WORDS })
  t.teardown(() => started.close())
  return started
}

/** `count` keys made by `make` that the process node owns (`remote`) or the in-process one owns. */
async function keysOwned(
  { client }: TwoNodeRing,
  remote: boolean,
  count: number,
  make: (i: number) => NodeKey = (i) => `${WORDS[(i * 7919) % WORDS.length]}-${i}`,
): Promise<NodeKey[]> {
  const keys: NodeKey[] = []
  for (let i = 0; keys.length < count; i++) {
    if (i > 10_000) throw new Error('no such keys on this ring')
    const owner = await client.findSuccessor(client.learnedHash.predict(make(i)))
    if ((owner.peerId !== client.peerId) === remote) keys.push(make(i))
  }
  return keys
}

test.serial('a putMany with a bad key stores nothing on either owner', async (t) => {
  const setup = await ring(t)
  const { client, remote } = setup
  const local = await keysOwned(setup, false, 10)
  const remoteKeys = await keysOwned(setup, true, 10)
  const tooLong = 'x'.repeat(2000)
  for (const bad of [tooLong, '\ud800', Number.NaN]) {
    const batch = [...local, bad, ...remoteKeys].map((key, i): [NodeKey, unknown] => [key, i])
    await t.throwsAsync(client.putMany(batch), { instanceOf: InvalidKeyError })
  }
  // A write that was sent anyway would land within a few round trips.
  await new Promise((resolve) => setTimeout(resolve, 500))
  const keys = [...local, ...remoteKeys]
  t.deepEqual(await client.getMany(keys), new Array(keys.length).fill(undefined))
  t.deepEqual(await remote.call('getMany', keys), new Array(keys.length).fill(undefined))
  t.is((await remote.call<{ node: { keys: number } }>('stats')).node.keys, 0)
  t.is(client.getStats().keys, 0)
})

test.serial('a fault found by the remote owner is the same typed error as one found here', async (t) => {
  // The process node accepts shorter keys and smaller values than the in-process one.
  const setup = await ring(t, { maxKeyBytes: 64, maxValueBytes: 4096 })
  const { client } = setup
  const [remoteKey] = await keysOwned(
    setup,
    true,
    1,
    (i) => `${WORDS[(i * 7919) % WORDS.length]}${'k'.repeat(100)}`,
  )
  const keyError = await t.throwsAsync(client.put(remoteKey, 1), { instanceOf: InvalidKeyError })
  t.is(keyError?.code, 'ERR_DLHT_INVALID_KEY')
  t.regex(keyError?.message ?? '', /maxKeyBytes \(64 bytes\)/)
  const [remoteShort] = await keysOwned(setup, true, 1)
  const valueError = await t.throwsAsync(client.put(remoteShort, 'v'.repeat(10_000)), {
    instanceOf: ValueTooLargeError,
  })
  t.is(valueError?.limit, 4096)
  await t.throwsAsync(client.getMany([remoteShort, '\udbff']), { instanceOf: InvalidKeyError })
})

test.serial(
  'values near maxValueBytes: getMany, concurrent gets, putMany and range queries of 8 at once',
  async (t) => {
    const setup = await ring(t)
    const { client, remote } = setup
    const keys = await keysOwned(setup, true, 8)
    const values = keys.map((_, i) => bigValue(i))
    await client.putMany(keys.map((key, i) => [key, values[i]]))
    const read = await client.getMany<Uint8Array>(keys)
    t.deepEqual(
      read.map((value) => value?.[0]),
      values.map((value) => value[0]),
    )
    t.true(read.every((value, i) => Buffer.from(value as Uint8Array).equals(values[i])))
    const single = await Promise.all(keys.map((key) => client.get<Uint8Array>(key)))
    t.true(single.every((value, i) => Buffer.from(value as Uint8Array).equals(values[i])))
    // Mixed with absent keys, in the order asked.
    const mixed = await client.getMany<Uint8Array>(['absent-1', ...keys, 'absent-2'])
    t.is(mixed.length, 10)
    t.is(mixed[0], undefined)
    t.is(mixed[9], undefined)
    t.is(mixed[8]?.[0], 7)
    const all = await client.rangeQuery(0n, client.config.hashSpaceSize - 1n)
    t.is(all.length, 8)
    // And the other way round: the process node reads them all from itself.
    t.is((await remote.call<unknown[]>('getMany', keys)).length, 8)
  },
)

test.serial('values near maxValueBytes on one ring position are scanned page by page', async (t) => {
  const setup = await ring(t)
  const { client } = setup
  // Keys sharing 40 bytes after a word share one encoded value, so one position and one owner.
  const [word] = await keysOwned(
    setup,
    true,
    1,
    (i) => `${WORDS[(i * 7919) % WORDS.length]}${'p'.repeat(40)}`,
  )
  const keys = Array.from({ length: 8 }, (_, i) => `${word as string}${i}`)
  const positions = new Set(keys.map((key) => client.learnedHash.predict(key)))
  t.is(positions.size, 1)
  await client.putMany(keys.map((key, i) => [key, bigValue(i)]))
  const found = await client.rangeQueryKeys(keys[0], keys[7])
  t.deepEqual(
    found.map((entry) => entry.key),
    keys,
  )
  t.deepEqual(
    found.map((entry) => (entry.value as Uint8Array)[0]),
    [0, 1, 2, 3, 4, 5, 6, 7],
  )
  const [position] = positions
  t.is((await client.rangeQuery(position, position)).length, 8)
})

test.serial(
  'lone surrogates are refused on every node of a ring, and getMany answers are dense',
  async (t) => {
    const setup = await ring(t)
    const { client, remote } = setup
    for (const key of ['\ud800', '\udbff']) {
      await t.throwsAsync(client.put(key, key), { instanceOf: InvalidKeyError })
      await t.throwsAsync(remote.call('put', key, key), { message: /lone surrogate/ })
    }
    const [remoteKey] = await keysOwned(setup, true, 1)
    await client.put(remoteKey, 'here')
    const values = await client.getMany(['absent', remoteKey, 'also-absent'])
    t.deepEqual(Object.keys(values), ['0', '1', '2'])
    t.deepEqual(values, [undefined, 'here', undefined])
  },
)

test.serial(
  'a node that stops hands over values near maxValueBytes on one position, in frames',
  async (t) => {
    const setup = await ring(t)
    const { client, remote } = setup
    // Eight ~1 MiB values on one position that the in-process node owns: its Leave is 8 MiB of entries.
    const [word] = await keysOwned(
      setup,
      false,
      1,
      (i) => `${WORDS[(i * 7919) % WORDS.length]}${'q'.repeat(40)}`,
    )
    const keys = Array.from({ length: 8 }, (_, i) => `${word as string}${i}`)
    await client.putMany(keys.map((key, i) => [key, bigValue(i)]))
    t.is(client.getStats().keys, 8)
    await client.stop()
    const values = await remote.call<Array<Uint8Array | undefined>>('getMany', keys)
    t.deepEqual(
      values.map((value) => value?.[0]),
      [0, 1, 2, 3, 4, 5, 6, 7],
    )
    t.is((await remote.call<{ node: { keys: number } }>('stats')).node.keys, 8)
  },
)

test.serial(
  'a node that joins takes over values near maxValueBytes on one position, in frames',
  async (t) => {
    const setup = await ring(t)
    const { client, remote } = setup
    // Eight ~1 MiB values on one position P that the process node owns; a joiner whose vnode lands
    // between P and the owner's id takes them over in its Notify answer: 8 MiB of entries.
    const size = client.config.hashSpaceSize
    const [word] = await keysOwned(
      setup,
      true,
      1,
      (i) => `${WORDS[(i * 7919) % WORDS.length]}${'r'.repeat(40)}`,
    )
    const keys = Array.from({ length: 8 }, (_, j) => `${word as string}${j}`)
    await client.putMany(keys.map((key, i) => [key, bigValue(i)]))
    const position = client.learnedHash.predict(keys[0])
    const gap = ((await client.findSuccessor(position)).id - position + size) % size
    let privateKey = await generateKeyPair('Ed25519')
    while (
      (vnodePosition(peerIdFromPrivateKey(privateKey).toString(), 0, size) - position + size) % size >=
      gap
    )
      privateKey = await generateKeyPair('Ed25519')
    const joiner = new LeadNode(
      {
        ip: '127.0.0.1',
        basePort: 0,
        bootstrapPeer: `localhost:${remote.port}`,
        numVirtualNodes: 1,
        stabilizeInterval: 0.2,
        autoRetrain: false,
      },
      { router: chordRouter({ callTimeout: 3000, vnodePlacement: 'hash', privateKey }) },
    )
    await joiner.start()
    t.teardown(() => joiner.stop())
    t.is(joiner.getStats().keys, 8)
    const values = await client.getMany<Uint8Array>(keys)
    t.deepEqual(
      values.map((value) => value?.[0]),
      [0, 1, 2, 3, 4, 5, 6, 7],
    )
  },
)
