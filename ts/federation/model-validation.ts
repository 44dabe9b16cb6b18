// Checks a proposed model before a node adopts it: version, digest, structure, shape, error bound.
// Structure (finite parameters, monotone leaves and root, ordered positions) is the Rust core's check.

import { createHash } from 'node:crypto'
import { DlhtError } from '../errors.js'
import { RecursiveModelIndex, type RmiOptions } from '../learned/rmi.js'

/** A model offered to the cluster: its bytes (`serialize()`), the version it would become, and its digest. */
export interface ModelProposal {
  version: number
  /** `modelDigest(bytes)`. */
  digest: string
  bytes: Uint8Array
}

/** Why a proposal was refused. */
export type RejectionReason = 'stale-version' | 'digest-mismatch' | 'corrupt' | 'wrong-shape' | 'error-bound'

/** A proposed model failed validation; `reason` says which check, the message says how. */
export class ModelRejectedError extends DlhtError {
  readonly reason: RejectionReason
  /** The failed check's own words, without the reason prefix. */
  readonly detail: string

  constructor(reason: RejectionReason, detail: string, options?: ErrorOptions) {
    super('ERR_DLHT_MODEL_REJECTED', `model rejected (${reason}): ${detail}`, options)
    this.reason = reason
    this.detail = detail
  }
}

/** What a node accepts: its own model shape, a version above its current one, an error cap. */
export interface ValidationPolicy {
  options: Required<RmiOptions>
  currentVersion: number
  /** Largest accepted leaf error bound, as a fraction of the hash space. Default 0.05. */
  maxErrorFraction?: number
}

/** The SHA-256 of a serialized model, hex: what proposals carry and receivers recompute. */
export function modelDigest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * The proposal's model if it may be adopted.
 * @throws ModelRejectedError naming the first failed check: a version not above the current one, a
 *   digest that does not match the bytes, bytes the core refuses (NaN or non-monotone parameters,
 *   damage), a model of another shape (branching factor, model types, hash space) or untrained, or
 *   a leaf error bound above `maxErrorFraction` of the hash space
 */
export function validateProposal(proposal: ModelProposal, policy: ValidationPolicy): RecursiveModelIndex {
  const { options, currentVersion, maxErrorFraction = 0.05 } = policy
  if (!Number.isSafeInteger(proposal.version) || proposal.version <= currentVersion) {
    throw new ModelRejectedError(
      'stale-version',
      `version ${proposal.version} is not above the current ${currentVersion}`,
    )
  }
  const digest = modelDigest(proposal.bytes)
  if (digest !== proposal.digest) {
    throw new ModelRejectedError(
      'digest-mismatch',
      `bytes hash to ${digest}, the proposal says ${proposal.digest}`,
    )
  }
  let model: RecursiveModelIndex
  try {
    model = RecursiveModelIndex.deserialize(proposal.bytes)
  } catch (err) {
    throw new ModelRejectedError('corrupt', (err as Error).message, { cause: err })
  }
  for (const field of ['branchingFactor', 'modelType', 'stage1ModelType', 'hashSpaceSize'] as const) {
    if (model.options[field] !== options[field]) {
      throw new ModelRejectedError(
        'wrong-shape',
        `${field} is ${model.options[field]}, this node uses ${options[field]}`,
      )
    }
  }
  if (!model.isTrained) throw new ModelRejectedError('wrong-shape', 'the model is untrained')
  const limit = Number(options.hashSpaceSize) * maxErrorFraction
  const { maxError } = model.stats()
  if (!(maxError <= limit)) {
    throw new ModelRejectedError('error-bound', `max error ${maxError} is above the limit ${limit}`)
  }
  return model
}
