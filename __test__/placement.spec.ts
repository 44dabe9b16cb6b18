// Vnode placement (ts/chord/placement): load profiles, ids for joining peers, rebalancing moves;
// and on real skewed data, 8 peers x 3 vnodes after a rollout, against consistent hashing.

import test from 'ava'
import {
  chooseVnodeIds,
  imbalance,
  LoadProfile,
  type PlacedVnode,
  peerLoads,
  planRebalance,
} from '../ts/chord/index.js'
import { MoveScorer, score } from '../ts/chord/placement.js'
import { encodeKeys, InvalidArgumentError } from '../ts/index.js'
import { cities, englishWords, seededRandom } from './helpers/datasets.js'
import { placementScenario } from './helpers/placement-scenario.js'

const H = 1000n

test('a load profile counts keys on arcs, wrapping past zero, and cuts arcs at its positions', (t) => {
  const profile = LoadProfile.fromPositions([900n, 10n, 10n, 10n, 500n, 20n], H, 2)
  t.is(profile.total, 12)
  t.is(profile.arcLoad(0n, 10n), 6)
  t.is(profile.arcLoad(10n, 500n), 4)
  t.is(profile.arcLoad(500n, 10n), 8)
  t.is(profile.arcLoad(42n, 42n), 12)
  // Three keys share position 10: a cut takes all of them or none.
  t.is(profile.positionAfter(950n, 600n, 2), 10n)
  t.is(profile.arcLoad(950n, profile.positionAfter(950n, 600n, 8)), 8)
  t.is(profile.positionAfter(950n, 600n, 100), 600n)
  // Or stop short of them: the last position before 500, and none between 950 and 10.
  t.is(profile.positionBefore(0n, 500n), 20n)
  t.is(profile.positionBefore(950n, 500n), 20n)
  t.is(profile.positionBefore(950n, 10n), 950n)
  t.is(profile.positionBefore(800n, 20n), 10n)
  t.throws(() => LoadProfile.fromPositions([1000n], H), { instanceOf: InvalidArgumentError })
  t.throws(() => LoadProfile.fromPositions([1n], H, 0), { instanceOf: InvalidArgumentError })
})

test('a first peer gets ids at the quantiles; a joining peer takes its share from the heaviest', (t) => {
  const random = seededRandom(5)
  const positions = Array.from({ length: 4000 }, () => BigInt(Math.floor(random() ** 3 * 1000)))
  const profile = LoadProfile.fromPositions(positions, H)
  const ring: PlacedVnode[] = chooseVnodeIds([], profile, 'a', 4).map((id) => ({ id, peer: 'a' }))
  t.is(new Set(ring.map((vnode) => vnode.id)).size, 4)
  for (const peer of ['b', 'c', 'd']) {
    const ids = chooseVnodeIds(ring, profile, peer, 4)
    t.is(new Set([...ids, ...ring.map((vnode) => vnode.id)]).size, ring.length + 4, 'ids are new')
    ring.push(...ids.map((id) => ({ id, peer })))
  }
  t.true(imbalance(ring, profile) < 1.2, `${imbalance(ring, profile)}`)
  t.throws(() => chooseVnodeIds(ring, profile, 'a', 1), { instanceOf: InvalidArgumentError })
  t.throws(() => chooseVnodeIds(ring, profile, 'e', 0), { instanceOf: InvalidArgumentError })
})

test('planRebalance moves a few vnodes of a lopsided ring to the target, and none of a balanced one', (t) => {
  const profile = LoadProfile.fromPositions(
    Array.from({ length: 1000 }, (_, i) => BigInt(i)),
    H,
  )
  // Peer a owns 700 of 1000 positions.
  const lopsided: PlacedVnode[] = [
    { id: 99n, peer: 'b' },
    { id: 499n, peer: 'a' },
    { id: 599n, peer: 'c' },
    { id: 899n, peer: 'a' },
    { id: 949n, peer: 'b' },
    { id: 999n, peer: 'c' },
  ]
  const plan = planRebalance(lopsided, profile, { target: 1.02 })
  t.is(plan.before, 2.1)
  t.true(plan.after <= 1.02, `${plan.after}`)
  t.true(plan.moves.length <= lopsided.length)
  t.is(imbalance(plan.ring, profile), plan.after)
  // Every move takes a vnode that is on the ring to a free id.
  let ring = lopsided
  for (const move of plan.moves) {
    t.true(ring.some((vnode) => vnode.id === move.from && vnode.peer === move.peer))
    t.false(ring.some((vnode) => vnode.id === move.to))
    ring = ring.map((vnode) => (vnode.id === move.from ? { id: move.to, peer: vnode.peer } : vnode))
  }
  t.deepEqual(peerLoads(ring, profile), peerLoads(plan.ring, profile))
  t.deepEqual(planRebalance(lopsided, profile, { target: 1.02 }), plan, 'deterministic')
  t.deepEqual(planRebalance(plan.ring, profile, { target: 1.02 }).moves, [])
})

const datasets: Array<[string, () => { keys: Float64Array; labels: string[] }]> = [
  [
    'city populations',
    () => ({
      keys: Float64Array.from(cities(), (city) => city.population),
      labels: cities().map((city, i) => `${city.name}/${i}`),
    }),
  ],
  ['English words', () => ({ keys: encodeKeys(englishWords()), labels: englishWords() })],
]

for (const [name, loadData] of datasets) {
  test(`8 peers x 3 vnodes on ${name}: at most 1.1x the mean load after a rollout, unlike consistent hashing`, (t) => {
    const { keys, labels } = loadData()
    const run = placementScenario(keys, labels, 8, 3)
    const load = run.imbalance
    t.log(
      `max/mean load per peer: ours ${load.ours.toFixed(3)} (${run.moves} moves; ${load.afterRollout.toFixed(3)} ` +
        `after the rollout before them), consistent hashing ${load.consistentHashing.toFixed(3)}, ` +
        `learned positions with hashed ids ${load.learnedHashedIds.toFixed(3)}`,
    )
    t.true(load.ours <= 1.1)
    t.true(run.moves <= 8 * 3)
    t.true(load.consistentHashing > load.ours)
  })
}

test('a move is scored as the whole ring recomputed after it would score', (t) => {
  const random = seededRandom(11)
  const positions = Array.from({ length: 3000 }, () => BigInt(Math.floor(random() ** 2 * 1000)))
  const profile = LoadProfile.fromPositions(positions, H)
  for (let trial = 0; trial < 200; trial++) {
    const ids = new Set<bigint>()
    const size = 3 + Math.floor(random() * 12)
    while (ids.size < size) ids.add(BigInt(Math.floor(random() * 1000)))
    const ring = [...ids].map((id, i) => ({ id, peer: `p${i % 4}` }))
    const sorted = [...ring].sort((a, b) => (a.id < b.id ? -1 : 1))
    const arcs = sorted.map((vnode, i) => ({
      ...vnode,
      load: profile.arcLoad((sorted.at(i - 1) as PlacedVnode).id, vnode.id),
    }))
    const mover = ring[Math.floor(random() * ring.length)]
    let to = BigInt(Math.floor(random() * 1000))
    while (ids.has(to)) to = (to + 1n) % H
    const scorer = new MoveScorer(arcs, peerLoads(ring, profile), profile)
    const moved = ring.map((vnode) => (vnode === mover ? { id: to, peer: vnode.peer } : vnode))
    const [max, squares] = scorer.scoreAfter({ peer: mover.peer, from: mover.id, to })
    const [wantMax, wantSquares] = score(peerLoads(moved, profile))
    t.is(
      max,
      wantMax,
      `ring ${JSON.stringify(ring, (_, v) => (typeof v === 'bigint' ? `${v}` : v))} ${mover.id} -> ${to}`,
    )
    t.is(squares, wantSquares)
  }
})

test('planRebalance gets a peer down to a pile of equal positions by emptying its other arcs', (t) => {
  // Peer a holds a pile of 40 keys at 500 plus two arcs of 10 singles; 4 peers, 100 keys: mean 25.
  const positions: bigint[] = [...Array.from({ length: 40 }, () => 500n)]
  for (let i = 0; i < 60; i++) positions.push(BigInt(10 + i * 16) + (BigInt(10 + i * 16) === 500n ? 1n : 0n))
  const profile = LoadProfile.fromPositions(positions, H)
  const ring: PlacedVnode[] = [
    { id: 120n, peer: 'a' },
    { id: 500n, peer: 'a' },
    { id: 900n, peer: 'a' },
    { id: 60n, peer: 'b' },
    { id: 300n, peer: 'b' },
    { id: 700n, peer: 'c' },
    { id: 480n, peer: 'c' },
    { id: 820n, peer: 'd' },
    { id: 980n, peer: 'd' },
  ]
  const plan = planRebalance(ring, profile, { target: 1 })
  const loads = peerLoads(plan.ring, profile)
  // The pile alone (40 keys, 1.6 x the mean) is the least a ring can give its owner.
  t.is(Math.max(...loads.values()), 40, JSON.stringify([...loads]))
})
