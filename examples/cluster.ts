import { LeadNode } from 'dlht'

// Bootstrap node (first node in the cluster): no peer means a new ring.
const bootstrap = new LeadNode({ ip: 'localhost', basePort: 9000, bootstrapPeer: null })
await bootstrap.start()

// Additional nodes join via the bootstrap, over libp2p (TCP, noise, yamux).
const node1 = new LeadNode({ ip: 'localhost', basePort: 9001, bootstrapPeer: 'localhost:9000' })
await node1.start()
const node2 = new LeadNode({ ip: 'localhost', basePort: 9002, bootstrapPeer: 'localhost:9000' })
await node2.start()

// Data is automatically distributed across the cluster.
await node1.put('key1', 'value1') // routed to the node that owns its position
const value = await node2.get('key1') // can be read from any node
console.log(value === 'value1') // true

// stop() is a graceful leave: a node hands its entries to its successors first.
await node1.stop()
console.log((await node2.get('key1')) === 'value1') // true
await node2.stop()
await bootstrap.stop()
