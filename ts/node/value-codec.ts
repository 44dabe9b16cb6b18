// Values are stored and sent in V8's structured-clone wire format (what `v8.serialize` writes):
// exactly the values `structuredClone` accepts. Plain JSON-like values take a JavaScript fast path
// that writes and reads that same format (10x cheaper than V8's per-call serializer objects);
// anything else goes through `node:v8` itself, so both paths always agree.

import { deserialize, serialize } from 'node:v8'
import { CorruptValueError, ValueNotSerializableError, ValueTooLargeError } from '../shared/errors.js'

/** Tags of V8's ValueSerializer format (src/objects/value-serializer.cc). */
enum Tag {
  Version = 0xff,
  Padding = 0x00,
  Undefined = 0x5f, // '_'
  Null = 0x30, // '0'
  True = 0x54, // 'T'
  False = 0x46, // 'F'
  Int32 = 0x49, // 'I'
  Uint32 = 0x55, // 'U'
  Double = 0x4e, // 'N'
  Utf8String = 0x53, // 'S'
  OneByteString = 0x22, // '"'
  TwoByteString = 0x63, // 'c'
  BeginObject = 0x6f, // 'o'
  EndObject = 0x7b, // '{'
  BeginDenseArray = 0x41, // 'A'
  EndDenseArray = 0x24, // '$'
  Date = 0x44, // 'D'
}

/** The format version the fast path writes; it reads versions from 13 on (same tags for its subset). */
const FORMAT_VERSION = 15
const OLDEST_READABLE_VERSION = 13
/** Larger arrays and deeper nesting take V8's path (whose per-call cost no longer matters there). */
const MAX_FAST_ARRAY = 256
const MAX_FAST_DEPTH = 32
/** Strings up to this length are copied by a JavaScript loop, cheaper than a call into Buffer's natives. */
const SHORT_STRING = 32

/** Thrown inside the fast paths when a value is outside their subset: the caller falls back to V8. */
const NOT_FAST = Symbol('not fast')

let scratch = Buffer.allocUnsafe(64 * 1024)
let at = 0
const seen = new Set<object>()

function reserve(bytes: number): void {
  if (at + bytes <= scratch.length) return
  const grown = Buffer.allocUnsafe(Math.max(scratch.length * 2, at + bytes))
  scratch.copy(grown, 0, 0, at)
  scratch = grown
}

function writeVarint(value: number): void {
  reserve(5)
  while (value >= 0x80) {
    scratch[at++] = (value & 0x7f) | 0x80
    value >>>= 7
  }
  scratch[at++] = value
}

function varintLength(value: number): number {
  let length = 1
  while (value >= 0x80) {
    value >>>= 7
    length++
  }
  return length
}

function writeString(text: string): void {
  let oneByte = true
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0xff) {
      oneByte = false
      break
    }
  }
  if (oneByte) {
    reserve(1)
    scratch[at++] = Tag.OneByteString
    writeVarint(text.length)
    reserve(text.length)
    if (text.length <= SHORT_STRING) for (let i = 0; i < text.length; i++) scratch[at++] = text.charCodeAt(i)
    else at += scratch.write(text, at, 'latin1')
    return
  }
  const byteLength = text.length * 2
  // V8 aligns two-byte string data to an even offset with a padding tag.
  reserve(2)
  if ((at + 1 + varintLength(byteLength)) & 1) scratch[at++] = Tag.Padding
  scratch[at++] = Tag.TwoByteString
  writeVarint(byteLength)
  reserve(byteLength)
  at += scratch.write(text, at, 'utf16le')
}

function writeFast(value: unknown, depth: number): void {
  switch (typeof value) {
    case 'string':
      writeString(value)
      return
    case 'number':
      reserve(9)
      if ((value | 0) === value && !Object.is(value, -0)) {
        scratch[at++] = Tag.Int32
        writeVarint(((value << 1) ^ (value >> 31)) >>> 0)
      } else {
        scratch[at++] = Tag.Double
        at = scratch.writeDoubleLE(value, at)
      }
      return
    case 'boolean':
      reserve(1)
      scratch[at++] = value ? Tag.True : Tag.False
      return
    case 'undefined':
      reserve(1)
      scratch[at++] = Tag.Undefined
      return
    case 'object':
      if (value === null) {
        reserve(1)
        scratch[at++] = Tag.Null
        return
      }
      if (depth >= MAX_FAST_DEPTH || seen.has(value)) throw NOT_FAST
      seen.add(value)
      writeObject(value, depth + 1)
      return
    default:
      throw NOT_FAST
  }
}

function writeObject(value: object, depth: number): void {
  const prototype = Object.getPrototypeOf(value)
  if (prototype === Object.prototype) {
    const keys = Object.keys(value)
    reserve(1)
    scratch[at++] = Tag.BeginObject
    for (const key of keys) {
      writeString(key)
      writeFast((value as Record<string, unknown>)[key], depth)
    }
    reserve(1)
    scratch[at++] = Tag.EndObject
    writeVarint(keys.length)
  } else if (prototype === Array.prototype) {
    const array = value as unknown[]
    if (array.length > MAX_FAST_ARRAY || Object.keys(array).length !== array.length) throw NOT_FAST
    reserve(1)
    scratch[at++] = Tag.BeginDenseArray
    writeVarint(array.length)
    for (let i = 0; i < array.length; i++) {
      if (!(i in array)) throw NOT_FAST
      writeFast(array[i], depth)
    }
    reserve(1)
    scratch[at++] = Tag.EndDenseArray
    writeVarint(0)
    writeVarint(array.length)
  } else if (prototype === Date.prototype) {
    reserve(9)
    scratch[at++] = Tag.Date
    at = scratch.writeDoubleLE((value as Date).getTime(), at)
  } else {
    throw NOT_FAST
  }
}

let writing = false

function serializeFast(value: unknown): Uint8Array | undefined {
  // A getter that serializes while we write would share the scratch buffer: it takes V8's path.
  if (writing) return undefined
  writing = true
  at = 0
  try {
    reserve(2)
    scratch[at++] = Tag.Version
    scratch[at++] = FORMAT_VERSION
    writeFast(value, 0)
    const bytes = Buffer.allocUnsafe(at)
    scratch.copy(bytes, 0, 0, at)
    return bytes
  } catch (err) {
    if (err === NOT_FAST) return undefined
    throw err
  } finally {
    seen.clear()
    writing = false
  }
}

/**
 * Serializes a value for storage.
 * @throws ValueNotSerializableError for undefined (get's answer for "absent") and non-cloneable values
 * @throws ValueTooLargeError when the serialized form exceeds `maxBytes`
 */
export function serializeValue(value: unknown, maxBytes: number): Uint8Array {
  if (value === undefined) {
    throw new ValueNotSerializableError(
      'value must not be undefined: get() returns undefined for absent keys',
    )
  }
  let bytes = serializeFast(value)
  if (bytes === undefined) {
    try {
      bytes = serialize(value)
    } catch (err) {
      throw new ValueNotSerializableError(`value cannot be serialized: ${(err as Error).message}`, {
        cause: err,
      })
    }
  }
  if (bytes.length > maxBytes) throw new ValueTooLargeError(bytes.length, maxBytes)
  return bytes
}

let input: Uint8Array = new Uint8Array(0)
/** `input` as a Buffer (for its string and double readers), made only when one is needed. */
let inputBuffer: Buffer | undefined
let offset = 0
/** Where the value being read ends in `input`. */
let end = 0

function buffer(): Buffer {
  inputBuffer ??= Buffer.from(input.buffer, input.byteOffset, input.byteLength)
  return inputBuffer
}

function readTag(): number {
  let tag = Tag.Padding
  while (tag === Tag.Padding) {
    if (offset >= end) throw NOT_FAST
    tag = input[offset++]
  }
  return tag
}

function readVarint(): number {
  const first = input[offset]
  if (first < 0x80 && offset < end) {
    offset++
    return first
  }
  let value = 0
  let shift = 0
  for (;;) {
    if (offset >= end || shift > 28) throw NOT_FAST
    const byte = input[offset++]
    value += (byte & 0x7f) * 2 ** shift
    if (byte < 0x80) return value
    shift += 7
  }
}

/** Moves past `length` bytes and returns where they start. */
function skip(length: number): number {
  const start = offset
  offset += length
  if (offset > end) throw NOT_FAST
  return start
}

function readOneByteString(): string {
  const length = readVarint()
  const start = skip(length)
  if (length > SHORT_STRING) return buffer().toString('latin1', start, offset)
  let text = ''
  for (let i = start; i < offset; i++) text += String.fromCharCode(input[i])
  return text
}

function readFast(depth: number): unknown {
  const tag = readTag()
  switch (tag) {
    case Tag.Undefined:
      return undefined
    case Tag.Null:
      return null
    case Tag.True:
      return true
    case Tag.False:
      return false
    case Tag.Int32: {
      const zigzag = readVarint()
      return zigzag % 2 === 0 ? zigzag / 2 : -(zigzag + 1) / 2
    }
    case Tag.Uint32:
      return readVarint()
    case Tag.Double:
      return buffer().readDoubleLE(skip(8))
    case Tag.OneByteString:
      return readOneByteString()
    case Tag.TwoByteString: {
      const length = readVarint()
      return buffer().toString('utf16le', skip(length), offset)
    }
    case Tag.Utf8String: {
      const length = readVarint()
      return buffer().toString('utf8', skip(length), offset)
    }
    case Tag.Date:
      return new Date(buffer().readDoubleLE(skip(8)))
    case Tag.BeginObject:
      if (depth >= MAX_FAST_DEPTH) throw NOT_FAST
      return readObject(depth + 1)
    case Tag.BeginDenseArray:
      if (depth >= MAX_FAST_DEPTH) throw NOT_FAST
      return readArray(depth + 1)
    default:
      throw NOT_FAST
  }
}

function readObject(depth: number): Record<string, unknown> {
  const object: Record<string, unknown> = {}
  let count = 0
  for (;;) {
    if (input[offset] === Tag.EndObject && offset < end) {
      offset++
      if (readVarint() !== count) throw NOT_FAST
      return object
    }
    const key = readFast(depth)
    if (typeof key !== 'string' && typeof key !== 'number') throw NOT_FAST
    const name = String(key)
    if (name === '__proto__') throw NOT_FAST
    object[name] = readFast(depth)
    count++
  }
}

function readArray(depth: number): unknown[] {
  const length = readVarint()
  if (length > MAX_FAST_ARRAY) throw NOT_FAST
  const array = new Array(length)
  for (let i = 0; i < length; i++) array[i] = readFast(depth)
  if (readTag() !== Tag.EndDenseArray || readVarint() !== 0 || readVarint() !== length) throw NOT_FAST
  return array
}

/**
 * Reads a value back from `serializeValue` (or `v8.serialize`) output, `bytes[start..stop)`: a
 * fresh copy on every call.
 * @throws CorruptValueError when the bytes are not such output
 */
export function deserializeValue(bytes: Uint8Array, start = 0, stop = bytes.length): unknown {
  input = bytes
  inputBuffer = bytes instanceof Buffer ? bytes : undefined
  offset = start
  end = stop
  try {
    if (input[start] === Tag.Version && start < stop) {
      offset = start + 1
      const version = readVarint()
      if (version >= OLDEST_READABLE_VERSION && version <= FORMAT_VERSION) return readFast(0)
    }
  } catch (err) {
    if (err !== NOT_FAST) throw new CorruptValueError('value bytes do not decode', { cause: err })
  }
  try {
    return deserialize(start === 0 && stop === bytes.length ? bytes : bytes.subarray(start, stop))
  } catch (err) {
    throw new CorruptValueError(`value bytes do not decode: ${(err as Error).message}`, { cause: err })
  }
}
