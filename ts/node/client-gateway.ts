// Serves the client protocol for one LeadNode on its libp2p: each request runs as the node's own
// operation (routed over the ring, retried when the ring changes), so a client needs no vnodes or model.

import type { StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import {
  CLIENT_MESSAGES,
  CLIENT_PROTOCOL,
  ClientDelete,
  type ClientEntry,
  ClientGet,
  ClientPut,
  ClientRange,
  ClientRetrain,
  ClientStats,
  RETIRED_CLIENT_PROTOCOLS,
} from '../protocol/client-messages.js'
import { MalformedMessageError, ProtocolMismatchError, UnknownMessageError } from '../protocol/errors.js'
import { DEFAULT_MAX_FRAME_SIZE, serveRpc } from '../protocol/rpc.js'
import type { LeadNode } from './lead-node.js'
import { deserializeValue, serializeValue } from './value-codec.js'

/** Options of `serveClients`. */
export interface ClientGatewayOptions {
  /** Largest frame read or written. Default 4 MiB. */
  maxFrameSize?: number
}

function decodeSentValue(bytes: Uint8Array): unknown {
  try {
    return deserializeValue(bytes)
  } catch (err) {
    throw new MalformedMessageError('value bytes do not decode', { cause: err })
  }
}

/** Runs one client request on `node` and returns the answer's body. */
async function answer(node: LeadNode, type: number, body: unknown): Promise<unknown> {
  const ringSize = node.config.hashSpaceSize
  switch (type) {
    case ClientPut.type: {
      const { key, value } = ClientPut.readRequest(body, ringSize)
      await node.put(key, decodeSentValue(value))
      return ClientPut.writeAnswer(undefined)
    }
    case ClientGet.type: {
      const value = await node.get(ClientGet.readRequest(body, ringSize))
      return ClientGet.writeAnswer(
        value === undefined ? null : serializeValue(value, Number.POSITIVE_INFINITY),
      )
    }
    case ClientDelete.type:
      return ClientDelete.writeAnswer(await node.delete(ClientDelete.readRequest(body, ringSize)))
    case ClientRange.type: {
      const { keyMin, keyMax, limit } = ClientRange.readRequest(body, ringSize)
      // One entry past the limit says whether the range holds more; owners past it are not asked.
      const entries: ClientEntry[] = []
      for await (const entry of node.iterateRangeKeys(keyMin, keyMax, { limit: limit + 1 }))
        entries.push({ key: entry.key, value: serializeValue(entry.value, Number.POSITIVE_INFINITY) })
      return ClientRange.writeAnswer({ entries: entries.slice(0, limit), truncated: entries.length > limit })
    }
    case ClientStats.type:
      ClientStats.readRequest(body, ringSize)
      return ClientStats.writeAnswer(node.getStats())
    case ClientRetrain.type:
      return ClientRetrain.writeAnswer(await node.retrainModel(ClientRetrain.readRequest(body, ringSize)))
    default:
      throw new UnknownMessageError(`client message ${type}`)
  }
}

/** Where protocols are served: a libp2p node, or its registrar (what a service is given). */
export interface ProtocolHandlers {
  /** Serves `protocol`'s incoming streams with `handler`. */
  handle(protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void>
  /** Stops serving `protocol`. */
  unhandle(protocol: string): Promise<void>
}

/**
 * Serves CLIENT_PROTOCOL for `node` on `libp2p` (the node's own, so clients dial the ring address),
 * and answers every request of an earlier release's client protocol with a ProtocolMismatchError,
 * which such a client reads as an error of that code (the framing has not changed).
 * Returns what stops serving; stopping libp2p stops it too.
 */
export async function serveClients(
  libp2p: ProtocolHandlers,
  node: LeadNode,
  options: ClientGatewayOptions = {},
): Promise<() => Promise<void>> {
  const maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE
  await libp2p.handle(
    CLIENT_PROTOCOL,
    async (stream) => {
      await serveRpc(stream, (type, body) => answer(node, type, body), {
        maxFrameSize,
        serves: (type) => CLIENT_MESSAGES.has(type),
      })
    },
    { maxInboundStreams: 32 },
  )
  for (const retired of RETIRED_CLIENT_PROTOCOLS) {
    const mismatch = `this node speaks ${CLIENT_PROTOCOL}, the client ${retired}: use a dlht client of the ring's release`
    await libp2p.handle(
      retired,
      async (stream) => {
        await serveRpc(
          stream,
          () => {
            throw new ProtocolMismatchError(mismatch)
          },
          { maxFrameSize, serves: () => true },
        )
      },
      { maxInboundStreams: 4 },
    )
  }
  return async () => {
    for (const protocol of [CLIENT_PROTOCOL, ...RETIRED_CLIENT_PROTOCOLS]) await libp2p.unhandle(protocol)
  }
}
