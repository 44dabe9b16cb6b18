// dlht: a distributed learned hash table. The public API of the package.

export { type ClientRangeEntry, DlhtClient, type DlhtClientOptions } from './client/dlht-client.js'
export {
  CodedError,
  CorruptModelError,
  DlhtError,
  InvalidArgumentError,
  InvalidKeyError,
} from './errors.js'
// rollout
export {
  type ModelProposal,
  ModelRejectedError,
  modelDigest,
  type RejectionReason,
  type ValidationPolicy,
  validateProposal,
} from './federation/model-validation.js'
export { type CurveKind, type CurveOptions, SpaceFillingCurve } from './learned/curve.js'
export { encodeKey, encodeKeys, KEY_ENCODING_VERSION, type Key } from './learned/keys.js'
export { DEFAULT_RESERVOIR_CAPACITY, type ReservoirOptions, ReservoirSampler } from './learned/reservoir.js'
export {
  DEFAULT_HASH_SPACE_SIZE,
  type FederatedAverageOptions,
  type LeafStats,
  type ModelContribution,
  type ModelDict,
  type ModelType,
  RecursiveModelIndex,
  type RmiDict,
  type RmiOptions,
  type RootDict,
  type TrainingStats,
} from './learned/rmi.js'
// node
export { type ClientGatewayOptions, type ProtocolHandlers, serveClients } from './node/client-gateway.js'
export type { LeadConfig, LeadConfigInit, SpatialConfig } from './node/config.js'
export type { LeadNodeEvents, ModelInstalled } from './node/events.js'
export {
  DEFAULT_RETRAIN_WAIT_MS,
  LeadNode,
  type LeadNodeInit,
  type NodeStats,
  type OperationOptions,
  type RetrainOptions,
  type RetrainResult,
  type VnodeStats,
} from './node/lead-node.js'
export { LearnedHash, type LearnedHashDict } from './node/learned-hash.js'
export {
  type DlhtInit,
  type DlhtServiceConfig,
  dlht,
  LeadNodeService,
  type LeadNodeServiceComponents,
} from './node/libp2p-service.js'
export { LocalRouter, type LocalRouterInit } from './node/local-router.js'
export type { LogLevel, LogRecord } from './node/node-log.js'
export { RangeEntry } from './node/range-entry.js'
export type { RangeIterationOptions } from './node/range-iterator.js'
// overlay
export {
  ChordRouter,
  type ChordRouterOptions,
  chordRouter,
  type RouterComponents,
} from './overlay/chord-router.js'
export { exportPrivateKey, generatePrivateKey } from './overlay/identity.js'
export { createDlhtLibp2p, type DlhtLibp2p } from './overlay/libp2p.js'
export {
  generateSwarmKey,
  InvalidSwarmKeyError,
  MembershipRefusedError,
  parseSwarmKey,
  type SwarmKey,
  swarmKeyProtector,
} from './overlay/private-network.js'
export {
  isSupportedNode,
  MIN_NODE_VERSION,
  NativeBindingError,
  PREBUILT_PLATFORMS,
  UnsupportedNodeError,
} from './platform.js'
export {
  FrameTooLargeError,
  MalformedMessageError,
  PeerBusyError,
  PeerUnavailableError,
  ProtocolError,
  ProtocolMismatchError,
  RemoteCallTimeoutError,
  RemoteError,
  UnauthorizedMessageError,
  UnknownMessageError,
  UnknownModelVersionError,
  VnodeUnavailableError,
} from './protocol/errors.js'
export { DlhtService, type DlhtServiceInit, dlhtService, NodeNotReadyError } from './protocol/service.js'
export type { DataPlane, ScanFilter, ScannedRecord, StoredRecord } from './shared/data-plane.js'
export {
  CorruptValueError,
  InvalidConfigError,
  NotStartedError,
  QuorumNotReachedError,
  ReplicasUnavailableError,
  StartFailedError,
  StorageMismatchError,
  ValueNotSerializableError,
  ValueTooLargeError,
} from './shared/errors.js'
export { decodeKeyBytes, encodeKeyBytes, type KeyFamily, type NodeKey } from './shared/keys.js'
export type {
  RangeSegment,
  RouteOptions,
  Router,
  RoutingTableStats,
  VnodeRef,
} from './shared/router.js'
export {
  AdaptiveTrainingManager,
  type AdaptiveTrainingManagerOptions,
  type RetrainDecision,
  type RetrainReason,
  type TrainingMetrics,
} from './training/adaptive-training-manager.js'
export { DEFAULT_TRAINING_CONFIG, type TrainingConfig } from './training/training-config.js'
