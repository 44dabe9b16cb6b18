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
