// The messages of the dlht protocols, and which ones each protocol serves.

import {
  Delete,
  DeleteLocal,
  Get,
  GetLocal,
  GetStamped,
  Migrate,
  Put,
  RepairDigest,
  Replicate,
  Scan,
  ScanLocal,
  ScanStamped,
} from './data-messages.js'
import { KeySample } from './key-sample.js'
import type { MessageCodec } from './message-codec.js'
import {
  HandOverPart,
  HandOverRecords,
  HandOverTaken,
  Leave,
  LoadSample,
  MoveVnode,
  Neighbours,
  Notify,
  Ping,
  Step,
  SuccessorLeft,
} from './ring-messages.js'
import { Abort, Commit, Contribute, GetConfig, Prepare, RolloutStatus } from './rollout-messages.js'

export * from './data-messages.js'
export * from './message-codec.js'
export * from './ring-messages.js'
export * from './rollout-messages.js'

/** Ring maintenance and model rollout messages. */
export const RING_CODECS: ReadonlyArray<MessageCodec<unknown, unknown>> = [
  Ping,
  GetConfig,
  Step,
  Neighbours,
  Notify,
  Leave,
  SuccessorLeft,
  Contribute,
  Prepare,
  Commit,
  Abort,
  RolloutStatus,
  LoadSample,
  MoveVnode,
  HandOverTaken,
  HandOverPart,
  HandOverRecords,
  KeySample,
] as unknown as ReadonlyArray<MessageCodec<unknown, unknown>>
/** Data plane messages. */
export const DATA_CODECS: ReadonlyArray<MessageCodec<unknown, unknown>> = [
  Put,
  Get,
  Delete,
  Scan,
  GetLocal,
  DeleteLocal,
  ScanLocal,
  Migrate,
  Replicate,
  GetStamped,
  RepairDigest,
  ScanStamped,
] as unknown as ReadonlyArray<MessageCodec<unknown, unknown>>

/** Message types served on each protocol. */
export const RING_MESSAGES: ReadonlySet<number> = new Set(RING_CODECS.map((codec) => codec.type))
export const DATA_MESSAGES: ReadonlySet<number> = new Set(DATA_CODECS.map((codec) => codec.type))
