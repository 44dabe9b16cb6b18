// A node's log: each record goes to @libp2p/logger (namespace dlht:node, so DEBUG=dlht* prints it) and
// to the node's 'log' event as a LogRecord { level, message, peerId }, whose string form is the message.

import { logger } from '@libp2p/logger'

/** How much an operator should care: error (data at risk), warn (refused or retried), info, debug. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug'

/**
 * The detail of a LeadNode's 'log' event. `String(record)` is the message, as the event's detail
 * was a plain string before it carried levels.
 */
export interface LogRecord {
  level: LogLevel
  message: string
  /** The node that logged it. */
  peerId: string
  /** When it was logged (ms since the epoch). */
  time: number
  /** The message. */
  toString(): string
}

/** A function that logs `message` at `level` for the node of `peerId()` and dispatches it on `target`. */
export function nodeLog(
  target: EventTarget,
  peerId: () => string,
): (level: LogLevel, message: string) => void {
  const debug = logger('dlht:node')
  return (level, message) => {
    if (level === 'error') debug.error('%s', message)
    else if (level === 'debug') debug.trace('%s', message)
    else debug('%s: %s', level, message)
    const record: LogRecord = {
      level,
      message,
      peerId: peerId(),
      time: Date.now(),
      toString: () => message,
    }
    target.dispatchEvent(new CustomEvent('log', { detail: record }))
  }
}
