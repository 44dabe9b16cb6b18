// A msgpack writer for the plain data of dlht messages (arrays, numbers, bigints, strings, bytes),
// several times faster than msgpackr's general `pack` on bytes; anything else is left to msgpackr.

import type { Packr } from 'msgpackr'

/** Bytes of a fresh output chunk; a larger message gets a chunk of its own. */
const CHUNK_BYTES = 64 * 1024

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const UINT64_MAX = 2n ** 64n - 1n

/**
 * Writes values as msgpack into a shared chunk and hands out views of it. A chunk is never written
 * twice, so a view stays valid as long as it is kept; a full chunk is replaced by a new one.
 * Bigints are always 8-byte integers and numbers never are, so that a reader with
 * `int64AsType: 'bigint'` gets each back with its type.
 */
export class MsgpackWriter {
  readonly #fallback: Packr
  #buffer = Buffer.allocUnsafeSlow(CHUNK_BYTES)
  #view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset, this.#buffer.byteLength)
  /** Where the message being written starts. */
  #start = 0
  #position = 0

  /** @param fallback writes what this writer does not know (objects, maps, dates, undefined…) */
  constructor(fallback: Packr) {
    this.#fallback = fallback
  }

  /**
   * Writes `values` back to back as one msgpack array.
   * @throws what the fallback throws for a value it cannot encode (nothing is kept of the message)
   */
  encodeArray(values: readonly unknown[]): Uint8Array {
    try {
      this.#array(values)
    } catch (err) {
      this.#position = this.#start
      throw err
    }
    const bytes = this.#buffer.subarray(this.#start, this.#position)
    this.#start = this.#position
    return bytes
  }

  /** Makes room for `bytes` more bytes, moving the message written so far to a new chunk if needed. */
  #reserve(bytes: number): void {
    if (this.#position + bytes <= this.#buffer.byteLength) return
    const written = this.#position - this.#start
    const next = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, 2 * (written + bytes)))
    this.#buffer.copy(next, 0, this.#start, this.#position)
    this.#buffer = next
    this.#view = new DataView(next.buffer, next.byteOffset, next.byteLength)
    this.#start = 0
    this.#position = written
  }

  #value(value: unknown): void {
    const type = typeof value
    if (type === 'number') this.#number(value as number)
    else if (type === 'bigint') this.#bigint(value as bigint)
    else if (type === 'string') this.#string(value as string)
    else if (type === 'boolean') this.#byte(value ? 0xc3 : 0xc2)
    else if (value === null) this.#byte(0xc0)
    else if (Array.isArray(value)) this.#array(value)
    else if (value instanceof Uint8Array) this.#bytes(value)
    else this.#raw(this.#fallback.pack(value))
  }

  #byte(byte: number): void {
    this.#reserve(1)
    this.#buffer[this.#position++] = byte
  }

  #array(values: readonly unknown[]): void {
    this.#header(values.length, 0x90, 16, 0xdc)
    for (let i = 0; i < values.length; i++) this.#value(values[i])
  }

  /** A length header: fix form below `fixLimit`, else 16 or 32 bits (`code16`, `code16 + 1`). */
  #header(length: number, fixCode: number, fixLimit: number, code16: number): void {
    this.#reserve(5)
    if (length < fixLimit) this.#buffer[this.#position++] = fixCode | length
    else if (length < 0x10000) {
      this.#buffer[this.#position] = code16
      this.#view.setUint16(this.#position + 1, length)
      this.#position += 3
    } else {
      this.#buffer[this.#position] = code16 + 1
      this.#view.setUint32(this.#position + 1, length)
      this.#position += 5
    }
  }

  #number(value: number): void {
    this.#reserve(9)
    const buffer = this.#buffer
    const at = this.#position
    if (value >>> 0 === value) {
      if (value < 0x80) {
        buffer[at] = value
        this.#position = at + 1
      } else if (value < 0x100) {
        buffer[at] = 0xcc
        buffer[at + 1] = value
        this.#position = at + 2
      } else if (value < 0x10000) {
        buffer[at] = 0xcd
        this.#view.setUint16(at + 1, value)
        this.#position = at + 3
      } else {
        buffer[at] = 0xce
        this.#view.setUint32(at + 1, value)
        this.#position = at + 5
      }
    } else if (value >> 0 === value) {
      if (value >= -0x20) {
        buffer[at] = value & 0xff
        this.#position = at + 1
      } else if (value >= -0x80) {
        buffer[at] = 0xd0
        this.#view.setInt8(at + 1, value)
        this.#position = at + 2
      } else if (value >= -0x8000) {
        buffer[at] = 0xd1
        this.#view.setInt16(at + 1, value)
        this.#position = at + 3
      } else {
        buffer[at] = 0xd2
        this.#view.setInt32(at + 1, value)
        this.#position = at + 5
      }
    } else {
      buffer[at] = 0xcb
      this.#view.setFloat64(at + 1, value)
      this.#position = at + 9
    }
  }

  #bigint(value: bigint): void {
    if (value < INT64_MIN || value > UINT64_MAX) {
      this.#raw(this.#fallback.pack(value))
      return
    }
    this.#reserve(9)
    if (value <= INT64_MAX) {
      this.#buffer[this.#position] = 0xd3
      this.#view.setBigInt64(this.#position + 1, value)
    } else {
      this.#buffer[this.#position] = 0xcf
      this.#view.setBigUint64(this.#position + 1, value)
    }
    this.#position += 9
  }

  #string(value: string): void {
    const length = Buffer.byteLength(value)
    if (length >= 0x20 && length < 0x100) {
      this.#reserve(2)
      this.#buffer[this.#position++] = 0xd9
      this.#buffer[this.#position++] = length
    } else this.#header(length, 0xa0, 0x20, 0xda)
    this.#reserve(length)
    this.#buffer.write(value, this.#position, length, 'utf8')
    this.#position += length
  }

  #bytes(value: Uint8Array): void {
    const length = value.byteLength
    this.#reserve(5 + length)
    if (length < 0x100) {
      this.#buffer[this.#position++] = 0xc4
      this.#buffer[this.#position++] = length
    } else if (length < 0x10000) {
      this.#buffer[this.#position] = 0xc5
      this.#view.setUint16(this.#position + 1, length)
      this.#position += 3
    } else {
      this.#buffer[this.#position] = 0xc6
      this.#view.setUint32(this.#position + 1, length)
      this.#position += 5
    }
    this.#copy(value)
  }

  /** Copies bytes in: a loop for a few (cheaper than a native call), `set` for more. */
  #copy(bytes: Uint8Array): void {
    const length = bytes.byteLength
    if (length <= 16) {
      const buffer = this.#buffer
      const at = this.#position
      for (let i = 0; i < length; i++) buffer[at + i] = bytes[i]
    } else this.#buffer.set(bytes, this.#position)
    this.#position += length
  }

  /** Bytes already encoded as msgpack. */
  #raw(bytes: Uint8Array): void {
    this.#reserve(bytes.byteLength)
    this.#copy(bytes)
  }
}
