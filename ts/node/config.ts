// LeadConfig: a node's ring, model and training settings with their defaults, and what a Node
// embedding needs (data directory, size limits, point keys). Validated once, naming the offending field.

import { isIP } from 'node:net'
import type { CurveKind } from '../learned/curve.js'
import type { ModelType } from '../learned/rmi.js'
import { readPrivateKey } from '../overlay/identity.js'
import { parsePeerIds, parseSwarmKey } from '../overlay/private-network.js'
import { InvalidConfigError } from '../shared/errors.js'
import { MAX_KEY_BYTES_LIMIT } from '../shared/keys.js'
import { resolveTrainingConfig, type TrainingConfig } from '../training/training-config.js'

/** Point keys: their dimensions' bounds and the curve that linearises them. */
export interface SpatialConfig {
  /** Lower bound of each dimension, e.g. [-180, -90] for [lon, lat]. */
  min: number[]
  /** Upper bound of each dimension. */
  max: number[]
  /** Default 'hilbert'. */
  kind?: CurveKind
  /** Curve resolution per dimension (dims * bitsPerDim <= 53); default floor(53 / dims), at most 26. */
  bitsPerDim?: number
}

/** Configuration of a LeadNode. Every field is optional in `new LeadNode(config)`. */
export interface LeadConfig {
  /** Address the node listens on (used by the overlay). Default 'localhost'. */
  ip: string
  /** TCP port (used by the overlay); 0 picks a free port. Default 9000. */
  basePort: number
  /** Virtual nodes per physical node. Default 3. */
  numVirtualNodes: number
  /** "host:port" or multiaddr of a node of an existing ring; null starts a new ring. Default null. */
  bootstrapPeer: string | null
  /** Size of the ring: positions lie in [0, hashSpaceSize). Default 2^62. */
  hashSpaceSize: bigint
  /** Leaf models of the RMI. Default 100. */
  branchingFactor: number
  /** Leaf model type. Default 'linear'. */
  modelType: ModelType
  /** Root model type. Default 'linear'. */
  stage1ModelType: ModelType
  /** Seconds between stabilization rounds of the overlay. Default 30. */
  stabilizeInterval: number
  /** New keys between two checks of the training triggers. Default 100. */
  modelUpdateThreshold: number
  /** Most background tasks (remote calls of one operation, hand-offs) run at once. Default 10. */
  maxWorkers: number
  /** Directory of a durable LMDB store; null keeps entries in memory only. Default null. */
  dataDir: string | null
  /**
   * What an acknowledged write on a `dataDir` survives. `'process'`: a crash of the process (the
   * write is committed to LMDB, flushed to disk a moment later); `'power'`: a power loss too (the
   * write is acknowledged once flushed to disk, at a cost in write throughput). Default 'process'.
   */
  durability: 'process' | 'power'
  /** Largest serialized value accepted, in bytes. Default 1 MiB. */
  maxValueBytes: number
  /** Largest key accepted, in bytes of its canonical form (LMDB's key limit bounds it). Default 1024. */
  maxKeyBytes: number
  /** Point keys (number[]) linearised by a space-filling curve; null for scalar keys. Default null. */
  spatial: SpatialConfig | null
  /** Retrain by itself when a training trigger fires. Default true. */
  autoRetrain: boolean
  /**
   * Join the network: listen on `ip:basePort` over libp2p and form a Chord ring with `bootstrapPeer`.
   * false keeps the node in-process (a single-node ring, no socket). Default true.
   */
  network: boolean
  /** Port of an HTTP endpoint serving Prometheus metrics at /metrics on `ip` (0 picks one); null: none. Default null. */
  metricsPort: number | null
  /**
   * Copies of every entry on a ring: on the owner of its position and on the next
   * `replicationFactor - 1` distinct peers along the ring. 1 keeps a single copy. Default 3.
   */
  replicationFactor: number
  /** Replicas (the owner included) that store a write or delete before it is acknowledged. Default a majority. */
  writeQuorum: number
  /** Replicas a read asks; the newest answer wins. Default 1 (the owner, or the next replica when it is down). */
  readQuorum: number
  /** Training triggers of the default AdaptiveTrainingManager (seed TrainingConfig). */
  training: TrainingConfig
  /**
   * The ring's private-network key (swarm.key text or bytes, see `generateSwarmKey`): only peers
   * with the same key can connect. null: an open ring, which anyone who reaches the port can join. Default null.
   */
  swarmKey: string | Uint8Array | null
  /** This peer's identity, as libp2p protobuf key bytes (`exportPrivateKey`); null: see peerKeyFile. Default null. */
  privateKey: Uint8Array | null
  /** File that keeps this peer's identity (created on first start), so a restart keeps its PeerId. Default null. */
  peerKeyFile: string | null
  /** Peer ids allowed to connect (libp2p connection gater), on top of the swarm key; null: any. Default null. */
  allowedPeers: string[] | null
}

/** What `new LeadNode()` accepts: any subset of LeadConfig, training as a subset too. */
export type LeadConfigInit = Partial<Omit<LeadConfig, 'training'>> & { training?: Partial<TrainingConfig> }

export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024

/** Largest `maxValueBytes`; a node on a ring must also fit a value in one frame (see chordRouter). */
export const MAX_VALUE_BYTES_LIMIT = 256 * 1024 * 1024
/**
 * Bounds of `stabilizeInterval`, in seconds: below 50 ms an idle ring spends its CPU on maintenance,
 * above a day a ring takes days to notice a dead peer (and timers overflow at 24.8 days).
 */
export const MIN_STABILIZE_INTERVAL = 0.05
export const MAX_STABILIZE_INTERVAL = 86_400

const DEFAULTS: Omit<LeadConfig, 'training'> = {
  ip: 'localhost',
  basePort: 9000,
  numVirtualNodes: 3,
  bootstrapPeer: null,
  hashSpaceSize: 2n ** 62n,
  branchingFactor: 100,
  modelType: 'linear',
  stage1ModelType: 'linear',
  stabilizeInterval: 30,
  modelUpdateThreshold: 100,
  maxWorkers: 10,
  dataDir: null,
  durability: 'process',
  maxValueBytes: DEFAULT_MAX_VALUE_BYTES,
  maxKeyBytes: 1024,
  spatial: null,
  autoRetrain: true,
  network: true,
  swarmKey: null,
  privateKey: null,
  peerKeyFile: null,
  allowedPeers: null,
  metricsPort: null,
  replicationFactor: 3,
  writeQuorum: 2,
  readQuorum: 1,
}

function integerIn(field: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidConfigError(field, `must be an integer in [${min}, ${max}], got ${String(value)}`)
  }
}

function numberIn(field: string, value: unknown, min: number, max: number, unit: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidConfigError(
      field,
      `must be a number of ${unit} in [${min}, ${max}], got ${String(value)}`,
    )
  }
}

/**
 * A host to listen on: 'localhost', an IPv4 or IPv6 address, or a DNS name. Dotted numbers that
 * are not an IPv4 address (256.1.1.1) are refused here rather than looked up as a name at start.
 */
function host(field: string, value: unknown): void {
  nonEmptyString(field, value)
  const text = value as string
  if (isIP(text) !== 0) return
  if (/^[0-9.]+$/.test(text) || text.includes(':'))
    throw new InvalidConfigError(field, `is not a valid IP address: ${text}`)
  const labels = (text.endsWith('.') ? text.slice(0, -1) : text).split('.')
  if (
    text.length > 253 ||
    !labels.every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label))
  )
    throw new InvalidConfigError(field, `is neither an IP address nor a host name: ${JSON.stringify(text)}`)
}

function boolean(field: string, value: unknown): void {
  if (typeof value !== 'boolean')
    throw new InvalidConfigError(field, `must be a boolean, got ${String(value)}`)
}

function nonEmptyString(field: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidConfigError(field, `must be a non-empty string, got ${String(value)}`)
  }
}

function modelType(field: string, value: unknown): void {
  if (value !== 'linear' && value !== 'cubic') {
    throw new InvalidConfigError(field, `must be 'linear' or 'cubic', got ${String(value)}`)
  }
}

function checkSpatial(spatial: unknown): void {
  if (spatial === null) return
  if (typeof spatial !== 'object') throw new InvalidConfigError('spatial', 'must be an object or null')
  const { min, max, kind, bitsPerDim } = spatial as SpatialConfig
  if (!Array.isArray(min) || !Array.isArray(max) || min.length === 0 || min.length !== max.length) {
    throw new InvalidConfigError('spatial', 'needs min and max arrays of the same, non-zero length')
  }
  for (let d = 0; d < min.length; d++) {
    if (!Number.isFinite(min[d]) || !Number.isFinite(max[d]) || !(min[d] < max[d])) {
      throw new InvalidConfigError('spatial', `bounds of dimension ${d} must be finite with min < max`)
    }
  }
  if (kind !== undefined && kind !== 'hilbert' && kind !== 'z-order') {
    throw new InvalidConfigError('spatial.kind', `must be 'hilbert' or 'z-order', got ${String(kind)}`)
  }
  if (bitsPerDim !== undefined) integerIn('spatial.bitsPerDim', bitsPerDim, 1, Math.floor(53 / min.length))
}

const CHECKS: { [F in keyof typeof DEFAULTS]: (field: F, value: unknown) => void } = {
  ip: host,
  basePort: (field, value) => integerIn(field, value, 0, 65535),
  numVirtualNodes: (field, value) => integerIn(field, value, 1, 4096),
  bootstrapPeer: (field, value) => {
    if (value !== null) nonEmptyString(field, value)
  },
  hashSpaceSize: (field, value) => {
    if (typeof value !== 'bigint' || value < 2n || value > 2n ** 63n) {
      throw new InvalidConfigError(field, `must be a bigint in [2, 2^63], got ${String(value)}`)
    }
  },
  branchingFactor: (field, value) => integerIn(field, value, 1, 1 << 24),
  modelType,
  stage1ModelType: modelType,
  stabilizeInterval: (field, value) =>
    numberIn(field, value, MIN_STABILIZE_INTERVAL, MAX_STABILIZE_INTERVAL, 'seconds'),
  modelUpdateThreshold: (field, value) => integerIn(field, value, 1, Number.MAX_SAFE_INTEGER),
  maxWorkers: (field, value) => integerIn(field, value, 1, 1024),
  dataDir: (field, value) => {
    if (value !== null) nonEmptyString(field, value)
  },
  durability: (field, value) => {
    if (value !== 'process' && value !== 'power')
      throw new InvalidConfigError(field, `must be 'process' or 'power', got ${String(value)}`)
  },
  maxValueBytes: (field, value) => integerIn(field, value, 1, MAX_VALUE_BYTES_LIMIT),
  maxKeyBytes: (field, value) => integerIn(field, value, 1, MAX_KEY_BYTES_LIMIT),
  spatial: (_field, value) => checkSpatial(value),
  autoRetrain: boolean,
  network: boolean,
  replicationFactor: (field, value) => integerIn(field, value, 1, 16),
  writeQuorum: (field, value) => integerIn(field, value, 1, 16),
  readQuorum: (field, value) => integerIn(field, value, 1, 16),
  metricsPort: (field, value) => {
    if (value !== null) integerIn(field, value, 0, 65535)
  },
  swarmKey: (field, value) => {
    if (value !== null) parsedAs(field, () => parseSwarmKey(value as string))
  },
  privateKey: (field, value) => {
    if (value === null) return
    if (!(value instanceof Uint8Array)) throw new InvalidConfigError(field, 'must be bytes or null')
    parsedAs(field, () => readPrivateKey(value))
  },
  peerKeyFile: (field, value) => {
    if (value !== null) nonEmptyString(field, value)
  },
  allowedPeers: (field, value) => {
    if (value !== null) parsedAs(field, () => parsePeerIds(value))
  },
}

/** Runs a parser on a field's value, reporting its error as the field's. */
function parsedAs(field: string, parse: () => unknown): void {
  try {
    parse()
  } catch (err) {
    throw new InvalidConfigError(field, `is invalid: ${(err as Error).message}`)
  }
}

function describeInit(init: unknown): string {
  if (Array.isArray(init)) return 'an array'
  return init === null ? 'null' : typeof init
}

/**
 * Fills in defaults and validates every field.
 * @throws InvalidConfigError naming the first invalid or unknown field
 */
export function resolveLeadConfig(init: LeadConfigInit = {}): Readonly<LeadConfig> {
  if (typeof init !== 'object' || init === null || Array.isArray(init))
    throw new InvalidConfigError('', `must be an object of LeadConfig fields, got ${describeInit(init)}`)
  for (const field of Object.keys(init)) {
    if (field === 'libp2p')
      throw new InvalidConfigError(
        field,
        'is not a LeadConfig field: to run dlht on your own libp2p node, add it as a service, createLibp2p({ services: { dlht: dlht(config) } })',
      )
    if (!(field in DEFAULTS) && field !== 'training')
      throw new InvalidConfigError(field, 'is not a LeadConfig field')
  }
  const resolved: Record<string, unknown> = {}
  for (const field of Object.keys(DEFAULTS) as Array<keyof typeof DEFAULTS>) {
    const value = init[field] === undefined ? DEFAULTS[field] : init[field]
    ;(CHECKS[field] as (field: string, value: unknown) => void)(field, value)
    resolved[field] = value
  }
  if (resolved.privateKey !== null && resolved.peerKeyFile !== null)
    throw new InvalidConfigError('peerKeyFile', 'cannot be set together with privateKey')
  const replicas = resolved.replicationFactor as number
  if (init.writeQuorum === undefined) resolved.writeQuorum = Math.floor(replicas / 2) + 1
  for (const field of ['writeQuorum', 'readQuorum'] as const) {
    if ((resolved[field] as number) > replicas)
      throw new InvalidConfigError(field, `must be at most replicationFactor (${replicas})`)
  }
  resolved.training = resolveTrainingConfig(init.training)
  return Object.freeze(resolved as unknown as LeadConfig)
}
