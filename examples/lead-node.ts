import { AdaptiveTrainingManager, LeadNode } from 'dlht'

// Create a node: every LeadConfig field has the seed's default.
const node = new LeadNode({
  ip: 'localhost',
  basePort: 9000,
  numVirtualNodes: 3,
  branchingFactor: 100,
  modelType: 'linear',
})
node.trainingManager = new AdaptiveTrainingManager({ newKeysTriggerCount: 1000, maxStalenessHours: 24 })
await node.start()

// Put/Get operations: values are any structured-cloneable value.
await node.put('mykey', { data: 'value' })
const value = await node.get<{ data: string }>('mykey')
console.log(value?.data === 'value') // true

// Range queries: by ring position (inclusive; hashMin > hashMax wraps around the ring) or by key.
await node.putMany(['apple', 'banana', 'cherry', 'date'].map((fruit, i) => [fruit, i]))
const everything = await node.rangeQuery(0n, node.config.hashSpaceSize - 1n)
console.log(everything.length === 5) // true
const fruits = await node.rangeQueryKeys('b', 'd')
console.log(fruits.map((entry) => entry.key).join() === 'banana,cherry') // true

// Manual retraining (off the main thread), then the training metrics.
const { modelVersion } = await node.retrainModel({ force: true })
console.log(node.trainingManager.getMetrics().modelVersion === modelVersion) // true

// Which vnode owns a key's position?
const owner = await node.findSuccessor(node.learnedHash.predict('cherry'))
console.log(owner.peerId === node.peerId) // true

await node.stop()
