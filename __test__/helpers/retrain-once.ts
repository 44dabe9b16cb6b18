// A node in its own process that stores a few keys, retrains once and stops: run with DEBUG=dlht* to
// see its log through @libp2p/logger.

import { LeadNode } from '../../ts/node/lead-node.js'

const node = new LeadNode({ network: false })
await node.start()
await node.putMany(['apple', 'banana', 'cherry'].map((fruit, i) => [fruit, i]))
await node.retrainModel({ force: true })
await node.stop()
