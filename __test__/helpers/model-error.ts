// How far a model's positions are from the perfect ones on a key set, shared by the federated
// tests and benchmark: the perfect position of a key is its first occurrence's rank, scaled.

import type { RecursiveModelIndex } from '../../ts/index.js'

/** Mean |predict − scaled lower-bound rank| over sorted keys, in positions. */
export function meanPositionError(model: RecursiveModelIndex, keys: Float64Array): number {
  const scale = Number(model.options.hashSpaceSize) / keys.length
  const positions = model.predictMany(keys)
  let first = 0
  let total = 0
  for (let i = 0; i < keys.length; i++) {
    if (i === 0 || keys[i] !== keys[i - 1]) first = i
    total += Math.abs(Number(positions[i]) - first * scale)
  }
  return total / keys.length
}
