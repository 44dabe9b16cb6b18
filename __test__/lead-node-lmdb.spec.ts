// The durable store: entries, deletes and the trained model survive a restart of a node on the
// same LMDB data directory (a temporary directory, removed afterwards).

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import { KEY_ENCODING_VERSION, LeadNode, StorageMismatchError } from '../ts/index.js'
import { LmdbValueStore } from '../ts/storage/lmdb-store.js'
import { englishWords } from './helpers/datasets.js'

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dlht-lmdb-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

test('entries, deletes and the model survive a restart', async (t) => {
  const dataDir = await tempDir(t)
  const words = englishWords().slice(0, 10_000)
  const first = new LeadNode({ network: false, dataDir, autoRetrain: false })
  await first.start()
  await first.putMany(words.map((word, i) => [word, { i, word }]))
  await first.put(42, new Map([[1, 'one']]))
  await first.put(new Uint8Array([1, 2]), 2n ** 70n)
  t.true(await first.delete(words[0]))
  await first.put(words[1], 'updated')
  await first.retrainModel({ force: true })
  const model = first.learnedHash.toDict()
  const before = await first.rangeQueryKeys('b', 'c')
  t.is(first.getStats().storage, 'lmdb')
  await first.stop()

  const second = new LeadNode({ network: false, dataDir, autoRetrain: false })
  await second.start()
  t.is(second.getStats().keys, words.length + 1)
  t.is(await second.get(words[0]), undefined)
  t.is(await second.get(words[1]), 'updated')
  t.deepEqual(await second.get(words[2]), { i: 2, word: words[2] })
  t.deepEqual(await second.get(42), new Map([[1, 'one']]))
  t.is(await second.get(new Uint8Array([1, 2])), 2n ** 70n)
  t.deepEqual(second.learnedHash.toDict(), model, 'the trained model and its version come back')
  t.deepEqual(
    (await second.rangeQueryKeys('b', 'c')).map((entry) => entry.toJSON()),
    before.map((entry) => entry.toJSON()),
  )
  const values = await second.getMany<{ i: number }>(words.slice(2))
  t.true(values.every((value, i) => value?.i === i + 2))
  await second.stop()
})

test('a data directory refuses a node with another hash space', async (t) => {
  const dataDir = await tempDir(t)
  const first = new LeadNode({ network: false, dataDir })
  await first.start()
  await first.put('a', 1)
  await first.stop()
  const other = new LeadNode({ network: false, dataDir, hashSpaceSize: 2n ** 40n })
  await t.throwsAsync(other.start(), { instanceOf: StorageMismatchError })
  t.false(other.isStarted)
  await t.throwsAsync(other.start(), { instanceOf: StorageMismatchError }, 'a failed start can be retried')
  await other.stop()
})

test('a data directory written under another key encoding is refused, its entries kept', async (t) => {
  const dataDir = await tempDir(t)
  const first = new LeadNode({ network: false, dataDir })
  await first.start()
  await first.put('counterattack', 1)
  await first.stop()
  // What a node of key encoding 1 (strings placed by their first 8 bytes) wrote.
  const store = new LmdbValueStore(dataDir)
  await store.open()
  const written = JSON.parse(Buffer.from(store.readMeta('config') ?? []).toString())
  t.is(written.keyEncoding, KEY_ENCODING_VERSION)
  delete written.keyEncoding
  await store.writeMeta('config', Buffer.from(JSON.stringify(written)))
  await store.close()
  const upgraded = new LeadNode({ network: false, dataDir })
  await t.throwsAsync(upgraded.start(), { instanceOf: StorageMismatchError, message: /keyEncoding/ })
  await upgraded.stop()
  const store2 = new LmdbValueStore(dataDir)
  await store2.open()
  t.is(store2.restore().length, 1, 'the refused directory still holds its entry')
  await store2.close()
})

test('values are readable at once, before the LMDB commit resolves', async (t) => {
  const dataDir = await tempDir(t)
  const node = new LeadNode({ network: false, dataDir })
  await node.start()
  const writing = node.put('soon', 'here')
  t.is(await node.get('soon'), 'here')
  await writing
  t.is(await node.get('soon'), 'here')
  await node.stop()
})
