// Trains a model on one peer's own keys. Byte keys get a key code learned from the stored keys
// themselves (the reservoir only keeps their codes, which a new code cannot reuse).

import type { Key } from '../learned/keys.js'
import { RecursiveModelIndex } from '../learned/rmi.js'
import type { NodeKey } from '../shared/keys.js'
import type { LearnedHash } from './learned-hash.js'
import type { LocalStore } from './local-store.js'

/** Most stored keys a model (and its key code) is trained on, evenly spread over the ring order. */
export const MAX_TRAINING_KEYS = 262_144

/** Whether a key is encoded by a key code: strings and byte arrays. */
export function isByteKey(key: NodeKey): key is string | Uint8Array {
  return typeof key === 'string' || key instanceof Uint8Array
}

/** A trained model and the number of keys it was trained on. */
export interface TrainedModel {
  model: RecursiveModelIndex
  trainingDataSize: number
}

/**
 * A new model of this peer's keys, or null with none: when byte keys are among `sampleKeys` (or,
 * without them, among the stored keys), trained with a key code learned from them; otherwise on
 * `sampleKeys` or the reservoir sample (`reservoir()`), encoded as before.
 */
export async function trainOwnModel(
  learnedHash: LearnedHash,
  store: LocalStore,
  sampleKeys: readonly NodeKey[] | undefined,
  reservoir: () => Float64Array,
): Promise<TrainedModel | null> {
  const options = learnedHash.options
  if (learnedHash.curve === null) {
    const keys = sampleKeys ?? store.sampleKeys(MAX_TRAINING_KEYS)
    if (keys.some(isByteKey)) {
      const model = await RecursiveModelIndex.trainOnKeys(keys as Key[], options)
      return { model, trainingDataSize: keys.length }
    }
  }
  const keys = sampleKeys === undefined ? reservoir() : learnedHash.encodeMany(sampleKeys).sort()
  if (keys.length === 0) return null
  return { model: await RecursiveModelIndex.trainNew(keys, options), trainingDataSize: keys.length }
}
