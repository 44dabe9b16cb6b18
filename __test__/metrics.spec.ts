// Metrics and logs as an operator sees them: the Prometheus text of real nodes (over HTTP and from
// node.metrics()), data-plane calls counted local and remote on a ring of processes, levelled logs.

import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import test from 'ava'
import { LeadNode } from '../ts/index.js'
import type { LogRecord } from '../ts/node/node-log.js'
import { startCluster, wordKeys } from './helpers/cluster.js'

const run = promisify(execFile)

/** Samples of a Prometheus text exposition: `name{labels}` -> value. */
function samples(text: string): Map<string, number> {
  const found = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    found.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return found
}

/** Sum of the samples of `name` whose labels include `labels` (e.g. 'kind="remote"'). */
function sum(found: Map<string, number>, name: string, ...labels: string[]): number {
  let total = 0
  for (const [sample, value] of found) {
    const [metric] = sample.split('{')
    if (metric === name && labels.every((label) => sample.includes(label))) total += value
  }
  return total
}

test.serial('metricsPort serves the dlht_* metrics, each with HELP, as node.metrics() does', async (t) => {
  const node = new LeadNode({ ip: '127.0.0.1', basePort: 0, metricsPort: 0, numVirtualNodes: 2 })
  await node.start()
  t.teardown(() => node.stop())
  await node.putMany(['apple', 'banana', 'cherry'].map((fruit, i) => [fruit, i]))
  await node.get('apple')
  await node.get('durian')
  await node.retrainModel({ force: true })

  const url = node.metricsUrl
  t.regex(url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
  const response = await fetch(url as string)
  t.is(response.status, 200)
  t.regex(response.headers.get('content-type') ?? '', /^text\/plain/)
  const text = await response.text()
  t.is((await fetch(new URL('/other', url as string))).status, 404)

  const helped = new Set([...text.matchAll(/^# HELP (\S+) \S/gm)].map((match) => match[1]))
  const typed = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]))
  t.deepEqual(helped, typed)
  for (const name of helped) t.true(name.startsWith('dlht_'), name)
  for (const name of ['dlht_data_operation_duration_seconds', 'dlht_errors_total', 'dlht_rollout_state'])
    t.true(helped.has(name), name)

  const found = samples(text)
  t.is(found.get('dlht_data_operations_total{operation="putMany",kind="local"}'), 1)
  t.is(found.get('dlht_data_operations_total{operation="get",kind="local"}'), 2)
  // Local calls are timed one in 16, starting with the first.
  t.is(found.get('dlht_data_operation_duration_seconds_count{operation="get",kind="local"}'), 1)
  t.is(found.get('dlht_data_operation_duration_seconds_bucket{operation="get",kind="local",le="+Inf"}'), 1)
  t.is(found.get('dlht_node_operations_total{operation="hits"}'), 1)
  t.is(found.get('dlht_node_operations_total{operation="misses"}'), 1)
  t.is(found.get('dlht_keys'), 3)
  t.is(sum(found, 'dlht_vnode_keys'), 3)
  t.is(found.get('dlht_model_version'), 1)
  t.is(found.get('dlht_retrains_total'), 1)
  t.is(sum(found, 'dlht_rollout_state'), 1)

  const direct = samples(await node.metrics())
  t.is(direct.get('dlht_keys'), 3)
  t.is(direct.get('dlht_data_operations_total{operation="get",kind="local"}'), 2)

  await node.stop()
  t.is(node.metricsUrl, null)
  await t.throwsAsync(fetch(url as string))
})

test.serial(
  'a ring of processes counts data-plane calls local and remote, and failures by code',
  async (t) => {
    const keys = wordKeys(600)
    // One copy of each entry: the keys add up to the keys put, and a dead peer's reads fail.
    const cluster = await startCluster(t, 3, { trainOn: keys, config: { replicationFactor: 1 } })
    const [first, , third] = cluster.nodes
    await first.call(
      'putMany',
      keys.map((key, i) => [key, i]),
    )
    const found = samples(await first.call<string>('metrics'))
    t.true(sum(found, 'dlht_data_operations_total', 'operation="putMany"', 'kind="local"') >= 1)
    t.true(sum(found, 'dlht_data_operations_total', 'operation="putMany"', 'kind="remote"') >= 1)
    t.true(sum(found, 'dlht_data_operation_duration_seconds_count', 'kind="remote"') >= 1)
    let stored = 0
    for (const node of cluster.nodes)
      stored += samples(await node.call<string>('metrics')).get('dlht_keys') ?? 0
    t.is(stored, keys.length)

    // A peer dies without handing its entries over: operations that meet it fail, counted by code.
    await third.kill()
    await first.call('getMany', keys).catch(() => {})
    const after = samples(await first.call<string>('metrics'))
    const failures = [...after].filter(([sample]) => sample.startsWith('dlht_errors_total{code="ERR_DLHT_'))
    t.log(failures.map(([sample, value]) => `${sample} ${value}`).join(', '))
    t.true(failures.length >= 1)
  },
)

test.serial('replication and repair show in the metrics: copies, tombstones, repair rounds', async (t) => {
  const first = new LeadNode({ ip: '127.0.0.1', basePort: 0, numVirtualNodes: 2, stabilizeInterval: 0.2 })
  await first.start()
  const second = new LeadNode({
    ip: '127.0.0.1',
    basePort: 0,
    numVirtualNodes: 2,
    stabilizeInterval: 0.2,
    bootstrapPeer: `127.0.0.1:${(first.getRoutingTableStats().multiaddrs as string[])[0].split('/')[4]}`,
  })
  await second.start()
  t.teardown(async () => {
    await second.stop()
    await first.stop()
  })
  const keys = wordKeys(200)
  await first.putMany(keys.map((key, i) => [key, i]))
  for (const key of keys.slice(0, 10)) await first.delete(key)
  const scraped = async () => Promise.all([first, second].map(async (node) => samples(await node.metrics())))
  // Two peers and three copies asked for: each write is on both peers, each delete a tombstone on both.
  let found = await scraped()
  for (const metrics of found) {
    t.is(metrics.get('dlht_replication_factor'), 3)
    t.is(metrics.get('dlht_tombstones'), 10)
  }
  t.true(found.reduce((total, metrics) => total + sum(metrics, 'dlht_replicated_records_total'), 0) >= 210)
  // Repair rounds run every 10 stabilize intervals (2 s here), and find both peers in step.
  const deadline = Date.now() + 20_000
  while (found.some((metrics) => sum(metrics, 'dlht_repair_rounds_total') === 0) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    found = await scraped()
  }
  for (const metrics of found) {
    t.true(sum(metrics, 'dlht_repair_rounds_total') >= 1)
    t.true((metrics.get('dlht_repair_last_round_timestamp_seconds') ?? 0) > Date.now() / 1000 - 60)
    t.is(metrics.get('dlht_repair_unreachable_replicas'), 0)
  }
})

test('the log event carries { level, message, peerId }, and DEBUG=dlht* prints the log', async (t) => {
  const node = new LeadNode({ network: false })
  const records: LogRecord[] = []
  node.addEventListener('log', (event) => records.push((event as CustomEvent<LogRecord>).detail))
  await node.start()
  await node.put('apple', 1)
  await node.retrainModel({ force: true })
  await node.stop()
  const [adopted] = records
  t.is(adopted.level, 'info')
  t.is(adopted.message, 'adopted model version 1 (1 keys)')
  t.is(adopted.peerId, node.peerId)
  t.is(String(adopted), adopted.message)

  const script = new URL('helpers/retrain-once.ts', import.meta.url).pathname
  const quiet = await run(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, DEBUG: '' },
  })
  t.false(quiet.stderr.includes('dlht:node'))
  const debug = await run(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, DEBUG: 'dlht*' },
  })
  t.regex(debug.stderr, /dlht:node info: adopted model version 1 \(3 keys\)/)
})
