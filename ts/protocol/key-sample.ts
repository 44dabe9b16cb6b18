// The KeySample message of a cluster round: a peer's byte keys, evenly spread over its ring order,
// and how many it stores, so that the coordinator learns one key code for the whole ring.

import { decodeKeyBytes, encodeKeyBytes } from '../shared/keys.js'
import { readArray, readBytes, readUint } from './codec.js'
import { MalformedMessageError } from './errors.js'
import type { MessageCodec } from './message-codec.js'

export interface KeySampleRequest {
  /** The model version the round would install. */
  version: number
  /** Most keys to send. */
  limit: number
}

/** Up to `limit` of a peer's byte keys (strings and byte arrays) and the number it stores. */
export interface KeySampleAnswer {
  keys: Array<string | Uint8Array>
  count: number
}

/** Asks a peer for a sample of its byte keys. */
export const KeySample: MessageCodec<KeySampleRequest, KeySampleAnswer> = {
  type: 28,
  writeRequest: (request) => [request.version, request.limit],
  readRequest: (body) => {
    const [version, limit] = readArray(body, 'key sample', 2)
    return { version: readUint(version, 'model version'), limit: readUint(limit, 'limit') }
  },
  writeAnswer: (answer) => [answer.keys.map(encodeKeyBytes), answer.count],
  readAnswer: (body) => {
    const [keys, count] = readArray(body, 'key sample answer', 2)
    return {
      keys: readArray(keys, 'sampled keys').map((bytes) => {
        const key = decodeKeyBytes(readBytes(bytes, 'sampled key'))
        if (typeof key !== 'string' && !(key instanceof Uint8Array))
          throw new MalformedMessageError('a sampled key must be a string or byte array')
        return key
      }),
      count: readUint(count, 'byte key count'),
    }
  },
}
