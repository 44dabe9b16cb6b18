import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { dlht, LeadNode } from 'dlht'
import { createLibp2p } from 'libp2p'

// A plain LeadNode builds its own libp2p node and starts a ring.
const seed = new LeadNode({ ip: 'localhost', basePort: 9020 })
await seed.start()

// Your own libp2p node: your transports, encrypters and services, dlht among them.
const libp2p = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/9021'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    dlht: dlht({ bootstrapPeer: 'localhost:9020' }),
  },
})
const store = libp2p.services.dlht // joined the ring when createLibp2p resolved
store.addEventListener('retrain', (event) => console.log(`model version ${event.detail.modelVersion}`))

await store.put('city:paris', 2102650)
await store.put('city:rome', 2872800)
console.log((await seed.get('city:rome')) === 2872800) // true
console.log((await seed.rangeQueryKeys('city:a', 'city:z')).length === 2) // true
await store.retrainModel({ force: true }) // a round over the ring; prints "model version 1"

// Stopping libp2p leaves the ring: the entries this node held go to the seed first.
await libp2p.stop()
console.log((await seed.get('city:paris')) === 2102650) // true
await seed.stop()
