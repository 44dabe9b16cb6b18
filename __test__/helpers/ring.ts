// Ring invariants checked from the outside, on the routing-table stats of every node of a cluster:
// successors and predecessors agree with the sorted vnode ids, so each position has one owner.

/** What a ChordRouter reports about its vnodes (the part of getRoutingTableStats used here). */
export interface RingView {
  peerId: string
  vnodes: Array<{ id: bigint; arcStart: bigint }>
  ring: Array<{ id: bigint; predecessor: { id: bigint } | null; successors: Array<{ id: bigint }> }>
}

/**
 * Whether the vnodes of all `views` form one consistent ring: each vnode's successor is the next
 * id, its predecessor and arc start the previous one (so the arcs partition the ring).
 */
export function ringIsConsistent(views: readonly RingView[]): boolean {
  const vnodes = views.flatMap((view) => view.ring).sort((a, b) => (a.id < b.id ? -1 : 1))
  const arcStarts = new Map(views.flatMap((view) => view.vnodes.map((vnode) => [vnode.id, vnode.arcStart])))
  return vnodes.every((vnode, i) => {
    const next = vnodes[(i + 1) % vnodes.length].id
    const previous = vnodes.at(i - 1)?.id
    return (
      vnode.successors[0]?.id === next &&
      vnode.predecessor?.id === previous &&
      arcStarts.get(vnode.id) === previous
    )
  })
}

/**
 * Whether the ring is consistent and every vnode's successor list names the vnodes that follow it,
 * as far as the list reaches (stabilization has run its course; replica sets follow from the lists).
 */
export function successorListsComplete(views: readonly RingView[]): boolean {
  if (!ringIsConsistent(views)) return false
  const vnodes = views.flatMap((view) => view.ring).sort((a, b) => (a.id < b.id ? -1 : 1))
  return vnodes.every(
    (vnode, i) =>
      vnode.successors.every((successor, j) => successor.id === vnodes[(i + j + 1) % vnodes.length].id) &&
      vnode.successors.length >= Math.min(8, vnodes.length - 1),
  )
}

/** Where a started networked node listens (each address ends in /p2p/<peer id>). */
export function listenAddresses(node: { getRoutingTableStats(): Record<string, unknown> }): string[] {
  return node.getRoutingTableStats().multiaddrs as string[]
}
