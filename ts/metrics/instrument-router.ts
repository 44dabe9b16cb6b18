// Makes a Router's data planes count their calls and time them in NodeMetrics, as local (this peer's
// store) or remote: the router's own `dataPlane` is replaced, nothing else of it changes.

import type { DataPlane } from '../shared/data-plane.js'
import type { Router, VnodeRef } from '../shared/router.js'
import type { CallSeries } from './data-plane-calls.js'
import type { NodeMetrics } from './node-metrics.js'

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

/** Counts a call of `series` and times it when the series samples this one. */
export function observeCall<T>(series: CallSeries, call: () => Promise<T>): Promise<T> {
  if (!series.count()) return call()
  const started = performance.now()
  return call().then((result) => {
    series.observe((performance.now() - started) / 1000)
    return result
  })
}

/** A data plane whose calls are counted and timed: every remote call, a sample of local ones. */
function instrumentPlane(plane: DataPlane, kind: 'local' | 'remote', metrics: NodeMetrics): DataPlane {
  const instrumented: Record<string, unknown> = {
    get modelVersion() {
      return plane.modelVersion
    },
  }
  for (const operation of TIMED) {
    const call = (plane[operation] as (...args: unknown[]) => Promise<unknown>).bind(plane)
    const series = metrics.calls.series(operation, kind)
    instrumented[operation] = (...args: unknown[]) => observeCall(series, () => call(...args))
  }
  return instrumented as unknown as DataPlane
}

/**
 * Makes `router.dataPlane(owner)` answer instrumented planes (one per plane of the router, so planes
 * keep their identity: callers group keys by plane). The router is otherwise untouched.
 */
export function instrumentRouter<R extends Router>(router: R, metrics: NodeMetrics): R {
  const planes = new WeakMap<DataPlane, DataPlane>()
  const dataPlane = router.dataPlane.bind(router)
  router.dataPlane = (owner: VnodeRef): DataPlane => {
    const plane = dataPlane(owner)
    let instrumented = planes.get(plane)
    if (instrumented === undefined) {
      instrumented = instrumentPlane(plane, owner.peerId === router.peerId ? 'local' : 'remote', metrics)
      planes.set(plane, instrumented)
    }
    return instrumented
  }
  return router
}
