// The Chord routing logic, transport-free: ring arithmetic, vnode state, lookups, arcs, range walk.
// The live overlay (ts/overlay) and the simulator drive the same code through a ChordRemote.

export { ArcMap, type OwnedArc } from './arcs.js'
export { HandOverRefusedError, JoinFailedError, LookupFailedError } from './errors.js'
export {
  DEFAULT_MAX_HOPS,
  iterativeLookup,
  type LookupOptions,
  type LookupResult,
  type LookupStep,
  type NodeRef,
  type RemoteStep,
} from './lookup.js'
export {
  chooseVnodeIds,
  imbalance,
  LoadProfile,
  type PlacedVnode,
  type PlacementOptions,
  peerLoads,
  planRebalance,
  type RebalanceOptions,
  type RebalancePlan,
  type VnodeMove,
} from './placement.js'
export { type RangeSegment, type RangeWalk, rangeWalk } from './range-walk.js'
export {
  advance,
  arcRanges,
  checkHashSpaceSize,
  checkPosition,
  clockwiseDistance,
  fingerCount,
  fingerStart,
  inHalfOpenArc,
  inOpenArc,
  inRange,
  unwrappedRanges,
  vnodePosition,
} from './ring.js'
export {
  type Arc,
  type ChordRemote,
  ChordVnode,
  type ChordVnodeOptions,
  DEFAULT_SUCCESSOR_LIST_LENGTH,
  type Neighbours,
  type NotifyOutcome,
} from './vnode.js'
