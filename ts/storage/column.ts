// How the typed-array columns of a store grow: doubling. Their unused tail costs no RSS (a large
// array's zeroed pages are mapped only when written), while growing by less leaves more freed
// copies behind in the allocator's heap, which RSS keeps (measured: 1.25x growth raised RSS at 10M).

type Column = Float64Array<ArrayBuffer> | Uint32Array<ArrayBuffer> | Int32Array<ArrayBuffer>

/** A longer copy of `column` with room for index `index` at least. */
export function grownColumn<T extends Column>(column: T, index: number): T {
  const length = Math.max(index + 1, column.length * 2)
  const bigger = new (column.constructor as new (length: number) => T)(length)
  bigger.set(column)
  return bigger
}
