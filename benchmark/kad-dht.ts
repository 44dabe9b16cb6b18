// The same remote put/get workload against @libp2p/kad-dht on 3 loopback processes (the DHT a JS user
// picks today) and against a 3-process dlht cluster, in one run, with dlht/kad-dht ratios. Writes results/kad-dht.json.

import { type ChildProcess, fork } from 'node:child_process'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { type KadDHT, kadDHT, passthroughMapper, type SingleKadDHT } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { Cluster, clusterClient } from '../__test__/helpers/cluster.js'
import { seededRandom } from '../__test__/helpers/datasets.js'
import { closedLoop, type Latencies, writeResults } from './measure.js'

const KEY_COUNT = 2000
const SEQUENTIAL = 300
const IN_FLIGHT = 64
const CALL_TIMEOUT_MS = 10_000
/** Every run of this benchmark ends: a stuck DHT cannot hold it past this. */
const DEADLINE_MS = 10 * 60_000
const NODE = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url))
const NAMESPACE = 'bench'

const recordKey = (key: number) => new TextEncoder().encode(`/${NAMESPACE}/${key}`)
const value = (i: number) => ({ n: i, tag: 'bench' })
const encodeValue = (i: number) => new TextEncoder().encode(JSON.stringify(value(i)))

/** A kad-dht libp2p node on 127.0.0.1: TCP + noise + yamux, loopback addresses kept, one record namespace. */
function createKadNode(clientMode: boolean): Promise<Libp2p<{ dht: KadDHT }>> {
  return createLibp2p({
    addresses: { listen: clientMode ? [] : ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: '/dlht-bench/kad/1.0.0',
        clientMode,
        peerInfoMapper: passthroughMapper,
        validators: { [NAMESPACE]: async () => {} },
        selectors: { [NAMESPACE]: () => 0 },
      }),
    },
  })
}

/** Child process: a kad-dht server that dials the servers started before it, until its parent goes. */
async function serve(peers: string[]): Promise<void> {
  const node = await createKadNode(false)
  for (const peer of peers) await node.dial(multiaddr(peer))
  process.on('disconnect', () => void Promise.resolve(node.stop()).finally(() => process.exit(0)))
  process.send?.({ multiaddr: node.getMultiaddrs()[0].toString() })
}

/** Starts 3 kad-dht server processes, each connected to the earlier ones. */
async function startKadServers(count: number): Promise<{ children: ChildProcess[]; addresses: string[] }> {
  const children: ChildProcess[] = []
  const addresses: string[] = []
  process.on('exit', () => {
    for (const child of children) child.kill('SIGKILL')
  })
  for (let i = 0; i < count; i++) {
    const child = fork(fileURLToPath(import.meta.url), ['server', ...addresses], {
      execPath: NODE,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    children.push(child)
    addresses.push(
      await new Promise<string>((resolve, reject) => {
        child.once('message', (message: { multiaddr: string }) => resolve(message.multiaddr))
        child.once('exit', (code) => reject(new Error(`kad-dht server exited with ${code}`)))
      }),
    )
  }
  return { children, addresses }
}

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A DHT under test: put and get of one key, and how to shut it down. */
interface System {
  put(key: number, i: number): Promise<void>
  get(key: number): Promise<unknown>
  stop(): Promise<void>
}

interface Workload {
  putSequential: Latencies
  putConcurrent: Latencies & { inFlight: number }
  getSequential: Latencies
  getConcurrent: Latencies & { inFlight: number }
  /** Gets that did not return the value put (missing, wrong, or failed). */
  wrongGets: number
  failedPuts: number
}

/**
 * The workload both systems run on the same keys and values: puts then gets, one and IN_FLIGHT at a
 * time. Each phase runs on dlht then at once on kad-dht, so both see the same machine load.
 */
async function runWorkloads(keys: number[], systems: System[]): Promise<Workload[]> {
  const counts = systems.map(() => ({ failedPuts: 0, wrongGets: 0 }))
  const putOne = (s: number) => async (i: number) => {
    await systems[s].put(keys[i], i).catch(() => counts[s].failedPuts++)
  }
  const getOne = (s: number) => async (i: number) => {
    const found = await systems[s].get(keys[i]).catch(() => undefined)
    if (JSON.stringify(found) !== JSON.stringify(value(i))) counts[s].wrongGets++
  }
  const phase = async (count: number, inFlight: number, operation: typeof putOne) => {
    const results: Latencies[] = []
    for (let s = 0; s < systems.length; s++) results.push(await closedLoop(count, inFlight, operation(s)))
    return results
  }
  const putSequential = await phase(SEQUENTIAL, 1, putOne)
  const putConcurrent = await phase(keys.length, IN_FLIGHT, putOne)
  const getSequential = await phase(SEQUENTIAL, 1, getOne)
  const getConcurrent = await phase(keys.length, IN_FLIGHT, getOne)
  return systems.map((_, s) => ({
    putSequential: putSequential[s],
    putConcurrent: { inFlight: IN_FLIGHT, ...putConcurrent[s] },
    getSequential: getSequential[s],
    getConcurrent: { inFlight: IN_FLIGHT, ...getConcurrent[s] },
    ...counts[s],
  }))
}

/** dlht: the 3-process cluster and in-process client of benchmark/cluster.ts, and KEY_COUNT keys it owns remotely. */
async function startDlht(): Promise<System & { keys: number[] }> {
  const random = seededRandom(42)
  const sample = Array.from({ length: 20_000 }, () => Math.floor(random() * 1e9))
  const cluster = await Cluster.start(3, {
    trainOn: sample,
    stabilizeInterval: 1,
    callTimeout: 5000,
    config: { replicationFactor: 1 },
  })
  const client = clusterClient(cluster)
  const stop = async () => {
    await client.stop()
    await Promise.all(cluster.nodes.map((node) => node.stop()))
    await cluster.killAll()
  }
  try {
    await client.start()
    const keys: number[] = []
    while (keys.length < KEY_COUNT) {
      const key = Math.floor(random() * 1e9)
      if ((await client.findSuccessor(client.learnedHash.predict(key))).peerId !== client.peerId)
        keys.push(key)
    }
    return { keys, put: (key, i) => client.put(key, value(i)), get: (key) => client.get(key), stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** kad-dht: 3 server processes, an in-process client-mode node connected to all of them. */
async function startKad(): Promise<System & { replicasPerPut: number }> {
  const { children, addresses } = await startKadServers(3)
  const client = await createKadNode(true)
  const stop = async () => {
    await client.stop()
    for (const child of children) child.disconnect()
    await Promise.all(children.map((child) => new Promise((resolve) => child.once('exit', resolve))))
  }
  try {
    for (const address of addresses) await client.dial(multiaddr(address))
    const dht = client.services.dht as SingleKadDHT
    await until(() => dht.routingTable.size === addresses.length, 'the client routing table')
    return {
      replicasPerPut: Math.min(dht.k, addresses.length),
      put: async (key, i) => {
        for await (const _ of dht.put(recordKey(key), encodeValue(i), {
          signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
        })) {
          // Drains the query: put resolves once every closest peer has answered.
        }
      },
      get: async (key) => {
        let found: Uint8Array | undefined
        for await (const event of dht.get(recordKey(key), { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) })) {
          if (event.name === 'VALUE') found = event.value
        }
        return found === undefined ? undefined : JSON.parse(new TextDecoder().decode(found))
      },
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

function ratios(dlht: Workload, kad: Workload) {
  const pick = (name: keyof Workload) => {
    const ours = dlht[name] as Latencies
    const theirs = kad[name] as Latencies
    return {
      throughput: ours.opsPerSecond / theirs.opsPerSecond,
      p50Latency: theirs.p50Ms / ours.p50Ms,
      p99Latency: theirs.p99Ms / ours.p99Ms,
    }
  }
  return {
    putSequential: pick('putSequential'),
    putConcurrent: pick('putConcurrent'),
    getSequential: pick('getSequential'),
    getConcurrent: pick('getConcurrent'),
  }
}

if (process.argv[2] === 'server') {
  await serve(process.argv.slice(3))
} else {
  setTimeout(() => {
    console.error(`kad-dht benchmark: still running after ${DEADLINE_MS / 60_000} min, giving up`)
    process.exit(1)
  }, DEADLINE_MS).unref()
  const loadBefore = loadavg()
  const dlhtSystem = await startDlht()
  const kadSystem = await startKad().catch(async (err) => {
    await dlhtSystem.stop()
    throw err
  })
  let workloads: Workload[]
  try {
    workloads = await runWorkloads(dlhtSystem.keys, [dlhtSystem, kadSystem])
  } finally {
    await dlhtSystem.stop()
    await kadSystem.stop()
  }
  const [dlht, kad] = workloads
  console.log('dlht', dlht)
  console.log('kad-dht', kad)
  const results = {
    setup: {
      processes: 3,
      keys: KEY_COUNT,
      sequentialOps: SEQUENTIAL,
      inFlight: IN_FLIGHT,
      value: value(0),
      transport: 'libp2p TCP + noise + yamux on 127.0.0.1, both systems',
      dlht: '3 node processes x 3 vnodes; in-process client node (1 vnode) owning none of the keys',
      kadDht: `@libp2p/kad-dht 3 server processes; in-process client-mode node; k = 20, so each put is stored on all ${kadSystem.replicasPerPut}`,
      phases: 'each phase runs on dlht, then at once on kad-dht',
      loadAverage: { before: loadBefore, after: loadavg() },
    },
    dlht,
    kadDht: kad,
    dlhtOverKadDht: ratios(dlht, kad),
  }
  console.table(results.dlhtOverKadDht)
  console.log(`wrote ${writeResults('kad-dht', results)}`)
  process.exit(0)
}
