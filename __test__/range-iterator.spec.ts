// Range results as an async iterator: the same entries as the array form, in the same order, and with a
// limit the owners of the rest of the range are not asked (counted by the client's scan calls).

import test from 'ava'
import { InvalidArgumentError, LeadNode } from '../ts/index.js'
import { clusterClient, startCluster, wordKeys } from './helpers/cluster.js'

/** Everything an async iterable yields. */
async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = []
  for await (const item of iterable) items.push(item)
  return items
}

/** Scan calls this node made to its own store or to other peers, from its metrics. */
async function scans(node: LeadNode): Promise<number> {
  const text = await node.metrics()
  let total = 0
  for (const match of text.matchAll(/^dlht_data_operations_total\{operation="scan",kind="\w+"\} (\d+)$/gm))
    total += Number(match[1])
  return total
}

test('on one node the iterator gives what rangeQueryKeys gives; limit 0 gives nothing; a bad limit throws', async (t) => {
  const node = new LeadNode({ network: false })
  await node.start()
  t.teardown(() => node.stop())
  const keys = wordKeys(500)
  await node.putMany(keys.map((key, i) => [key, i]))
  const all = await node.rangeQueryKeys('c', 'm')
  const iterated = await collect(node.iterateRangeKeys('c', 'm'))
  t.deepEqual(
    iterated.map((entry) => [entry.key, entry.value]),
    all.map((entry) => [entry.key, entry.value]),
  )
  t.true(all.length > 10)
  const first = await collect(node.iterateRangeKeys('c', 'm', { limit: 10 }))
  t.deepEqual(
    first.map((entry) => entry.key),
    all.slice(0, 10).map((entry) => entry.key),
  )
  t.deepEqual(await collect(node.iterateRange(0n, node.config.hashSpaceSize - 1n, { limit: 0 })), [])
  t.throws(() => node.iterateRangeKeys('a', 'b', { limit: -1 }), { instanceOf: InvalidArgumentError })
  t.throws(() => node.iterateRange(0n, 1n, { limit: 2.5 }), { instanceOf: InvalidArgumentError })
  const signal = AbortSignal.abort(new Error('given up'))
  await t.throwsAsync(collect(node.iterateRangeKeys('c', 'm', { signal })), { message: 'given up' })
})

test.serial(
  'on a ring the iterator reads the whole ring in order, and a limit asks fewer owners',
  async (t) => {
    const keys = wordKeys(600)
    const cluster = await startCluster(t, 3, { trainOn: keys })
    const client = clusterClient(cluster)
    await client.start()
    t.teardown(() => client.stop())
    await client.putMany(keys.map((key, i) => [key, i]))
    const ring = client.config.hashSpaceSize - 1n

    const before = await scans(client)
    const whole = await collect(client.iterateRange(0n, ring))
    const wholeScans = (await scans(client)) - before
    t.deepEqual(
      whole.map((entry) => entry.key),
      (await client.rangeQuery(0n, ring)).map((entry) => entry.key),
    )
    t.is(whole.length, keys.length)
    t.true(wholeScans >= 4, `${wholeScans} pieces: 3 peers and a client`)

    const limitedStart = await scans(client)
    const limited = await collect(client.iterateRange(0n, ring, { limit: 5 }))
    const limitedScans = (await scans(client)) - limitedStart
    t.deepEqual(
      limited.map((entry) => entry.key),
      whole.slice(0, 5).map((entry) => entry.key),
    )
    t.log(`scan calls: ${wholeScans} for the whole ring, ${limitedScans} for its first 5 entries`)
    t.true(limitedScans < wholeScans)
  },
)
