// The one binary search of the TypeScript side: where a sorted sequence stops satisfying a predicate.

/**
 * The first index in `[0, length)` at which `before` is false, given that it holds for a prefix of
 * the indexes and for none after (`length` when it holds for all). With `before = (i) => a[i] < x`
 * on ascending `a`, the lower bound of `x`.
 */
export function partitionPoint(length: number, before: (index: number) => boolean): number {
  let low = 0
  let high = length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (before(middle)) low = middle + 1
    else high = middle
  }
  return low
}
