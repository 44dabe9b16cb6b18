// The events a LeadNode dispatches, as a map from name to event type, so that `addEventListener`
// knows each event's detail (LeadNode is a TypedEventEmitter, as libp2p's services are).

import type { LogRecord } from './node-log.js'

/** The detail of a 'retrain' event: a model this node now routes by, trained here or adopted from the ring. */
export interface ModelInstalled {
  modelVersion: number
  /** Keys the model was trained on. */
  trainingDataSize: number
}

/** Every event of a LeadNode (and of the `dlht()` libp2p service), by name. */
export interface LeadNodeEvents {
  /** A log record (see LogRecord); `String(event.detail)` is its message. */
  log: CustomEvent<LogRecord>
  /** A new model version was installed: by `retrainModel`, an automatic retrain, or a ring rollout. */
  retrain: CustomEvent<ModelInstalled>
  /** An automatic retrain failed (a retrain the caller asked for rejects its promise instead). */
  error: CustomEvent<Error>
}
