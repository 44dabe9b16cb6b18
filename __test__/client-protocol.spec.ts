// Client and node of different releases over libp2p on loopback: each side says which client protocol
// versions are in play with a ProtocolMismatchError, instead of a bare "protocol selection failed".

import test from 'ava'
import { DlhtClient, LeadNode, ProtocolMismatchError, serveClients } from '../ts/index.js'
import { createDlhtLibp2p } from '../ts/overlay/libp2p.js'
import { CLIENT_PROTOCOL, ClientGet, RETIRED_CLIENT_PROTOCOLS } from '../ts/protocol/client-messages.js'
import { serveRpc } from '../ts/protocol/rpc.js'
import { listenAddresses } from './helpers/ring.js'

const [PREVIOUS] = RETIRED_CLIENT_PROTOCOLS

test('the client protocol carries the ring protocol’s version', (t) => {
  t.is(CLIENT_PROTOCOL, '/dlht/3.0.0/client')
  t.is(PREVIOUS, '/dlht/2.0.0/client')
})

test.serial(
  'a client of this release against a node of the previous one: ProtocolMismatchError naming both',
  async (t) => {
    const previous = await createDlhtLibp2p()
    // A node of the previous release serves only its own client protocol (whatever it would answer).
    await previous.handle(PREVIOUS, (stream) => serveRpc(stream, () => null, { serves: () => true }))
    const client = await DlhtClient.connect(previous.getMultiaddrs()[0].toString())
    try {
      const err = await t.throwsAsync(client.get('k'), { instanceOf: ProtocolMismatchError })
      t.is(err?.code, 'ERR_DLHT_PROTOCOL_MISMATCH')
      t.regex(err?.message ?? '', /speaks \/dlht\/2\.0\.0\/client, this client \/dlht\/3\.0\.0\/client/)
    } finally {
      await client.close()
      await previous.stop()
    }
  },
)

test.serial('a node that serves no client protocol: ProtocolMismatchError saying so', async (t) => {
  const node = new LeadNode({ ip: '127.0.0.1', basePort: 0 })
  await node.start()
  const client = await DlhtClient.connect(listenAddresses(node)[0])
  try {
    const err = await t.throwsAsync(client.put('k', 1), { instanceOf: ProtocolMismatchError })
    t.regex(err?.message ?? '', /serves no \/dlht\/3\.0\.0\/client: .*does not serve clients/)
  } finally {
    await client.close()
    await node.stop()
  }
})

test.serial(
  'a client of the previous release against a node of this one: an error of code ERR_DLHT_PROTOCOL_MISMATCH',
  async (t) => {
    const node = new LeadNode({ ip: '127.0.0.1', basePort: 0 })
    await node.start()
    const host = await createDlhtLibp2p()
    const stopServing = await serveClients(host, node)
    const oldClient = await createDlhtLibp2p()
    try {
      await node.put('k', 'v')
      const target = { peerId: host.peerId.toString(), multiaddrs: host.getMultiaddrs().map(String) }
      // What a previous release's client sends: the same framing and messages on its own protocol id.
      const err = await t.throwsAsync(oldClient.services.dlht.call(target, PREVIOUS, ClientGet, 'k'))
      t.is((err as ProtocolMismatchError).code, 'ERR_DLHT_PROTOCOL_MISMATCH')
      t.regex(
        err?.message ?? '',
        /this node speaks \/dlht\/3\.0\.0\/client, the client \/dlht\/2\.0\.0\/client/,
      )
      // This release's client on the same node is answered.
      const client = await DlhtClient.connect(host.getMultiaddrs()[0].toString())
      t.is(await client.get('k'), 'v')
      await client.close()
    } finally {
      await stopServing()
      await oldClient.stop()
      await host.stop()
      await node.stop()
    }
  },
)
