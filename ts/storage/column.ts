// A typed column of a store (one number per entry id) kept in fixed-size pages: growing it adds a
// page, so it is never copied, never holds more than one page unused, and leaves no freed array
// behind in the allocator (where RSS would keep it).

const PAGE_BITS = 12
const PAGE_LENGTH = 1 << PAGE_BITS
const INDEX_MASK = PAGE_LENGTH - 1

type Page = Float64Array | Uint32Array

/** Numbers by index, in pages of `make`'s typed array; indices below `length` read 0 until set. */
export class PagedColumn<T extends Page> {
  readonly #make: (length: number) => T
  #pages: T[] = []

  constructor(make: (length: number) => T) {
    this.#make = make
  }

  /** How many indices are addressable. */
  get length(): number {
    return this.#pages.length << PAGE_BITS
  }

  get(index: number): number {
    return this.#pages[index >>> PAGE_BITS][index & INDEX_MASK]
  }

  set(index: number, value: number): void {
    this.#pages[index >>> PAGE_BITS][index & INDEX_MASK] = value
  }

  /** Makes `index` addressable. */
  reserve(index: number): void {
    while (index >= this.length) this.#pages.push(this.#make(PAGE_LENGTH))
  }

  clear(): void {
    this.#pages = []
  }
}

export const float64Column = (): PagedColumn<Float64Array> =>
  new PagedColumn((length) => new Float64Array(length))

export const uint32Column = (): PagedColumn<Uint32Array> =>
  new PagedColumn((length) => new Uint32Array(length))
