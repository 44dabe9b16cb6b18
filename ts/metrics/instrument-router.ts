// Wraps a Router so that every data plane it hands out counts its calls and their latency in
// NodeMetrics, as local (this peer's store) or remote, and failed lookups count by error code.

import type { DataPlane } from '../node/data-plane.js'
import type { Router, VnodeRef } from '../node/router.js'
import type { NodeMetrics, OperationKind } from './node-metrics.js'

const TIMED: ReadonlyArray<Exclude<keyof DataPlane, 'modelVersion'>> = [
  'put',
  'putMany',
  'get',
  'getMany',
  'delete',
  'deleteMany',
  'scan',
  'extract',
]

/** Router calls whose failures (a lookup that found no owner) are counted by error code. */
const LOOKUPS: ReadonlySet<PropertyKey> = new Set(['findSuccessor', 'findSuccessorMany', 'coveringSegments'])

function countFailures(
  call: (...args: unknown[]) => Promise<unknown>,
  metrics: NodeMetrics,
): (...args: unknown[]) => Promise<unknown> {
  return (...args) =>
    call(...args).catch((err: unknown) => {
      metrics.error(err)
      throw err
    })
}

/** A data plane whose calls are timed and counted (failures by their error code). */
function instrumentPlane(plane: DataPlane, kind: OperationKind, metrics: NodeMetrics): DataPlane {
  const timed: Record<string, unknown> = {
    get modelVersion() {
      return plane.modelVersion
    },
  }
  for (const operation of TIMED) {
    const call = (plane[operation] as (...args: unknown[]) => Promise<unknown>).bind(plane)
    timed[operation] = (...args: unknown[]) => {
      const started = performance.now()
      return call(...args).then(
        (result) => {
          metrics.observe(operation, kind, (performance.now() - started) / 1000)
          return result
        },
        (err: unknown) => {
          metrics.error(err)
          throw err
        },
      )
    }
  }
  return timed as unknown as DataPlane
}

/**
 * The router as is, except that `dataPlane(owner)` answers an instrumented plane (one per plane of the
 * router, so planes keep their identity: callers group keys by plane).
 */
export function instrumentRouter(router: Router, metrics: NodeMetrics): Router {
  const planes = new WeakMap<DataPlane, DataPlane>()
  const dataPlane = (owner: VnodeRef): DataPlane => {
    const plane = router.dataPlane(owner)
    let instrumented = planes.get(plane)
    if (instrumented === undefined) {
      instrumented = instrumentPlane(plane, owner.peerId === router.peerId ? 'local' : 'remote', metrics)
      planes.set(plane, instrumented)
    }
    return instrumented
  }
  const bound = new Map<PropertyKey, unknown>()
  return new Proxy(router, {
    get(target, property) {
      if (property === 'dataPlane') return dataPlane
      const value = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      // Methods run on the router itself (its private fields are not reachable through the proxy).
      let method = bound.get(property)
      if (method === undefined) {
        method = LOOKUPS.has(property) ? countFailures(value.bind(target), metrics) : value.bind(target)
        bound.set(property, method)
      }
      return method
    },
  })
}
