// Versions and tombstones of stored entries: where two copies of a key meet, the newer write wins
// (whatever the order they arrive in), and a delete survives a restart on the same LMDB directory.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import { LeadNode, RecursiveModelIndex, StorageMismatchError } from '../ts/index.js'
import { LearnedHash } from '../ts/node/learned-hash.js'
import { LocalStore } from '../ts/node/local-store.js'
import { compareStamps, HybridClock } from '../ts/shared/stamp.js'
import { LmdbValueStore } from '../ts/storage/lmdb-store.js'
import { MemoryValueStore } from '../ts/storage/memory-store.js'
import type { ValueStore } from '../ts/storage/value-store.js'
import { englishWords } from './helpers/datasets.js'

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dlht-versions-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function store(
  values: ValueStore = new MemoryValueStore(),
  origin = 1,
  learnedHash = new LearnedHash({ hashSpaceSize: 2n ** 62n, branchingFactor: 16 }),
): LocalStore {
  const local = new LocalStore({ learnedHash, values, maxValueBytes: 1 << 20, maxKeyBytes: 1024 })
  local.origin = origin
  return local
}

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (value: Uint8Array | undefined) =>
  value === undefined ? undefined : new TextDecoder().decode(value)

test('the hybrid clock only moves forward, past every version it observed', (t) => {
  const clock = new HybridClock()
  let last = 0
  for (let i = 0; i < 10_000; i++) {
    const next = clock.next()
    t.true(next > last)
    last = next
  }
  clock.observe(last + 1_000_000)
  t.true(clock.next() > last + 1_000_000)
  t.true(Number.isSafeInteger(clock.next()))
})

test('copies of a key converge on the newest write whatever the order they meet in', async (t) => {
  const writer = store(new MemoryValueStore(), 7)
  await writer.open()
  const words = englishWords().slice(0, 500)
  await writer.putMany(words.map((word) => ({ key: word, value: bytes(`v1 ${word}`) })))
  const first = writer.scanStamped(0n, 2n ** 62n - 1n)
  await writer.putMany(words.slice(0, 250).map((word) => ({ key: word, value: bytes(`v2 ${word}`) })))
  await writer.deleteMany(words.slice(200, 300))
  const second = writer.scanStamped(0n, 2n ** 62n - 1n)
  t.is(second.length, 500, 'tombstones are scanned with their versions')
  t.is(second.filter((record) => record.stamp?.deleted).length, 100)

  // Two replicas receive the two generations in opposite orders, twice each.
  const replicas = [store(new MemoryValueStore(), 8), store(new MemoryValueStore(), 9)]
  for (const replica of replicas) await replica.open()
  for (const batch of [first, second, first, second]) await replicas[0].merge(batch)
  for (const batch of [second, first, second, first]) await replicas[1].merge(batch)
  for (const replica of [writer, ...replicas]) {
    const values = await replica.getMany(words)
    t.deepEqual(
      values.map(text),
      words.map((word, i) => (i >= 200 && i < 300 ? undefined : `${i < 250 ? 'v2' : 'v1'} ${word}`)),
    )
    t.is(replica.size, 400)
    t.is(replica.tombstones, 100)
  }
  t.deepEqual(replicas[0].scanStamped(0n, 2n ** 62n - 1n), replicas[1].scanStamped(0n, 2n ** 62n - 1n))

  // A write made after the replica saw the delete wins over it.
  const revived = replicas[0].newStamp(false)
  t.true(compareStamps(revived, second.find((record) => record.stamp?.deleted)?.stamp ?? revived) > 0)
  await replicas[0].merge([{ key: words[250], value: bytes('v3'), position: 0n, stamp: revived }])
  t.is(text(await replicas[0].get(words[250])), 'v3')
})

test('a model with a new key code places tombstones where it places their keys', async (t) => {
  const learnedHash = new LearnedHash({ hashSpaceSize: 2n ** 62n, branchingFactor: 16 })
  const local = store(new MemoryValueStore(), 1, learnedHash)
  await local.open()
  const keys = Array.from({ length: 2000 }, (_, i) => `user:${String(i * 7919).padStart(8, '0')}`)
  await local.putMany(keys.map((key) => ({ key, value: bytes(key) })))
  await local.deleteMany(keys.filter((_, i) => i % 10 === 0))
  const placed = (scanned: Array<{ key: unknown; position: bigint }>) =>
    new Map(scanned.map((record) => [record.key as string, record.position]))
  const before = placed(local.scanStamped(0n, 2n ** 62n - 1n))

  const model = await RecursiveModelIndex.trainOnKeys(keys, { hashSpaceSize: 2n ** 62n, branchingFactor: 16 })
  t.true(model.hasKeyCode)
  learnedHash.install(model, 1)
  const after = local.scanStamped(0n, 2n ** 62n - 1n)
  t.is(after.filter((record) => record.stamp?.deleted).length, 200)
  const moved = after.filter((record) => before.get(record.key as string) !== record.position).length
  t.true(moved > 1000, 'the new code moved keys')
  for (const record of after) t.is(record.position, learnedHash.predict(record.key as string))
})

test('a delete survives a restart on the data directory: an older copy never brings the key back', async (t) => {
  const dataDir = await tempDir(t)
  const first = store(new LmdbValueStore(dataDir))
  await first.open()
  await first.putMany([
    { key: 'kept', value: bytes('one') },
    { key: 'gone', value: bytes('two') },
  ])
  const old = first.scanStamped(0n, 2n ** 62n - 1n)
  await first.deleteMany(['gone'])
  await first.put({ key: 'kept', value: bytes('three') })
  await first.close()

  const second = store(new LmdbValueStore(dataDir))
  await second.open()
  t.is(second.size, 1)
  t.is(second.tombstones, 1)
  t.is(text(await second.get('kept')), 'three')
  t.deepEqual(await second.merge(old), [], 'the older copies of both keys are refused')
  t.is(await second.get('gone'), undefined)
  t.is(text(await second.get('kept')), 'three')
  t.true(
    second.newStamp(false).version > (old[0].stamp?.version ?? 0),
    'the clock resumes past stored versions',
  )
  t.is(await second.purgeTombstones(60_000), 0, 'a tombstone younger than the horizon is kept')
  t.is(await second.purgeTombstones(-1000), 1, 'an older one is forgotten')
  await second.close()
})

test('a data directory of the previous entry format is refused with StorageMismatchError', async (t) => {
  const dataDir = await tempDir(t)
  const first = new LeadNode({ network: false, dataDir })
  await first.start()
  await first.put('a', 1)
  await first.stop()
  const values = new LmdbValueStore(dataDir)
  await values.open()
  const written = JSON.parse(Buffer.from(values.readMeta('config') ?? []).toString())
  delete written.entryFormat
  await values.writeMeta('config', Buffer.from(JSON.stringify(written)))
  await values.close()
  const second = new LeadNode({ network: false, dataDir })
  await t.throwsAsync(second.start(), { instanceOf: StorageMismatchError, message: /entryFormat/ })
  await second.stop()
})
