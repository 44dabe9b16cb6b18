// Space-filling curves (Hilbert, Z-order) over a bounded box, computed in Rust: they give
// multi-dimensional keys a one-dimensional order that keeps nearby points nearby.

import { callNative, InvalidArgumentError, InvalidKeyError } from '../errors.js'
import { NativeCurve } from '../native.js'

/** The space-filling curve that linearises points. */
export type CurveKind = 'hilbert' | 'z-order'

/** Options of `new SpaceFillingCurve`. */
export interface CurveOptions {
  /** Default 'hilbert' (better locality: fewer intervals per box). */
  kind?: CurveKind
  /** Lower bound of each dimension, e.g. [-90, -180] for [lat, lon]. */
  min: number[]
  /** Upper bound of each dimension. */
  max: number[]
  /** Resolution per dimension; dims * bitsPerDim <= 53. Default floor(53 / dims), at most 26. */
  bitsPerDim?: number
}

export const DEFAULT_MAX_INTERVALS = 64

function toPoint(point: readonly number[] | Float64Array, dims: number, what: string): Float64Array {
  if (!(point instanceof Float64Array) && !Array.isArray(point)) {
    throw new InvalidKeyError(`${what} must be an array of ${dims} numbers`)
  }
  if (point.length !== dims)
    throw new InvalidKeyError(`${what} must have ${dims} coordinates, got ${point.length}`)
  for (const coordinate of point) {
    if (typeof coordinate !== 'number' || !Number.isFinite(coordinate)) {
      throw new InvalidKeyError(`${what} coordinates must be finite numbers`)
    }
  }
  return point instanceof Float64Array ? point : Float64Array.from(point)
}

/** Maps points of a box to curve indices (integers below 2^53) and boxes to index intervals. */
export class SpaceFillingCurve {
  readonly kind: CurveKind
  readonly dims: number
  readonly bitsPerDim: number
  #native: NativeCurve

  constructor(options: CurveOptions) {
    if (typeof options !== 'object' || options === null)
      throw new InvalidArgumentError('curve options required')
    const { kind = 'hilbert', min, max, bitsPerDim } = options
    if (!Array.isArray(min) || !Array.isArray(max))
      throw new InvalidArgumentError('min and max must be arrays')
    this.#native = callNative(() => new NativeCurve(kind, min, max, bitsPerDim))
    this.kind = kind
    this.dims = this.#native.dims
    this.bitsPerDim = this.#native.bitsPerDim
  }

  /** Curve index of a point (coordinates outside the bounds clamp to them). */
  index(point: readonly number[] | Float64Array): number {
    const coordinates = toPoint(point, this.dims, 'point')
    return callNative(() => this.#native.index(coordinates))
  }

  /** Curve indices of many points given flat, row-major. */
  indexMany(points: Float64Array): Float64Array {
    if (!(points instanceof Float64Array))
      throw new InvalidArgumentError('points must be a flat Float64Array')
    return callNative(() => this.#native.indexMany(points))
  }

  /**
   * Inclusive index intervals whose union holds every point of the box [min, max]: a superset,
   * so callers filter exactly; at most `maxIntervals` of them, sorted and disjoint.
   */
  decomposeBox(
    min: readonly number[],
    max: readonly number[],
    maxIntervals = DEFAULT_MAX_INTERVALS,
  ): Array<[number, number]> {
    const lo = toPoint(min, this.dims, 'box min')
    const hi = toPoint(max, this.dims, 'box max')
    if (!Number.isSafeInteger(maxIntervals) || maxIntervals < 1) {
      throw new InvalidArgumentError(`maxIntervals must be a positive integer, got ${maxIntervals}`)
    }
    const flat = callNative(() => this.#native.decomposeBox(lo, hi, maxIntervals))
    const intervals: Array<[number, number]> = []
    for (let i = 0; i < flat.length; i += 2) intervals.push([flat[i], flat[i + 1]])
    return intervals
  }
}
