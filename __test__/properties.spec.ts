// Property tests: random runs of put, putMany, get, getMany, delete and rangeQueryKeys on keys of
// every type and values of every structured-cloneable shape agree with a Map model of the store,
// in process and on a 2-process ring, and leave exactly the model's keys stored.

import { isDeepStrictEqual } from 'node:util'
import { testProp } from '@fast-check/ava'
import test, { type ExecutionContext } from 'ava'
import {
  InvalidArgumentError,
  InvalidKeyError,
  LeadNode,
  type NodeKey,
  ValueTooLargeError,
} from '../ts/index.js'
import { wordKeys } from './helpers/cluster.js'
import {
  compareInFamily,
  family,
  fits,
  identity,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  type Operation,
  readable,
  runArbitrary,
  storable,
} from './helpers/store-model.js'
import { startTwoNodeRing, type TwoNodeRing } from './helpers/two-node-ring.js'

type Assertions = ExecutionContext
type Model = Map<string, { key: NodeKey; value: unknown }>

const LIMITS = { maxKeyBytes: MAX_KEY_BYTES, maxValueBytes: MAX_VALUE_BYTES, autoRetrain: false }

/** The class a write of these entries fails with, in the order they are checked; null when it succeeds. */
function writeFault(entries: Array<[unknown, unknown]>): (new (...args: never[]) => Error) | null {
  for (const [key, value] of entries) {
    if (!storable(key)) return InvalidKeyError
    if (!fits(value)) return ValueTooLargeError
  }
  return null
}

function same(got: unknown, value: unknown): boolean {
  return isDeepStrictEqual(got, structuredClone(value))
}

/** Runs one operation on the node and on the model, asserting they agree. */
async function step(t: Assertions, node: LeadNode, model: Model, pool: unknown[], operation: Operation) {
  const where = JSON.stringify(operation, (_, value) => (typeof value === 'bigint' ? `${value}n` : value))
  switch (operation.op) {
    case 'put':
    case 'putMany': {
      const entries: Array<[unknown, unknown]> =
        operation.op === 'put'
          ? [[pool[operation.key], operation.value]]
          : operation.entries.map(([key, value]) => [pool[key], value])
      const fault = writeFault(entries)
      const write =
        operation.op === 'put'
          ? node.put(entries[0][0] as NodeKey, entries[0][1])
          : node.putMany(entries as Array<[NodeKey, unknown]>)
      if (fault !== null) {
        await t.throwsAsync(write, { instanceOf: fault }, where)
        return
      }
      await write
      for (const [key, value] of entries) model.set(identity(key as NodeKey), { key: key as NodeKey, value })
      return
    }
    case 'get': {
      const key = pool[operation.key]
      if (!readable(key))
        return void (await t.throwsAsync(node.get(key as NodeKey), { instanceOf: InvalidKeyError }, where))
      const expected = model.get(identity(key as NodeKey))
      const got = await node.get(key as NodeKey)
      t.true(expected === undefined ? got === undefined : same(got, expected.value), where)
      return
    }
    case 'getMany': {
      const keys = operation.keys.map((i) => pool[i])
      if (!keys.every(readable))
        return void (await t.throwsAsync(
          node.getMany(keys as NodeKey[]),
          { instanceOf: InvalidKeyError },
          where,
        ))
      const got = await node.getMany(keys as NodeKey[])
      t.is(Object.keys(got).length, keys.length, `dense: ${where}`)
      keys.forEach((key, i) => {
        const expected = model.get(identity(key as NodeKey))
        t.true(expected === undefined ? got[i] === undefined : same(got[i], expected.value), where)
      })
      return
    }
    case 'delete': {
      const key = pool[operation.key]
      if (!readable(key))
        return void (await t.throwsAsync(node.delete(key as NodeKey), { instanceOf: InvalidKeyError }, where))
      t.is(await node.delete(key as NodeKey), model.delete(identity(key as NodeKey)), where)
      return
    }
    case 'range': {
      const low = pool[operation.low] as NodeKey
      const high = pool[operation.high] as NodeKey
      const query = node.rangeQueryKeys(low, high)
      if (!readable(low) || !readable(high))
        return void (await t.throwsAsync(query, { instanceOf: InvalidKeyError }, where))
      if (family(low) !== family(high) || compareInFamily(low, high) > 0)
        return void (await t.throwsAsync(query, { instanceOf: InvalidArgumentError }, where))
      const expected = [...model.values()].filter(
        ({ key }) =>
          family(key) === family(low) && compareInFamily(key, low) >= 0 && compareInFamily(key, high) <= 0,
      )
      const found = await query
      t.deepEqual(
        found.map((entry) => identity(entry.key)).sort(),
        expected.map(({ key }) => identity(key)).sort(),
        where,
      )
      for (const entry of found) t.true(same(entry.value, model.get(identity(entry.key))?.value), where)
    }
  }
}

/** Runs the operations, then checks that the node stores exactly the model's keys. */
async function agreesWithModel(
  t: Assertions,
  node: LeadNode,
  { pool, operations }: { pool: unknown[]; operations: Operation[] },
): Promise<void> {
  const model: Model = new Map()
  for (const operation of operations) await step(t, node, model, pool, operation)
  const stored = await node.rangeQuery(0n, node.config.hashSpaceSize - 1n)
  t.deepEqual(stored.map((entry) => identity(entry.key)).sort(), [...model.keys()].sort())
}

testProp(
  'in process: random operations agree with a Map model',
  [runArbitrary],
  async (t, run) => {
    const node = new LeadNode({ network: false, ...LIMITS })
    await node.start()
    try {
      await agreesWithModel(t, node, run)
    } finally {
      await node.stop()
    }
  },
  { numRuns: 150 },
)

let ring: TwoNodeRing | undefined

test.before(async () => {
  ring = await startTwoNodeRing({ config: LIMITS, trainOn: wordKeys(2000) })
})

test.after.always(async () => {
  await ring?.close()
})

testProp.serial(
  'on a 2-process ring: random operations agree with a Map model',
  [runArbitrary],
  async (t, run) => {
    const client = (ring as TwoNodeRing).client
    try {
      await agreesWithModel(t, client, run)
    } finally {
      // The next run starts from an empty ring.
      for (const entry of await client.rangeQuery(0n, client.config.hashSpaceSize - 1n))
        await client.delete(entry.key)
    }
  },
  { numRuns: 40 },
)

test.serial('the ring holds keys of both nodes, so runs cross the wire', async (t) => {
  const { client } = ring as TwoNodeRing
  const owners = new Set<string>()
  for (const key of wordKeys(50))
    owners.add((await client.findSuccessor(client.learnedHash.predict(key))).peerId)
  t.is(owners.size, 2)
})
