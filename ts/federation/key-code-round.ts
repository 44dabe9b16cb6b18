// The key code of a cluster round. Federated averaging needs every local model over one number
// line, so byte keys need one code: peers send a sample of their byte keys (KeySample), the
// coordinator learns the code from the samples merged by each peer's key count, and every peer
// trains its contribution on its keys encoded by that code.

import { RecursiveModelIndex, type RmiOptions } from '../learned/rmi.js'
import type { LearnedHash } from '../node/learned-hash.js'
import type { LocalStore } from '../node/local-store.js'
import { isByteKey, MAX_TRAINING_KEYS } from '../node/local-training.js'
import type { KeySampleAnswer } from '../protocol/key-sample.js'
import type { Contribution } from '../protocol/messages.js'
import type { NodeKey } from '../shared/keys.js'

/** Byte keys a peer sends for the round's key code at most. */
export const KEY_SAMPLE_LIMIT = 16_384
/** Keys a peer trains its contribution on at most (evenly spaced over its sorted keys). */
const MAX_CONTRIBUTION_KEYS = 100_000

/** Up to `limit` keys spread evenly over sorted keys, the first and last included (all when fewer). */
function evenSample(sorted: Float64Array, limit: number): Float64Array {
  if (sorted.length <= limit) return sorted
  const sample = new Float64Array(limit)
  const step = (sorted.length - 1) / (limit - 1)
  for (let i = 0; i < limit; i++) sample[i] = sorted[Math.round(i * step)]
  return sample
}

/** Every `length / limit`-th item of `items` (all of them when they fit). */
function evenly<T>(items: readonly T[], limit: number): T[] {
  if (items.length <= limit) return items.slice()
  const step = items.length / limit
  return Array.from({ length: limit }, (_, i) => items[Math.floor(i * step)])
}

/** Up to `limit` of the byte keys `store` holds (or of `sampleKeys`), evenly spread, and their number. */
export function sampleByteKeys(
  store: LocalStore,
  limit: number,
  sampleKeys?: readonly NodeKey[],
): KeySampleAnswer {
  const keys = (sampleKeys ?? store.sampleKeys(Number.POSITIVE_INFINITY)).filter(isByteKey)
  return { keys: evenly(keys, limit), count: keys.length }
}

/**
 * The round's key code, as a model trained on the peers' samples (each peer's share of the merged
 * sample is its share of the byte keys); null when no peer stores byte keys.
 */
export async function learnRoundKeyCode(
  samples: readonly KeySampleAnswer[],
  options: RmiOptions,
): Promise<RecursiveModelIndex | null> {
  const total = samples.reduce((sum, sample) => sum + sample.count, 0)
  if (total === 0) return null
  const size = Math.min(
    MAX_TRAINING_KEYS,
    samples.reduce((sum, sample) => sum + sample.keys.length, 0),
  )
  const merged = samples.flatMap((sample) => evenly(sample.keys, Math.round((size * sample.count) / total)))
  if (merged.length === 0) return null
  return RecursiveModelIndex.trainOnKeys(merged, options)
}

/**
 * This peer's contribution: a model of its keys (or of `sampleKeys`) and its key count, trained on
 * the keys encoded by `keyCode`'s key code (the fixed text code when null), and carrying it.
 */
export async function trainContribution(
  learnedHash: LearnedHash,
  store: LocalStore,
  keyCode: RecursiveModelIndex | null,
  sampleKeys?: readonly NodeKey[],
): Promise<Contribution> {
  // The stored keys' encodings are sorted and by the text code when no model had a code.
  const stored =
    keyCode === null && !learnedHash.model.hasKeyCode && sampleKeys === undefined ? store.encodedKeys() : null
  const keys =
    stored ?? encodeFor(learnedHash, keyCode, sampleKeys ?? store.sampleKeys(Number.POSITIVE_INFINITY))
  if (keys.length === 0) return { model: null, weight: 0 }
  const sorted = keys === stored ? keys : keys.sort()
  const trained = await RecursiveModelIndex.trainNew(
    evenSample(sorted, MAX_CONTRIBUTION_KEYS),
    learnedHash.options,
  )
  const model = keyCode === null ? trained : trained.withKeyCodeOf(keyCode)
  return { model: model.serialize(), weight: keys.length }
}

/** Keys encoded by `keyCode`'s key code, or by the fixed text code when null. */
function encodeFor(
  learnedHash: LearnedHash,
  keyCode: RecursiveModelIndex | null,
  keys: readonly NodeKey[],
): Float64Array {
  return learnedHash.encodeManyFor(keyCode ?? new RecursiveModelIndex(learnedHash.options), keys)
}
