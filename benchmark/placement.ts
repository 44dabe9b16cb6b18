// Load per peer after a rollout on real skewed data and on string keys with long shared prefixes,
// in the same run: dlht's vnode placement (ts/chord/placement) vs consistent hashing vs learned
// positions with hashed vnode ids, at 8 and 32 peers x 3 vnodes; writes results/placement.json.

import { cities, englishWords } from '../__test__/helpers/datasets.js'
import { keyShapes } from '../__test__/helpers/key-shapes.js'
import { placementScenario } from '../__test__/helpers/placement-scenario.js'
import { encodeKeys, RecursiveModelIndex } from '../ts/index.js'
import { writeResults } from './measure.js'

const datasets: Array<[string, Float64Array, string[]]> = [
  [
    'city populations',
    Float64Array.from(cities(), (city) => city.population),
    cities().map((city, i) => `${city.name}/${i}`),
  ],
  ['English words', encodeKeys(englishWords()), englishWords()],
]
// String keys by the fixed text code, and as a node encodes them after its first retrain: by a
// key code learned from them.
for (const [shape, keys] of keyShapes()) datasets.push([`${shape} (text code)`, encodeKeys(keys), keys])
for (const [shape, keys] of [...keyShapes(), ['English words', englishWords()] as [string, string[]]]) {
  const model = await RecursiveModelIndex.trainOnKeys(keys)
  datasets.push([`${shape} (key code)`, model.encodeKeys(keys), keys])
}

const rows = []
for (const [dataset, keys, labels] of datasets) {
  for (const peers of [8, 32]) {
    const run = placementScenario(keys, labels, peers, 3)
    rows.push({ dataset, keys: keys.length, ...run })
    const load = run.imbalance
    console.log(
      `${dataset}, ${peers} x 3: max/mean ours ${load.ours.toFixed(3)} (${run.moves} moves, ` +
        `${run.planMs.toFixed(0)} ms to plan; ${load.afterRollout.toFixed(3)} before them), consistent hashing ` +
        `${load.consistentHashing.toFixed(3)}, learned + hashed ids ${load.learnedHashedIds.toFixed(3)}; ` +
        `no placement below ${load.floor.toFixed(3)}`,
    )
  }
}
console.log(`written to ${writeResults('placement', { rows })}`)
