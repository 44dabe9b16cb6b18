// Loads the platform's prebuilt addon through the loader napi-rs generates in native/, after checking
// the Node.js version; a missing addon becomes a NativeBindingError that names the platform and the fix.

import type * as Binding from '../native/index.js'
import { assertSupportedNode, nativeBindingError } from './platform.js'

assertSupportedNode()

let binding: typeof Binding
try {
  binding = await import('../native/index.js')
} catch (err) {
  throw nativeBindingError(err)
}

export const {
  NativeCurve,
  NativeReservoir,
  NativeRmi,
  encodeBigint,
  encodeBytes,
  encodeBytesBatch,
  encodeString,
  federatedAverage,
} = binding
/** Version of the key encoding the addon implements (recorded in data directories and protocol ids). */
export const KEY_ENCODING_VERSION = binding.KEY_ENCODING_VERSION
export type NativeCurve = Binding.NativeCurve
export type NativeReservoir = Binding.NativeReservoir
export type NativeRmi = Binding.NativeRmi
export type { ModelParts, RmiParts, RootParts } from '../native/index.js'
