// Operations given an AbortSignal: refused before they start when it has aborted, and given up at once
// when it aborts under a call to a peer that does not answer (a stopped process), not at the call timeout.

import test from 'ava'
import { LeadNode } from '../ts/index.js'
import { clusterClient, startCluster, wordKeys } from './helpers/cluster.js'

test('an aborted signal refuses every operation and stores nothing', async (t) => {
  const node = new LeadNode({ network: false })
  await node.start()
  t.teardown(() => node.stop())
  const signal = AbortSignal.abort(new Error('given up'))
  const refused = { message: 'given up' }
  await t.throwsAsync(node.put('apple', 1, { signal }), refused)
  await t.throwsAsync(node.putMany([['banana', 2]], { signal }), refused)
  await t.throwsAsync(node.get('apple', { signal }), refused)
  await t.throwsAsync(node.getMany(['apple'], { signal }), refused)
  await t.throwsAsync(node.delete('apple', { signal }), refused)
  await t.throwsAsync(node.rangeQueryKeys('a', 'z', { signal }), refused)
  await t.throwsAsync(node.rangeQuery(0n, 10n, { signal }), refused)
  t.is(node.getStats().keys, 0)
  t.is(await node.get('apple'), undefined)
})

test.serial('a get from a stopped peer rejects with the signal reason when it aborts', async (t) => {
  const keys = wordKeys(300)
  const cluster = await startCluster(t, 2, { trainOn: keys, callTimeout: 1500 })
  const client = clusterClient(cluster)
  await client.start()
  t.teardown(() => client.stop())
  await client.putMany(keys.map((key, i) => [key, i]))
  const stalled = cluster.nodes[1]
  let owned: string | undefined
  for (const key of keys) {
    const owner = await client.findSuccessor(client.learnedHash.predict(key))
    if (owner.peerId === stalled.peerId) {
      owned = key
      break
    }
  }
  if (owned === undefined) return t.fail(`no key of ${keys.length} is owned by the second node`)

  stalled.child.kill('SIGSTOP')
  t.teardown(() => {
    stalled.child.kill('SIGCONT')
  })
  const controller = new AbortController()
  const pending = client.get(owned, { signal: controller.signal })
  // The call is out and cannot be answered: only the signal can end it before the call timeout.
  await new Promise((resolve) => setTimeout(resolve, 200))
  const reason = new Error('operator gave up')
  controller.abort(reason)
  t.is(await pending.catch((err: unknown) => err), reason)
  stalled.child.kill('SIGCONT')
  t.is(await client.get(owned), keys.indexOf(owned))
})
