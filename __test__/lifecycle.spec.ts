// A node's life cycle under any ring state: `npm start` runs to its end, a retrain asked for while
// another rollout runs waits for it instead of failing, and stop() ends within its bound.

import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import test from 'ava'
import { DlhtError } from '../ts/errors.js'
import { LeadNode } from '../ts/node/lead-node.js'
import { chordRouter } from '../ts/overlay/chord-router.js'
import { startCluster, wordKeys } from './helpers/cluster.js'
import { listenAddresses } from './helpers/ring.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)

test('npm start runs the demo to its end', async (t) => {
  const { stdout } = await run('npm', ['start'], { cwd: ROOT, timeout: 180_000 })
  t.regex(stdout, /retrainModel\(\{ force: true \}\)[\s\S]*"retrained": true/)
  t.regex(stdout, /node2\.get\('Tokyo \(JP\)'\) -> \{ population: \d+ \}/)
  t.true(stdout.trimEnd().endsWith('stopped'))
})

test('a forced retrain right after putMany waits for the automatic one and runs', async (t) => {
  const node = new LeadNode({ ip: '127.0.0.1', basePort: 0 })
  await node.start()
  t.teardown(() => node.stop())
  const keys = wordKeys(5000)
  await node.putMany(keys.map((key, i) => [key, i]))
  const result = await node.retrainModel({ force: true })
  t.true(result.retrained)
  t.true(result.modelVersion >= 1)
  t.is(node.getStats().modelVersion, result.modelVersion)
  t.is(await node.get(keys[1234]), 1234)
})

test('a retrain whose own bound runs out while the ring is busy fails with RolloutBusyError', async (t) => {
  const node = new LeadNode({ ip: '127.0.0.1', basePort: 0, autoRetrain: false })
  await node.start()
  t.teardown(() => node.stop())
  await node.putMany(wordKeys(20_000).map((key, i) => [key, i]))
  await node.retrainModel({ force: true })
  // The first rollout is now migrating entries or moving vnodes: a bound that has already run out
  // cannot wait for it.
  t.not(node.getStats().rollout?.state, 'idle')
  const err = await t.throwsAsync(node.retrainModel({ force: true, signal: AbortSignal.abort() }))
  t.true(err instanceof DlhtError)
  t.is((err as DlhtError).code, 'ERR_DLHT_ROLLOUT_BUSY')
  const waited = await node.retrainModel({ force: true })
  t.true(waited.retrained)
})

test('forced retrains on two processes of a ring at once both succeed', async (t) => {
  const cluster = await startCluster(t, 4, { autoRetrain: true, newKeysTriggerCount: 500 })
  const keys = wordKeys(4000)
  await cluster.nodes[1].call(
    'putMany',
    keys.map((key, i) => [key, i]),
  )
  const results = await Promise.all([
    cluster.nodes[0].call<{ retrained: boolean }>('retrain'),
    cluster.nodes[3].call<{ retrained: boolean }>('retrain'),
  ])
  t.deepEqual(
    results.map((result) => result.retrained),
    [true, true],
  )
  const values = await cluster.nodes[2].call<unknown[]>('getMany', keys)
  t.deepEqual(
    values,
    keys.map((_, i) => i),
  )
})

const CALL_TIMEOUT = 1500
/** stop()'s own bound plus what stopping libp2p and a loaded machine add. */
const STOP_BOUND_MS = 2 * CALL_TIMEOUT + 4000

async function stopTimed(stop: () => Promise<void>): Promise<number> {
  const started = performance.now()
  await stop()
  return performance.now() - started
}

test('stopping every member of a ring at once ends within the bound', async (t) => {
  const nodes: LeadNode[] = []
  for (let i = 0; i < 4; i++) {
    const bootstrapPeer = i === 0 ? null : `127.0.0.1:${listenAddresses(nodes[0])[0].split('/')[4]}`
    const node = new LeadNode(
      { ip: '127.0.0.1', basePort: 0, bootstrapPeer, stabilizeInterval: 0.2, autoRetrain: false },
      { router: chordRouter({ callTimeout: CALL_TIMEOUT }) },
    )
    await node.start()
    nodes.push(node)
  }
  await nodes[1].putMany(wordKeys(2000).map((key, i) => [key, i]))
  const times = await Promise.all(nodes.map((node) => stopTimed(() => node.stop())))
  for (const ms of times) t.true(ms < STOP_BOUND_MS, `stop() took ${Math.round(ms)} ms`)
})

test('the survivors of a SIGKILLed member stop within the bound', async (t) => {
  const cluster = await startCluster(t, 4, { callTimeout: CALL_TIMEOUT })
  await cluster.nodes[0].call(
    'putMany',
    wordKeys(2000).map((key, i) => [key, i]),
  )
  await cluster.nodes[2].kill()
  const times = await Promise.all(cluster.alive.map((node) => stopTimed(() => node.stop())))
  for (const ms of times) t.true(ms < STOP_BOUND_MS, `stop() took ${Math.round(ms)} ms`)
})

test('a lone node stops without claiming a failed hand-over', async (t) => {
  const node = new LeadNode({ ip: '127.0.0.1', basePort: 0, numVirtualNodes: 3 })
  const logs: string[] = []
  node.addEventListener('log', (event) => logs.push(String((event as CustomEvent).detail)))
  await node.start()
  await node.putMany(wordKeys(100).map((key, i) => [key, i]))
  await node.stop()
  t.deepEqual(
    logs.filter((line) => line.includes('hand its arc over')),
    [],
  )
})
