// dlht as a service of libp2p nodes the test builds itself (TCP, noise, yamux on loopback, plus the
// test's own identify, ping and connection limits): put on one, get and range on another, leave on
// libp2p.stop(); the same nodes join a ring of plain LeadNodes, and a private ring by swarmKeyProtector.

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import test from 'ava'
import { createLibp2p, type Libp2p } from 'libp2p'
import {
  DlhtClient,
  type DlhtServiceConfig,
  dlht,
  generateSwarmKey,
  InvalidConfigError,
  LeadNode,
  type LeadNodeService,
  type ModelInstalled,
  swarmKeyProtector,
} from '../ts/index.js'
import { until } from './helpers/cluster.js'
import { listenAddresses, type RingView, ringIsConsistent } from './helpers/ring.js'

type UserNode = Libp2p<{ dlht: LeadNodeService; identify: ReturnType<ReturnType<typeof identify>> }>

/** A libp2p node as an application would build it, with dlht among its services. */
function userNode(
  config: DlhtServiceConfig,
  options: { swarmKey?: string; serveClients?: boolean } = {},
): Promise<UserNode> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: options.swarmKey === undefined ? undefined : swarmKeyProtector(options.swarmKey),
    // Every peer here dials from 127.0.0.1: the default of 5 inbound connections a second is too few.
    connectionManager: { inboundConnectionThreshold: 100 },
    services: {
      identify: identify(),
      ping: ping(),
      dlht: dlht(
        { numVirtualNodes: 2, stabilizeInterval: 0.2, autoRetrain: false, ...config },
        { serveClients: options.serveClients },
      ),
    },
  })
}

function views(nodes: Array<{ getRoutingTableStats(): unknown }>): RingView[] {
  return nodes.map((node) => node.getRoutingTableStats() as unknown as RingView)
}

async function consistent(nodes: Array<{ getRoutingTableStats(): unknown }>): Promise<void> {
  await until(async () => ringIsConsistent(views(nodes)))
}

test('the service refuses the fields of the libp2p node, and LeadNode({ libp2p }) points to it', (t) => {
  const swarm = t.throws(
    () => dlht({ swarmKey: generateSwarmKey() } as DlhtServiceConfig)(fakeComponents()),
    {
      instanceOf: InvalidConfigError,
    },
  )
  t.regex(swarm?.message ?? '', /config\.swarmKey belongs to your libp2p node .*connectionProtector/)
  t.throws(() => dlht({ basePort: 9000 } as DlhtServiceConfig)(fakeComponents()), {
    message: /config\.basePort belongs to your libp2p node .*addresses\.listen/,
  })
  t.throws(() => new LeadNode({ libp2p: {} } as never), {
    instanceOf: InvalidConfigError,
    message: /services: \{ dlht: dlht\(config\) \}/,
  })
})

/** Enough of libp2p's components for the constructor's checks, which run before any is used. */
function fakeComponents(): Parameters<ReturnType<typeof dlht>>[0] {
  return {} as Parameters<ReturnType<typeof dlht>>[0]
}

test.serial(
  'three user-built libp2p nodes form a ring: put, get, range, typed events, leave on stop',
  async (t) => {
    const first = await userNode({ replicationFactor: 2 })
    const nodes: UserNode[] = [first]
    try {
      t.is(first.services.dlht[Symbol.toStringTag], '@dlht/lead-node')
      t.true(first.services.dlht.isStarted, 'createLibp2p started the service')
      const bootstrapPeer = first.services.dlht.multiaddrs()[0]
      t.regex(bootstrapPeer, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
      for (let i = 0; i < 2; i++) nodes.push(await userNode({ replicationFactor: 2, bootstrapPeer }))
      const services = nodes.map((node) => node.services.dlht)
      await consistent(services)
      t.deepEqual(
        services.map((service) => service.peerId),
        nodes.map((node) => node.peerId.toString()),
        'the dlht peer id is the libp2p node’s',
      )

      const cities = Array.from({ length: 300 }, (_, i) => `city:${String(i).padStart(3, '0')}`)
      await services[0].putMany(cities.map((key, i) => [key, { rank: i }]))
      t.deepEqual(await services[2].get('city:123'), { rank: 123 })
      t.deepEqual(await services[1].getMany(['city:000', 'city:299', 'city:nope']), [
        { rank: 0 },
        { rank: 299 },
        undefined,
      ])
      const range = await services[1].rangeQueryKeys('city:100', 'city:109')
      t.deepEqual(
        range.map((entry) => entry.key),
        cities.slice(100, 110),
      )
      // Typed events: each peer installs the model a federated round trains.
      const installed = services.map(
        (service) =>
          new Promise<ModelInstalled>((resolve) =>
            service.addEventListener('retrain', (event) => resolve(event.detail), { once: true }),
          ),
      )
      const result = await services[2].retrainModel({ force: true })
      t.true(result.retrained)
      for (const detail of await Promise.all(installed)) t.is(detail.modelVersion, result.modelVersion)
      await until(async () => services.every((service) => service.getStats().keys > 0))
      t.deepEqual(await services[0].get('city:250'), { rank: 250 })

      // libp2p.stop() leaves the ring: the entries of the stopped peer are still read from the others.
      const leaving = nodes.pop() as UserNode
      await leaving.stop()
      t.false(leaving.services.dlht.isStarted)
      await consistent(nodes.map((node) => node.services.dlht))
      const after = await services[0].getMany(cities)
      t.is(after.filter((value) => value === undefined).length, 0)
      t.is((await services[1].rangeQueryKeys('city:000', 'city:299')).length, cities.length)
    } finally {
      await Promise.all(nodes.map((node) => node.stop()))
    }
  },
)

test.serial('a user-built node joins a ring of plain LeadNodes, and LeadNodes join its ring', async (t) => {
  const plain = new LeadNode({ ip: '127.0.0.1', basePort: 0, numVirtualNodes: 2, stabilizeInterval: 0.2 })
  await plain.start()
  let user: UserNode | undefined
  let late: LeadNode | undefined
  try {
    const port = listenAddresses(plain)[0].split('/')[4]
    user = await userNode({ bootstrapPeer: `127.0.0.1:${port}` })
    late = new LeadNode({
      ip: '127.0.0.1',
      basePort: 0,
      numVirtualNodes: 2,
      stabilizeInterval: 0.2,
      bootstrapPeer: user.services.dlht.multiaddrs()[0],
    })
    await late.start()
    const members = [plain, user.services.dlht, late]
    await consistent(members)
    const keys = Array.from({ length: 90 }, (_, i) => `k${i}`)
    await user.services.dlht.putMany(keys.map((key) => [key, key.toUpperCase()]))
    await plain.put('from-plain', 1)
    t.deepEqual(
      await late.getMany(keys),
      keys.map((key) => key.toUpperCase()),
    )
    t.is(await user.services.dlht.get('from-plain'), 1)
    t.is((await late.rangeQueryKeys('k0', 'k9')).length, keys.filter((key) => key <= 'k9').length)
    t.true(members.every((member) => member.getStats().keys > 0))
  } finally {
    await late?.stop()
    await user?.stop()
    await plain.stop()
  }
})

test.serial(
  'a private ring: a user node with swarmKeyProtector and a LeadNode with the same swarmKey',
  async (t) => {
    const swarmKey = generateSwarmKey()
    const user = await userNode({}, { swarmKey, serveClients: true })
    const member = new LeadNode({
      ip: '127.0.0.1',
      basePort: 0,
      numVirtualNodes: 2,
      stabilizeInterval: 0.2,
      swarmKey,
      bootstrapPeer: user.services.dlht.multiaddrs()[0],
    })
    try {
      await member.start()
      await consistent([user.services.dlht, member])
      await member.put('secret', 'only members read this')
      t.is(await user.services.dlht.get('secret'), 'only members read this')
      // The service serves clients when asked to: a client with the key runs operations there.
      const client = await DlhtClient.connect(user.services.dlht.multiaddrs()[0], { swarmKey })
      t.is(await client.get('secret'), 'only members read this')
      await client.close()
    } finally {
      await member.stop()
      await user.stop()
    }
  },
)
