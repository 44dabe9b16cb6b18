// The README's promises at the edges, on one node: whole-batch checks, lone surrogates, dense
// getMany answers, typed start-up failures and every numeric config field held to its range.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import {
  chordRouter,
  InvalidArgumentError,
  InvalidConfigError,
  InvalidKeyError,
  type LeadConfigInit,
  LeadNode,
  StartFailedError,
  ValueNotSerializableError,
  ValueTooLargeError,
} from '../ts/index.js'
import { listenFailure } from '../ts/overlay/listen-errors.js'

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dlht-edges-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function started(t: { teardown: (fn: () => Promise<void>) => void }, config: LeadConfigInit = {}) {
  const node = new LeadNode({ network: false, autoRetrain: false, ...config })
  await node.start()
  t.teardown(() => node.stop())
  return node
}

test('a putMany with one bad entry stores nothing, whatever is wrong with it', async (t) => {
  const node = await started(t, { maxKeyBytes: 64, maxValueBytes: 1024 })
  const good: Array<[string, unknown]> = Array.from({ length: 50 }, (_, i) => [`good-${i}`, i])
  const bad: Array<[[unknown, unknown], new (...args: never[]) => Error]> = [
    [['x'.repeat(100), 1], InvalidKeyError],
    [['\ud800', 1], InvalidKeyError],
    [[Number.NaN, 1], InvalidKeyError],
    [[{}, 1], InvalidKeyError],
    [['f', () => 1], ValueNotSerializableError],
    [['u', undefined], ValueNotSerializableError],
    [['big', 'v'.repeat(2000)], ValueTooLargeError],
  ]
  for (const [entry, ErrorClass] of bad) {
    for (const at of [0, 25, 50]) {
      const batch = [...good.slice(0, at), entry, ...good.slice(at)] as Array<[string, unknown]>
      await t.throwsAsync(node.putMany(batch), { instanceOf: ErrorClass }, `${String(entry[0])} at ${at}`)
    }
  }
  await t.throwsAsync(node.putMany([['a', 1], 'b' as never]), { instanceOf: InvalidArgumentError })
  await t.throwsAsync(node.putMany(42 as never), { instanceOf: InvalidArgumentError })
  t.is(node.getStats().keys, 0)
  t.deepEqual(await node.getMany(good.map(([key]) => key)), new Array(50).fill(undefined))
})

test('string keys that are not well-formed UTF-16 are refused, so no two keys merge', async (t) => {
  const node = await started(t)
  for (const key of ['\ud800', '\udbff', 'a\udc00b', '\ud83d', `${'x'.repeat(20)}\udfff`]) {
    await t.throwsAsync(node.put(key, 1), { instanceOf: InvalidKeyError, message: /lone surrogate/ })
    await t.throwsAsync(node.get(key), { instanceOf: InvalidKeyError })
    await t.throwsAsync(node.getMany(['ok', key]), { instanceOf: InvalidKeyError })
    await t.throwsAsync(node.delete(key), { instanceOf: InvalidKeyError })
    await t.throwsAsync(node.rangeQueryKeys(key, 'z'), { instanceOf: InvalidKeyError })
  }
  // A well-formed pair and the replacement character are keys like any other.
  await node.put('\ud83d\ude00', 'smile')
  await node.put('\ufffd', 'replacement')
  t.is(await node.get('\ud83d\ude00'), 'smile')
  t.is(await node.get('\ufffd'), 'replacement')
  t.is(node.getStats().keys, 2)
})

test('surrogate keys across a restart on LMDB: refused ones never land, the others stay distinct', async (t) => {
  const dataDir = await tempDir(t)
  const first = new LeadNode({ network: false, dataDir, autoRetrain: false })
  await first.start()
  await first.put('\ufffd', 'replacement')
  await first.put('\ud83d\ude00', 'smile')
  await t.throwsAsync(first.put('\ud800', 'lone high'), { instanceOf: InvalidKeyError })
  await t.throwsAsync(
    first.putMany([
      ['\udbff', 'lone'],
      ['fine', 1],
    ]),
    { instanceOf: InvalidKeyError },
  )
  await first.stop()
  const second = new LeadNode({ network: false, dataDir, autoRetrain: false })
  await second.start()
  t.teardown(() => second.stop())
  const all = await second.rangeQuery(0n, second.config.hashSpaceSize - 1n)
  t.deepEqual(all.map((entry) => [entry.key, entry.value]).sort(), [
    ['\ud83d\ude00', 'smile'],
    ['\ufffd', 'replacement'],
  ])
})

test('getMany answers a dense array: undefined, not holes, where keys are absent', async (t) => {
  const node = await started(t)
  await node.putMany([
    ['a', 1],
    ['c', 3],
  ])
  const values = await node.getMany(['a', 'b', 'c', 'd'])
  t.deepEqual(Object.keys(values), ['0', '1', '2', '3'])
  t.false(values.every((value) => value !== undefined))
  t.deepEqual(values, [1, undefined, 3, undefined])
})

test('a port in use is a StartFailedError naming basePort, with the cause', async (t) => {
  const first = new LeadNode({ ip: '127.0.0.1', basePort: 0, autoRetrain: false })
  await first.start()
  t.teardown(() => first.stop())
  const port = Number((first.getRoutingTableStats().multiaddrs as string[])[0].split('/')[4])
  const second = new LeadNode({ ip: '127.0.0.1', basePort: port, autoRetrain: false })
  const error = await t.throwsAsync(second.start(), { instanceOf: StartFailedError })
  t.is(error?.code, 'ERR_DLHT_ADDRESS_IN_USE')
  t.is(error?.field, 'basePort')
  t.regex(error?.message ?? '', new RegExp(`config\\.basePort ${port} is already in use.*choose a free port`))
  t.regex(String((error?.cause as Error)?.message), /EADDRINUSE/)
  t.false(second.isStarted)
})

test('an address that is not this host is a StartFailedError naming ip', async (t) => {
  // 192.0.2.1 is a documentation address (TEST-NET-1): listening there fails before any packet.
  const node = new LeadNode({ ip: '192.0.2.1', basePort: 0, autoRetrain: false })
  const error = await t.throwsAsync(node.start(), { instanceOf: StartFailedError })
  t.is(error?.code, 'ERR_DLHT_ADDRESS_UNAVAILABLE')
  t.is(error?.field, 'ip')
  t.regex(error?.message ?? '', /config\.ip "192\.0\.2\.1" is not an address of this host/)
  t.regex(String((error?.cause as Error)?.message), /EADDRNOTAVAIL/)
})

test('a host name that does not resolve is a StartFailedError naming ip', (t) => {
  // What libp2p 3 throws for it (resolving a name in a test would leave the machine).
  const thrown = new Error(
    'Some configured addresses failed to be listened on, you may need to remove one or more listen addresses from your configuration or set `transportManager.faultTolerance` to NO_FATAL:\n\n  /dns4/no-such-host.invalid/tcp/0: Error: getaddrinfo ENOTFOUND no-such-host.invalid',
  )
  const error = listenFailure(thrown, 'no-such-host.invalid', 0) as StartFailedError
  t.true(error instanceof StartFailedError)
  t.is(error.code, 'ERR_DLHT_ADDRESS_UNAVAILABLE')
  t.is(error.field, 'ip')
  t.is(error.cause, thrown)
  t.regex(error.message, /does not resolve/)
  const unknown = new Error('something else')
  t.is(listenFailure(unknown, 'x', 1), unknown)
})

test('a dataDir that is a file, or lies under one, is a StartFailedError naming dataDir', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'a-file')
  await writeFile(file, 'not a directory')
  for (const [dataDir, message] of [
    [file, /is a file, not a directory/],
    [join(file, 'below'), /a part of the path is a file/],
  ] as const) {
    const node = new LeadNode({ network: false, dataDir })
    const error = await t.throwsAsync(node.start(), { instanceOf: StartFailedError })
    t.is(error?.code, 'ERR_DLHT_DATA_DIR_UNUSABLE')
    t.is(error?.field, 'dataDir')
    t.regex(error?.message ?? '', message)
    t.false(node.isStarted)
  }
  const created = join(dir, 'new', 'nested')
  const node = new LeadNode({ network: false, dataDir: created })
  await node.start()
  await node.put('k', 1)
  await node.stop()
})

test('numeric config fields outside their documented ranges are refused at construction', (t) => {
  const cases: Array<[string, unknown]> = [
    ['stabilizeInterval', 1e-6],
    ['stabilizeInterval', 0.01],
    ['stabilizeInterval', 1e7],
    ['stabilizeInterval', Number.POSITIVE_INFINITY],
    ['basePort', 1.5],
    ['numVirtualNodes', 5000],
    ['branchingFactor', 2 ** 25],
    ['modelUpdateThreshold', 0],
    ['maxWorkers', 2000],
    ['maxValueBytes', 2 ** 31],
    ['maxKeyBytes', 0],
    ['ip', '256.1.1.1'],
    ['ip', '1.2.3'],
    ['ip', 'bad host name'],
    ['ip', '::zz'],
  ]
  for (const [field, value] of cases) {
    const error = t.throws(() => new LeadNode({ [field]: value } as LeadConfigInit), {
      instanceOf: InvalidConfigError,
    })
    t.is(error?.field, field, `${field} = ${String(value)}`)
  }
  for (const [field, value] of [
    ['training.maxMeanErrorThreshold', 2],
    ['training.errorWindowSize', 1e9],
  ] as const) {
    const name = field.split('.')[1]
    t.throws(() => new LeadNode({ training: { [name]: value } }), { message: new RegExp(field) })
  }
  for (const init of [[], null, 'config', 42]) {
    t.throws(() => new LeadNode(init as never), { instanceOf: InvalidConfigError, message: /config must be/ })
  }
  // A value must fit one frame on a ring; in process there is no frame.
  t.throws(() => new LeadNode({ maxValueBytes: 8 * 1024 * 1024 }), {
    instanceOf: InvalidConfigError,
    message: /config\.maxValueBytes must fit in one frame/,
  })
  t.notThrows(() => new LeadNode({ maxValueBytes: 8 * 1024 * 1024, network: false }))
  t.notThrows(
    () =>
      new LeadNode(
        { maxValueBytes: 8 * 1024 * 1024 },
        { router: chordRouter({ maxFrameSize: 16 * 1024 * 1024 }) },
      ),
  )
  for (const options of [
    { callTimeout: 2 ** 31 },
    { callTimeout: 0 },
    { stabilizeIntervalMs: 1e-3 },
    { maxFrameSize: 100 },
    { successorListLength: 0 },
    { maxForwards: -1 },
  ]) {
    t.throws(() => new LeadNode({}, { router: chordRouter(options) }), {
      code: 'ERR_DLHT_INVALID_CONFIG',
      message: new RegExp(`chordRouter option ${Object.keys(options)[0]}`),
    })
  }
  // The bounds themselves are accepted.
  t.notThrows(() => new LeadNode({ stabilizeInterval: 0.05 }))
  t.notThrows(() => new LeadNode({ stabilizeInterval: 86_400, ip: '::1' }))
})

test('a getter that throws while a value is serialized surfaces as the caller’s own error', async (t) => {
  const node = await started(t)
  class Mine extends Error {}
  const throwing = {
    get field() {
      throw new Mine('from the getter')
    },
  }
  await t.throwsAsync(node.put('object', throwing), { instanceOf: Mine })
  await t.throwsAsync(node.put('array', [1, throwing]), { instanceOf: Mine })
  const wrapped = await t.throwsAsync(node.put('map', new Map([[1, throwing]])), {
    instanceOf: ValueNotSerializableError,
  })
  t.true(wrapped?.cause instanceof Mine)
  t.is(node.getStats().keys, 0)
})
