// Iterative Chord lookup: ask one node after another for a closer hop until one names the owner.
// Transport-free: the remote step is injected, so the live overlay and the simulator share it.

import { LookupFailedError } from './errors.js'

/** Anything that sits on the ring; nodes are identified by their position `id`. */
export interface NodeRef {
  readonly id: bigint
}

/** A node's answer to "who owns this position?": the owner and its arc, or a closer node to ask. */
export type LookupStep<R extends NodeRef> =
  | { readonly kind: 'owner'; readonly owner: R; readonly arcStart: bigint }
  | { readonly kind: 'next'; readonly next: R }

/** Asks `target` for its step towards `position`, skipping the node ids in `avoid`. */
export type RemoteStep<R extends NodeRef> = (
  target: R,
  position: bigint,
  avoid: ReadonlySet<bigint>,
  options?: { signal?: AbortSignal },
) => Promise<LookupStep<R>>

export interface LookupOptions<R extends NodeRef> {
  /** Give up after this many remote steps. Default 64. */
  maxHops?: number
  signal?: AbortSignal
  /** Told about every node that failed to answer, so routing tables can drop it. */
  onUnreachable?: (node: R, error: unknown) => void
}

/** The owner of a position, its arc `(arcStart, owner.id]`, and the remote steps it took. */
export interface LookupResult<R extends NodeRef> {
  owner: R
  arcStart: bigint
  hops: number
}

export const DEFAULT_MAX_HOPS = 64

/**
 * Resolves the owner of `position`. `localStep` is the first step, taken locally for free;
 * each remote step counts as a hop. A node that fails to answer is avoided from then on and the
 * previous node is asked again for an alternative.
 * @throws LookupFailedError when the hop budget runs out or no live route remains
 */
export async function iterativeLookup<R extends NodeRef>(
  position: bigint,
  localStep: (avoid: ReadonlySet<bigint>) => LookupStep<R>,
  remoteStep: RemoteStep<R>,
  options: LookupOptions<R> = {},
): Promise<LookupResult<R>> {
  const maxHops = options.maxHops ?? DEFAULT_MAX_HOPS
  const avoid = new Set<bigint>()
  const asked: R[] = []
  let hops = 0
  let step = localStep(avoid)
  while (step.kind === 'next') {
    const target = step.next
    if (avoid.has(target.id)) {
      throw new LookupFailedError(
        `lookup of ${position}: no live route (last hop ${target.id} is unreachable)`,
      )
    }
    if (hops >= maxHops) throw new LookupFailedError(`lookup of ${position} exceeded ${maxHops} hops`)
    options.signal?.throwIfAborted()
    hops++
    try {
      step = await remoteStep(target, position, avoid, options)
      asked.push(target)
    } catch (err) {
      options.signal?.throwIfAborted()
      avoid.add(target.id)
      options.onUnreachable?.(target, err)
      step = await askAgain(asked.at(-1), position, avoid, localStep, remoteStep, options)
      if (asked.length > 0) hops++
    }
  }
  return { owner: step.owner, arcStart: step.arcStart, hops }
}

/** Re-asks the last node that answered (or the local node) for a route around the avoided ones. */
async function askAgain<R extends NodeRef>(
  previous: R | undefined,
  position: bigint,
  avoid: ReadonlySet<bigint>,
  localStep: (avoid: ReadonlySet<bigint>) => LookupStep<R>,
  remoteStep: RemoteStep<R>,
  options: LookupOptions<R>,
): Promise<LookupStep<R>> {
  if (previous === undefined) return localStep(avoid)
  try {
    return await remoteStep(previous, position, avoid, options)
  } catch (err) {
    options.signal?.throwIfAborted()
    throw new LookupFailedError(`lookup of ${position}: node ${previous.id} stopped answering`, {
      cause: err,
    })
  }
}
