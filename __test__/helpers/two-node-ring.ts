// A 2-process ring for tests: a node process and an in-process LeadNode joined to it, returned
// once the ring is consistent, so the test can call the in-process node and see typed errors.

import { chordRouter, type LeadConfigInit, LeadNode } from '../../ts/index.js'
import { Cluster, type ClusterNode, until } from './cluster.js'
import { type RingView, ringIsConsistent } from './ring.js'

export interface TwoNodeRing {
  /** The node process. */
  remote: ClusterNode
  /** The in-process node. */
  client: LeadNode
  /** Stops the in-process node and kills the process. */
  close(): Promise<void>
}

/** Starts the ring: the process node trains the model on `trainOn`; `config` applies to both nodes. */
export async function startTwoNodeRing(
  options: { config?: LeadConfigInit; remoteConfig?: LeadConfigInit; trainOn?: string[] } = {},
): Promise<TwoNodeRing> {
  const cluster = await Cluster.start(1, {
    config: { ...options.config, ...options.remoteConfig },
    trainOn: options.trainOn,
  })
  const remote = cluster.nodes[0]
  const client = new LeadNode(
    {
      ip: '127.0.0.1',
      basePort: 0,
      bootstrapPeer: `localhost:${remote.port}`,
      stabilizeInterval: 0.2,
      autoRetrain: false,
      ...options.config,
    },
    { router: chordRouter({ callTimeout: 3000 }) },
  )
  const close = async () => {
    await client.stop()
    await cluster.killAll()
  }
  try {
    await client.start()
    await until(async () => {
      const views = [
        client.getRoutingTableStats() as unknown as RingView,
        (await remote.call<{ routing: RingView }>('stats')).routing,
      ]
      return ringIsConsistent(views)
    })
  } catch (err) {
    await close()
    throw err
  }
  return { remote, client, close }
}
