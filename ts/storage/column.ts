// How the typed-array columns of a store grow: by a quarter, not double, so that at most a fifth of
// a column's memory is unused (doubling leaves up to half), for a few more copies of each entry.

/** Each growth multiplies the length by this. */
const GROWTH = 1.25

type Column = Float64Array<ArrayBuffer> | Uint32Array<ArrayBuffer> | Int32Array<ArrayBuffer>

/** A longer copy of `column` with room for index `index` at least. */
export function grownColumn<T extends Column>(column: T, index: number): T {
  const length = Math.max(index + 1, Math.ceil(column.length * GROWTH))
  const bigger = new (column.constructor as new (length: number) => T)(length)
  bigger.set(column)
  return bigger
}
