// Federated averaging against central training on the union of the keys, in the same run: error
// ratio, averaging time and bytes per round at 3 and 8 contributors; writes results/federated.json.

import { cities, englishWords, lognormalKeys, sorted, splitByRange } from '../__test__/helpers/datasets.js'
import { meanPositionError } from '../__test__/helpers/model-error.js'
import { encodeKeys, RecursiveModelIndex } from '../ts/index.js'
import { writeResults } from './measure.js'

const OPTIONS = { branchingFactor: 100, modelType: 'linear', stage1ModelType: 'linear' } as const
/** A node's reservoir sample: what it would ship instead of its model. */
const SAMPLE_KEYS = 10_000

const datasets: Array<[string, Float64Array]> = [
  ['lognormal 100k', sorted(lognormalKeys(100_000, 5))],
  ['city populations', sorted(Float64Array.from(cities(), (city) => city.population))],
  ['English words', sorted(encodeKeys(englishWords()))],
]

const rows = []
for (const [dataset, keys] of datasets) {
  const central = await RecursiveModelIndex.trainNew(keys, OPTIONS)
  const centralError = meanPositionError(central, keys)
  for (const nodes of [3, 8]) {
    for (const split of ['even', 'uneven'] as const) {
      const parts = splitByRange(keys, nodes, split === 'even' ? null : 0)
      const contributions = parts.map((part) => {
        const local = new RecursiveModelIndex(OPTIONS)
        local.train(part)
        return { model: local.serialize(), weight: part.length }
      })
      const started = performance.now()
      const federated = await RecursiveModelIndex.federatedAverage(contributions, OPTIONS)
      const averagingMs = performance.now() - started
      // A round: every contribution (a model, or a sample) to the coordinator, the global model
      // back to every node.
      const broadcast = nodes * federated.serialize().byteLength
      const modelBytes = contributions.reduce((sum, c) => sum + c.model.byteLength, broadcast)
      const sampleBytes = parts.reduce((sum, part) => sum + 8 * Math.min(part.length, SAMPLE_KEYS), broadcast)
      rows.push({
        dataset,
        nodes,
        split,
        errorRatio: meanPositionError(federated, keys) / centralError,
        averagingMs,
        modelBytesPerRound: modelBytes,
        sampleBytesPerRound: sampleBytes,
      })
      const row = rows[rows.length - 1]
      console.log(
        `${dataset}, ${nodes} nodes, ${split}: federated/central error ${row.errorRatio.toFixed(3)}, ` +
          `${averagingMs.toFixed(0)} ms, ${modelBytes} model bytes vs ${sampleBytes} sample bytes per round`,
      )
    }
  }
}
console.log(`written to ${writeResults('federated', { options: OPTIONS, sampleKeys: SAMPLE_KEYS, rows })}`)
