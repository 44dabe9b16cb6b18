// The simulator at scale: 1,000 and 10,000 peers × 3 vnodes and 1,000 × 20 (10,000 × 20: load only), nine
// data sets (string keys encoded by the key code a node learns), dlht (before and after vnode placement)
// vs consistent hashing vs linear order-preserving hashing. Writes results/simulation.json.

import {
  burstyTimestamps,
  cities,
  englishWords,
  lognormalKeys,
  populationKeys,
  seededRandom,
  sorted,
  zipfKeys,
} from '../__test__/helpers/datasets.js'
import { orderKeys, urlKeys, userKeys } from '../__test__/helpers/key-shapes.js'
import {
  type LoadSummary,
  measureChurn,
  measureLoad,
  measureLookups,
  measureRangeQueries,
  measureWarmLookups,
  PositionRuns,
  perKeyLookups,
  samplePositions,
} from '../sim/metrics.js'
import {
  consistentHashingScheme,
  type KeySet,
  learnedScheme,
  linearScheme,
  type PlacementScheme,
  rebalancedVnodeIds,
  type VnodePlacement,
} from '../sim/placement.js'
import { SimRing } from '../sim/ring.js'
import { SpaceFillingCurve } from '../ts/learned/curve.js'
import { ReservoirSampler } from '../ts/learned/reservoir.js'
import { RecursiveModelIndex } from '../ts/learned/rmi.js'
import { writeResults } from './measure.js'

const SIZE = 2n ** 62n
const SEED = 7
const RING_CONFIGS = [
  { peers: 1000, vnodesPerPeer: 3 },
  { peers: 10_000, vnodesPerPeer: 3 },
  { peers: 1000, vnodesPerPeer: 20 },
]
/** Rings too large to build in minutes (200k vnodes): load only, which needs no routing state. */
const LOAD_ONLY_CONFIGS = [{ peers: 10_000, vnodesPerPeer: 20 }]
const SYNTHETIC_KEYS = 1_000_000
/** Keys of each string shape with a long shared prefix (user ids, tenant orders, URLs). */
const STRING_KEYS = 100_000
const LARGE_KEYS = 10_000_000
/** The sample dlht and linear train on and place vnodes by; placementStudy shows smaller ones. */
const RESERVOIR = 1_000_000
/** Most vnode moves planRebalance may propose, per ring (a move costs about 30 ms at 30,000 vnodes). */
const MAX_MOVES: Record<number, number> = { 1000: 300, 10000: 300 }
/** Leaves per peer of the finest model, tried at 10,000 peers where a leaf per peer still piles keys. */
const FINE_LEAVES_PER_PEER = 10
const COLD_LOOKUPS = 2000
const WARM = { origins: 5, warmup: 9, positions: 10_000 }
const RANGE_SIZES = [10, 100, 1000, 10_000]
const RANGE_QUERIES = 20
const CHURN_FRACTIONS = [0.1, 0.3]
const CHURN_LOOKUPS = 1000
const BOX_SIDES_DEGREES = [0.5, 2, 8]
const BOX_QUERIES = 10

const curve = new SpaceFillingCurve({ kind: 'hilbert', min: [-180, -90], max: [180, 90] })

/** String keys as a node encodes them once it has retrained: by the key code it learned from them. */
async function keyCoded(keys: string[]): Promise<Float64Array> {
  return (await RecursiveModelIndex.trainOnKeys(keys)).encodeKeys(keys)
}

/** Key sets sorted by key, labels kept beside the keys for SHA-256. */
async function keySets(): Promise<KeySet[]> {
  const bySortedKey = (name: string, keys: Float64Array, labels: string[]): KeySet => {
    const order = Array.from(keys.keys()).sort((a, b) => keys[a] - keys[b])
    return {
      name,
      keys: Float64Array.from(order, (i) => keys[i]),
      label: (index) => labels[order[index]],
    }
  }
  const all = cities()
  const cityLabels = all.map((city) => `${city.name}@${city.coordinates.join(',')}`)
  const words = englishWords()
  return [
    bySortedKey('cities-population', populationKeys(all), cityLabels),
    bySortedKey(
      'cities-lonlat-hilbert',
      curve.indexMany(Float64Array.from(all.flatMap((city) => city.coordinates))),
      cityLabels,
    ),
    bySortedKey('english-words', await keyCoded(words), words),
    { name: 'lognormal', keys: sorted(lognormalKeys(SYNTHETIC_KEYS, SEED)) },
    { name: 'zipf', keys: sorted(zipfKeys(SYNTHETIC_KEYS, SEED)) },
    { name: 'bursty-timestamps', keys: burstyTimestamps(SYNTHETIC_KEYS, SEED) },
    ...(await Promise.all(
      (
        [
          ['user-ids', userKeys(STRING_KEYS)],
          ['tenant-orders', orderKeys(STRING_KEYS)],
          ['urls', urlKeys(STRING_KEYS)],
        ] as Array<[string, string[]]>
      ).map(async ([name, keys]) => bySortedKey(name, await keyCoded(keys), keys)),
    )),
  ]
}

function reservoirSample(keys: Float64Array, capacity = RESERVOIR): Float64Array {
  const sampler = new ReservoirSampler({ capacity, seed: SEED })
  sampler.insertMany(keys)
  return sampler.sample()
}

async function builtRing(scheme: PlacementScheme, peers: number, vnodesPerPeer: number): Promise<SimRing> {
  const ring = new SimRing({ hashSpaceSize: SIZE, vnodeIds: scheme.vnodeIds(peers, vnodesPerPeer, SEED) })
  const build = await ring.build()
  if (!build.converged) throw new Error(`ring ${peers}x${vnodesPerPeer} (${scheme.name}) did not converge`)
  return ring
}

async function measureScheme(ring: SimRing, scheme: PlacementScheme, keySet: KeySet) {
  const random = seededRandom(SEED)
  const load = measureLoad(ring, scheme, keySet)
  const lookups = await measureLookups(ring, samplePositions(scheme, keySet, COLD_LOOKUPS, random), random)
  const warmLookups = await measureWarmLookups(
    ring,
    samplePositions(scheme, keySet, WARM.positions, random),
    {
      ...WARM,
      random,
    },
  )
  const ranges = []
  for (const rangeKeys of RANGE_SIZES.filter((size) => size <= keySet.keys.length / 4)) {
    const perKey = scheme.rangeArc(0, 0) === null
    const queries = perKey
      ? Math.max(1, Math.min(RANGE_QUERIES, Math.floor(10_000 / rangeKeys)))
      : RANGE_QUERIES
    ranges.push(await measureRangeQueries(ring, scheme, keySet, { rangeKeys, queries, random }))
  }
  const churnPositions = samplePositions(scheme, keySet, CHURN_LOOKUPS, random)
  const churn = []
  for (const fraction of CHURN_FRACTIONS)
    churn.push(await measureChurn(ring, churnPositions, fraction, random))
  ring.recoverAll()
  return { scheme: scheme.name, load, lookups, warmLookups, ranges, churn }
}

/** Box queries over city coordinates through the Hilbert curve; hashing looks up each city in the box. */
async function boxQueries(ring: SimRing, scheme: PlacementScheme) {
  const random = seededRandom(SEED)
  const all = cities()
  const rows = []
  for (const side of BOX_SIDES_DEGREES) {
    let messages = 0
    let peersTouched = 0
    let citiesInBox = 0
    for (let q = 0; q < BOX_QUERIES; q++) {
      const [lon, lat] = all[Math.floor(random() * all.length)].coordinates
      const min = [lon - side / 2, lat - side / 2]
      const max = [lon + side / 2, lat + side / 2]
      const inside = all.filter(
        ({ coordinates: [x, y] }) => x >= min[0] && x <= max[0] && y >= min[1] && y <= max[1],
      )
      citiesInBox += inside.length
      const origin = Math.floor(random() * ring.peerCount)
      const arcs = curve.decomposeBox(min, max).map(([low, high]) => scheme.rangeArc(low, high))
      const cost = arcs.every((arc) => arc !== null)
        ? await ring.rangeQuery(
            origin,
            arcs.map((arc) => [arc.hashMin, arc.hashMax] as const),
          )
        : await perKeyLookups(
            ring,
            scheme.positions(
              {
                name: 'box',
                keys: new Float64Array(inside.length),
                label: (i) => `${inside[i].name}@${inside[i].coordinates.join(',')}`,
              },
              0,
              inside.length,
            ),
            origin,
          )
      messages += cost.messages
      peersTouched += cost.peersTouched
    }
    rows.push({
      scheme: scheme.name,
      sideDegrees: side,
      meanCitiesInBox: citiesInBox / BOX_QUERIES,
      meanMessages: messages / BOX_QUERIES,
      meanPeersTouched: peersTouched / BOX_QUERIES,
    })
  }
  return rows
}

/** dlht's vnode placement and sample size against load balance (lognormal, 1,000 × 3). */
async function placementStudy(keySet: KeySet) {
  const rows = []
  for (const reservoir of [10_000, 100_000, 1_000_000]) {
    const sample = reservoirSample(keySet.keys, reservoir)
    for (const vnodePlacement of ['even', 'sample-quantiles'] as VnodePlacement[]) {
      for (const branchingFactor of [100, 1000]) {
        const scheme = learnedScheme(sample, { hashSpaceSize: SIZE, vnodePlacement, branchingFactor })
        const ring = new SimRing({ hashSpaceSize: SIZE, vnodeIds: scheme.vnodeIds(1000, 3, SEED) })
        const { maxOverMean, p99OverMean } = measureLoad(ring, scheme, keySet)
        rows.push({ reservoir, vnodePlacement, branchingFactor, maxOverMean, p99OverMean })
      }
    }
  }
  return rows
}

/** dlht with `leavesPerPeer` leaves per peer instead of the default 100: a finer fit piles fewer keys on one position. */
function leafPerPeerScheme(sample: Float64Array, peers: number, leavesPerPeer = 1) {
  return learnedScheme(sample, {
    hashSpaceSize: SIZE,
    vnodePlacement: 'sample-quantiles',
    branchingFactor: Math.max(100, peers * leavesPerPeer),
  })
}

function leafPerPeerName(peers: number, leavesPerPeer = 1): string {
  return `dlht-${Math.max(100, peers * leavesPerPeer)}-leaves`
}

/** Load only, with vnodes at the quantiles (`name`) and, when `maxMoves` is given, after planRebalance (`name-placed`). */
function learnedLoads(
  name: string,
  scheme: ReturnType<typeof learnedScheme>,
  keySet: KeySet,
  peers: number,
  vnodesPerPeer: number,
  maxMoves?: number,
) {
  const vnodeIds = scheme.vnodeIds(peers, vnodesPerPeer, SEED)
  const rows: Array<{ scheme: string; load: ReturnType<typeof measureLoad>; placement?: object }> = [
    { scheme: name, load: measureLoad(new SimRing({ hashSpaceSize: SIZE, vnodeIds }), scheme, keySet) },
  ]
  if (maxMoves !== undefined) {
    const positions = scheme.positions(keySet, 0, keySet.keys.length)
    const { vnodeIds: placed, ...placement } = rebalancedVnodeIds(vnodeIds, positions, SIZE, { maxMoves })
    const ring = new SimRing({ hashSpaceSize: SIZE, vnodeIds: placed })
    rows.push({ scheme: `${name}-placed`, load: measureLoad(ring, scheme, keySet), placement })
  }
  return rows
}

/** Load of 10M lognormal keys, streamed through predictMany / SHA-256 in batches of 2^20. */
function tenMillionKeys(keySet: KeySet, schemes: PlacementScheme[], rings: Map<string, SimRing>) {
  const rows = []
  for (const { peers, vnodesPerPeer } of RING_CONFIGS.filter((config) => config.vnodesPerPeer === 3)) {
    for (const scheme of schemes) {
      const started = performance.now()
      const ring = rings.get(`${peers}x${vnodesPerPeer}/${scheme.name}`) as SimRing
      const { maxOverMean, p99OverMean } = measureLoad(ring, scheme, keySet)
      const seconds = (performance.now() - started) / 1000
      rows.push({
        peers,
        vnodesPerPeer,
        scheme: scheme.name,
        keys: keySet.keys.length,
        maxOverMean,
        p99OverMean,
        seconds,
      })
    }
  }
  return rows
}

type LoadRow = { peers: number; vnodesPerPeer: number; dataset: string; scheme: string; load: LoadSummary }

/**
 * Per ring and data set, each scheme's load max/mean beside the least any placement could reach on the
 * same positions (`lowerBound`): dlht's bound is its model's, and differs from hashing's and linear's.
 */
function loadTargets(runs: LoadRow[], sets: KeySet[]) {
  const mostEqualKeys = new Map(
    sets.map(({ name, keys }) => {
      const runsOfKeys = new PositionRuns()
      for (const key of keys) runsOfKeys.add(key)
      return [name, runsOfKeys.max]
    }),
  )
  const targets = new Map<string, Record<string, unknown>>()
  for (const { peers, vnodesPerPeer, dataset, scheme, load } of runs) {
    const key = `${peers}x${vnodesPerPeer}/${dataset}`
    const equalKeys = mostEqualKeys.get(dataset) as number
    // Equal keys (after encoding) share a position under any order-preserving scheme, learned or not.
    const orderPreservingLowerBound = Math.max(1, (equalKeys * peers) / load.keys)
    if (!targets.has(key))
      targets.set(key, {
        peers,
        vnodesPerPeer,
        dataset,
        keys: load.keys,
        equalKeys,
        orderPreservingLowerBound,
      })
    const target = targets.get(key) as Record<string, unknown>
    target[scheme] = {
      maxOverMean: load.maxOverMean,
      lowerBound: load.lowerBound,
      maxKeysAtOnePosition: load.maxKeysAtOnePosition,
    }
  }
  return [...targets.values()]
}

async function main(): Promise<void> {
  const started = performance.now()
  const runs = []
  const boxes = []
  const sets = await keySets()
  const hashing = consistentHashingScheme(SIZE)
  const lognormal = sets.find((set) => set.name === 'lognormal') as KeySet
  const large: KeySet = { name: 'lognormal-10M', keys: lognormalKeys(LARGE_KEYS, SEED + 1) }
  const largeSample = reservoirSample(large.keys)
  const largeRings = new Map<string, SimRing>()
  const largeSchemes = [
    learnedScheme(largeSample, { hashSpaceSize: SIZE, vnodePlacement: 'sample-quantiles' }),
    hashing,
    linearScheme(largeSample, SIZE),
  ]
  for (const { peers, vnodesPerPeer } of RING_CONFIGS) {
    const hashedRing = await builtRing(hashing, peers, vnodesPerPeer)
    for (const keySet of sets) {
      const sample = reservoirSample(keySet.keys)
      const dlht = learnedScheme(sample, { hashSpaceSize: SIZE, vnodePlacement: 'sample-quantiles' })
      const linear = linearScheme(sample, SIZE)
      const base = { peers, vnodesPerPeer, dataset: keySet.name, keys: keySet.keys.length }
      for (const [scheme, ring] of [
        [dlht, await builtRing(dlht, peers, vnodesPerPeer)],
        [hashing, hashedRing],
        [linear, await builtRing(linear, peers, vnodesPerPeer)],
      ] as const) {
        runs.push({ ...base, ...(await measureScheme(ring, scheme, keySet)) })
        if (keySet.name === 'cities-lonlat-hilbert' && vnodesPerPeer === 3) {
          boxes.push(...(await boxQueries(ring, scheme)).map((row) => ({ peers, vnodesPerPeer, ...row })))
        }
      }
      const hashedDlht = learnedScheme(sample, { hashSpaceSize: SIZE, vnodePlacement: 'hashed' })
      runs.push({ ...base, scheme: 'dlht-hashed-vnodes', load: measureLoad(hashedRing, hashedDlht, keySet) })
      // Vnodes moved by planRebalance at both × 3 rings: with the default model and with a leaf per peer.
      const maxMoves = vnodesPerPeer === 3 ? MAX_MOVES[peers] : undefined
      if (maxMoves !== undefined) {
        const [, placed] = learnedLoads('dlht', dlht, keySet, peers, vnodesPerPeer, maxMoves)
        runs.push({ ...base, ...placed })
      }
      for (const row of learnedLoads(
        leafPerPeerName(peers),
        leafPerPeerScheme(sample, peers),
        keySet,
        peers,
        vnodesPerPeer,
        maxMoves,
      )) {
        runs.push({ ...base, ...row })
      }
      if (peers === 10_000 && maxMoves !== undefined) {
        const fine = leafPerPeerScheme(sample, peers, FINE_LEAVES_PER_PEER)
        const name = leafPerPeerName(peers, FINE_LEAVES_PER_PEER)
        const [, placed] = learnedLoads(name, fine, keySet, peers, vnodesPerPeer, maxMoves)
        runs.push({ ...base, ...placed })
      }
      console.log(
        `${peers}x${vnodesPerPeer} ${keySet.name} done at ${((performance.now() - started) / 1000).toFixed(0)} s`,
      )
    }
    if (vnodesPerPeer === 3) {
      for (const scheme of largeSchemes) {
        largeRings.set(
          `${peers}x3/${scheme.name}`,
          scheme === hashing ? hashedRing : await builtRing(scheme, peers, 3),
        )
      }
    }
  }
  for (const { peers, vnodesPerPeer } of LOAD_ONLY_CONFIGS) {
    for (const keySet of sets) {
      const sample = reservoirSample(keySet.keys)
      const base = { peers, vnodesPerPeer, dataset: keySet.name, keys: keySet.keys.length }
      for (const scheme of [
        learnedScheme(sample, { hashSpaceSize: SIZE, vnodePlacement: 'sample-quantiles' }),
        hashing,
        linearScheme(sample, SIZE),
      ]) {
        const ring = new SimRing({
          hashSpaceSize: SIZE,
          vnodeIds: scheme.vnodeIds(peers, vnodesPerPeer, SEED),
        })
        runs.push({ ...base, scheme: scheme.name, load: measureLoad(ring, scheme, keySet) })
      }
      const [fine] = learnedLoads(
        leafPerPeerName(peers),
        leafPerPeerScheme(sample, peers),
        keySet,
        peers,
        vnodesPerPeer,
      )
      runs.push({ ...base, ...fine })
    }
    console.log(
      `${peers}x${vnodesPerPeer} load done at ${((performance.now() - started) / 1000).toFixed(0)} s`,
    )
  }
  const tenMillion = tenMillionKeys(large, largeSchemes, largeRings)
  const study = await placementStudy(lognormal)
  const seconds = (performance.now() - started) / 1000
  const file = writeResults('simulation', {
    config: {
      hashSpaceSize: SIZE.toString(),
      seed: SEED,
      reservoir: RESERVOIR,
      branchingFactor: 100,
      maxMoves: MAX_MOVES,
      fineLeavesPerPeer: FINE_LEAVES_PER_PEER,
      successorListLength: 8,
      ringConfigs: RING_CONFIGS,
      loadOnlyConfigs: LOAD_ONLY_CONFIGS,
      seconds,
    },
    loadTargets: loadTargets(runs, sets),
    runs,
    boxQueries: boxes,
    tenMillion,
    placementStudy: study,
  })
  console.log(`wrote ${file} in ${seconds.toFixed(0)} s`)
}

await main()
