// The client protocol: what a short-lived client (the `dlht` command) asks of one node of a ring, which
// runs the operation as its own (routing, retries) and answers. Values cross in the stored value format.

import type { NodeKey } from '../shared/keys.js'
import { encodeKeyBytes } from '../shared/keys.js'
import { readArray, readBoolean, readBytes, readNullable, readString, readUint } from './codec.js'
import { MalformedMessageError } from './errors.js'
import { type MessageCodec, readKey } from './messages.js'

/**
 * Put, get, delete, key ranges, stats and retrains, asked of one node on behalf of a client. Every
 * dlht protocol of a release has one version (ring, data, client), so a client and a ring of the same
 * release always agree; it changes when any message changes shape or meaning (3.0.0: stats carry
 * replication and tombstones).
 */
export const CLIENT_PROTOCOL = '/dlht/3.0.0/client'

/** Client protocols of earlier releases: a node answers them with ProtocolMismatchError, a client names them. */
export const RETIRED_CLIENT_PROTOCOLS: readonly string[] = ['/dlht/2.0.0/client']

/** A key and its value's bytes (as `serializeValue` writes them). */
export interface ClientEntry {
  key: NodeKey
  value: Uint8Array
}

/** Entries of a key range, at most `limit` of them in key order. */
export interface ClientRangeRequest {
  keyMin: NodeKey
  keyMax: NodeKey
  limit: number
}

export interface ClientRangeAnswer {
  entries: ClientEntry[]
  /** The range held more than `limit` entries. */
  truncated: boolean
}

function readNothing(body: unknown): undefined {
  if (body !== null && body !== undefined) throw new MalformedMessageError('expected an empty body')
  return undefined
}

function readJson(body: unknown, what: string): unknown {
  try {
    return JSON.parse(readString(body, what))
  } catch (err) {
    throw new MalformedMessageError(`${what} is not JSON`, { cause: err })
  }
}

/** Stores a value. */
export const ClientPut: MessageCodec<ClientEntry, undefined> = {
  type: 1,
  writeRequest: ({ key, value }) => [encodeKeyBytes(key), value],
  readRequest: (body) => {
    const [key, value] = readArray(body, 'put', 2)
    return { key: readKey(key), value: readBytes(value, 'value') }
  },
  writeAnswer: () => null,
  readAnswer: readNothing,
}

/** A value's bytes, or null when the key is absent. */
export const ClientGet: MessageCodec<NodeKey, Uint8Array | null> = {
  type: 2,
  writeRequest: (key) => encodeKeyBytes(key),
  readRequest: (body) => readKey(body),
  writeAnswer: (value) => value,
  readAnswer: (body) => readNullable(body, (value) => readBytes(value, 'value')),
}

/** Removes a key; answers whether it was present. */
export const ClientDelete: MessageCodec<NodeKey, boolean> = {
  type: 3,
  writeRequest: (key) => encodeKeyBytes(key),
  readRequest: (body) => readKey(body),
  writeAnswer: (deleted) => deleted,
  readAnswer: (body) => readBoolean(body, 'deleted'),
}

/** The entries whose keys lie in [keyMin, keyMax]. */
export const ClientRange: MessageCodec<ClientRangeRequest, ClientRangeAnswer> = {
  type: 4,
  writeRequest: ({ keyMin, keyMax, limit }) => [encodeKeyBytes(keyMin), encodeKeyBytes(keyMax), limit],
  readRequest: (body) => {
    const [keyMin, keyMax, limit] = readArray(body, 'range', 3)
    return { keyMin: readKey(keyMin), keyMax: readKey(keyMax), limit: readUint(limit, 'limit') }
  },
  writeAnswer: ({ entries, truncated }) => [
    entries.map(({ key, value }) => [encodeKeyBytes(key), value]),
    truncated,
  ],
  readAnswer: (body) => {
    const [entries, truncated] = readArray(body, 'range answer', 2)
    return {
      entries: readArray(entries, 'entries').map((entry) => {
        const [key, value] = readArray(entry, 'entry', 2)
        return { key: readKey(key), value: readBytes(value, 'value') }
      }),
      truncated: readBoolean(truncated, 'truncated'),
    }
  },
}

/** The node's `getStats()`, as JSON (bigints as decimal strings). */
export const ClientStats: MessageCodec<undefined, unknown> = {
  type: 5,
  writeRequest: () => null,
  readRequest: readNothing,
  writeAnswer: (stats) =>
    JSON.stringify(stats, (_, value) => (typeof value === 'bigint' ? String(value) : value)),
  readAnswer: (body) => readJson(body, 'stats'),
}

/** Runs `retrainModel({ force })` on the node; answers its result as JSON. */
export const ClientRetrain: MessageCodec<{ force: boolean }, unknown> = {
  type: 6,
  writeRequest: ({ force }) => force,
  readRequest: (body) => ({ force: readBoolean(body, 'force') }),
  writeAnswer: (result) => JSON.stringify(result),
  readAnswer: (body) => readJson(body, 'retrain result'),
}

/** Message types served on CLIENT_PROTOCOL. */
export const CLIENT_MESSAGES: ReadonlySet<number> = new Set(
  [ClientPut, ClientGet, ClientDelete, ClientRange, ClientStats, ClientRetrain].map((codec) => codec.type),
)
