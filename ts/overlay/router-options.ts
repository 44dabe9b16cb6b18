// The ranges of chordRouter's options, checked when the router is built (so at `new LeadNode()`),
// and the one rule that ties them to LeadConfig: a value must fit in one frame.

import { InvalidArgumentError } from '../errors.js'
import type { LeadConfig } from '../node/config.js'
import { InvalidConfigError } from '../shared/errors.js'

/** The numeric options of chordRouter, as `ChordRouterOptions` declares them. */
export interface ChordRouterNumbers {
  successorListLength?: number
  maxForwards?: number
  callTimeout?: number
  maxFrameSize?: number
  stabilizeIntervalMs?: number
  hintMaxBytes?: number
  hintMaxAgeMs?: number
}

/** Bytes of a data message beyond its one record's key and value (envelope, header, tuple). */
export const FRAME_SLACK = 1024

/** [min, max] and unit of every numeric option. */
export const CHORD_ROUTER_RANGES: Record<keyof ChordRouterNumbers, [number, number, string]> = {
  successorListLength: [1, 64, 'vnodes'],
  maxForwards: [0, 32, 'hops'],
  // setTimeout overflows past 2^31 - 1 ms; an hour is already longer than any caller waits.
  callTimeout: [50, 3_600_000, 'milliseconds'],
  maxFrameSize: [64 * 1024, 1024 * 1024 * 1024, 'bytes'],
  stabilizeIntervalMs: [50, 86_400_000, 'milliseconds'],
  hintMaxBytes: [0, 2 ** 40, 'bytes'],
  hintMaxAgeMs: [0, 7 * 86_400_000, 'milliseconds'],
}

/**
 * Checks chordRouter's options against their ranges and LeadConfig's value and key limits against
 * the frame size: every record must travel in one frame, however its batch is split.
 * @throws InvalidArgumentError (code ERR_DLHT_INVALID_CONFIG) naming the option, or
 * InvalidConfigError naming `maxValueBytes`
 */
export function checkChordRouterOptions(options: ChordRouterNumbers, config: Readonly<LeadConfig>): void {
  for (const [name, [min, max, unit]] of Object.entries(CHORD_ROUTER_RANGES)) {
    const value = options[name as keyof ChordRouterNumbers]
    if (value === undefined) continue
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(
        `chordRouter option ${name} must be an integer number of ${unit} in [${min}, ${max}], got ${String(value)}`,
        'ERR_DLHT_INVALID_CONFIG',
      )
    }
  }
  const maxFrameSize = options.maxFrameSize ?? 4 * 1024 * 1024
  const room = maxFrameSize - config.maxKeyBytes - FRAME_SLACK
  if (config.maxValueBytes > room) {
    throw new InvalidConfigError(
      'maxValueBytes',
      `must fit in one frame: at most ${room} bytes with a maxFrameSize of ${maxFrameSize} (chordRouter({ maxFrameSize }) raises it), got ${config.maxValueBytes}`,
    )
  }
}
