// Answers cut to fit a frame: a Get answer carries the values of a prefix of its keys (the caller
// asks again for the rest), so values of any size under maxValueBytes can be read in any number.

/** Estimated wire bytes of one value in an answer beyond its bytes (msgpack header, slot). */
const VALUE_OVERHEAD = 16

/** The payload an answer may carry on a stream of `maxFrameSize`: half a frame, the rest is slack. */
export function answerBudget(maxFrameSize: number): number {
  return Math.floor(maxFrameSize / 2)
}

/**
 * The longest prefix of `values` whose bytes fit `budget`, and never less than one value (a value
 * fits a frame by itself: see `checkChordRouterOptions`). `values` itself when all of it fits.
 */
export function valuesWithin<T extends Uint8Array | undefined>(values: T[], budget: number): T[] {
  let bytes = 0
  for (let i = 0; i < values.length; i++) {
    bytes += (values[i]?.byteLength ?? 0) + VALUE_OVERHEAD
    if (bytes > budget && i > 0) return values.slice(0, i)
  }
  return values
}
