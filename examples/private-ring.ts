import { generateSwarmKey, LeadNode, MembershipRefusedError } from 'dlht'

// One key for the whole ring: whoever holds it is a member (keep it like a password).
const swarmKey = generateSwarmKey()
const first = new LeadNode({ ip: 'localhost', basePort: 9010, swarmKey })
await first.start()
await first.put('secret', 42)

// A member: the same key.
const member = new LeadNode({ ip: 'localhost', basePort: 9011, bootstrapPeer: 'localhost:9010', swarmKey })
await member.start()
console.log((await member.get('secret')) === 42) // true

// An outsider without the key cannot connect at all, and start() says why.
const outsider = new LeadNode({ ip: 'localhost', basePort: 9012, bootstrapPeer: 'localhost:9010' })
const refused = await outsider.start().catch((err: unknown) => err)
console.log(refused instanceof MembershipRefusedError) // true

await member.stop()
await first.stop()
