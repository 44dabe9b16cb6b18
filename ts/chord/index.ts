// The Chord routing logic, transport-free: ring arithmetic, vnode state, lookups, arcs, range walk.
// The live overlay (ts/overlay) and the simulator drive the same code through a ChordRemote.

export { ArcMap, type OwnedArc } from './arcs.js'
export { HandOverRefusedError, JoinFailedError, LookupFailedError } from './errors.js'
export {
  iterativeLookup,
  type LookupOptions,
  type LookupResult,
  type LookupStep,
  type NodeRef,
} from './lookup.js'
export {
  chooseVnodeIds,
  imbalance,
  LoadProfile,
  type PlacedVnode,
  peerLoads,
  planRebalance,
  type RebalanceOptions,
  type VnodeMove,
} from './placement.js'
export { rangeWalk } from './range-walk.js'
export {
  advance,
  arcRanges,
  clockwiseDistance,
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
  type Neighbours,
  type NotifyOutcome,
} from './vnode.js'
