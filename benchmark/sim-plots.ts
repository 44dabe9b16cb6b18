// Hand-written SVG line charts from results/simulation.json into benchmark/plots/: load distribution,
// hops vs N, and range-query messages vs range size. No plotting dependency: a chart is paths and labels.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

interface Series {
  label: string
  points: Array<[number, number]>
  dashed?: boolean
  colour?: string
}

interface Chart {
  title: string
  xLabel: string
  yLabel: string
  xLog: boolean
  yLog: boolean
  series: Series[]
}

interface Run {
  peers: number
  vnodesPerPeer: number
  dataset: string
  scheme: string
  load: { sortedLoadCurve: number[]; lowerBound?: number }
  lookups?: { meanHops: number }
  warmLookups?: { meanHops: number }
  ranges?: Array<{ rangeKeys: number; meanMessages: number }>
}

const WIDTH = 720
const HEIGHT = 400
const MARGIN = { left: 64, right: 230, top: 40, bottom: 52 }
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#7f7f7f', '#8c564b']

/** A round step (1, 2 or 5 × 10^k) that cuts `span` into about five intervals. */
function niceStep(span: number): number {
  const rough = span / 5
  const power = 10 ** Math.floor(Math.log10(rough))
  return ([1, 2, 5, 10].find((m) => m * power >= rough) ?? 10) * power
}
const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results')
const PLOTS = join(dirname(fileURLToPath(import.meta.url)), 'plots')

/** Renders `chart` as a standalone SVG document. */
export function renderChart(chart: Chart): string {
  const all = chart.series.flatMap((series) => series.points)
  const scale = (values: number[], log: boolean, from: number, to: number) => {
    const mapped = values.map((value) => (log ? Math.log10(value) : value))
    let low = Math.min(...mapped)
    let high = Math.max(...mapped)
    if (log) [low, high] = [Math.floor(low), Math.ceil(high)]
    else [low, high] = [Math.min(0, low), high]
    if (high === low) high = low + 1
    const step = log ? 1 : niceStep(high - low)
    if (!log) [low, high] = [Math.floor(low / step) * step, Math.ceil(high / step) * step]
    const at = (value: number) =>
      from + (((log ? Math.log10(value) : value) - low) / (high - low)) * (to - from)
    const ticks = Array.from({ length: Math.round((high - low) / step) + 1 }, (_, i) =>
      log ? 10 ** (low + i) : low + step * i,
    )
    return { at, ticks }
  }
  const x = scale(
    all.map(([value]) => value),
    chart.xLog,
    MARGIN.left,
    WIDTH - MARGIN.right,
  )
  const y = scale(
    all.map(([, value]) => value),
    chart.yLog,
    HEIGHT - MARGIN.bottom,
    MARGIN.top,
  )
  const label = (value: number) =>
    Math.abs(value) >= 1e6
      ? value.toExponential(0)
      : value.toLocaleString('en-US', { maximumFractionDigits: 2 })
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(chart.title)}</text>`,
    `<line x1="${MARGIN.left}" y1="${HEIGHT - MARGIN.bottom}" x2="${WIDTH - MARGIN.right}" y2="${HEIGHT - MARGIN.bottom}" stroke="black"/>`,
    `<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${HEIGHT - MARGIN.bottom}" stroke="black"/>`,
    ...x.ticks.map(
      (tick) =>
        `<text x="${x.at(tick)}" y="${HEIGHT - MARGIN.bottom + 16}" text-anchor="middle">${label(tick)}</text>`,
    ),
    ...y.ticks.map(
      (tick) =>
        `<line x1="${MARGIN.left}" y1="${y.at(tick)}" x2="${WIDTH - MARGIN.right}" y2="${y.at(tick)}" stroke="#ddd"/>` +
        `<text x="${MARGIN.left - 6}" y="${y.at(tick) + 4}" text-anchor="end">${label(tick)}</text>`,
    ),
    `<text x="${(MARGIN.left + WIDTH - MARGIN.right) / 2}" y="${HEIGHT - 12}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
    `<text transform="translate(16 ${(MARGIN.top + HEIGHT - MARGIN.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`,
  ]
  chart.series.forEach((series, i) => {
    const colour = series.colour ?? COLOURS[i % COLOURS.length]
    const path = series.points.map(
      ([px, py], k) => `${k === 0 ? 'M' : 'L'}${x.at(px).toFixed(1)},${y.at(py).toFixed(1)}`,
    )
    const dash = series.dashed ? ' stroke-dasharray="6 4"' : ''
    parts.push(`<path d="${path.join('')}" fill="none" stroke="${colour}" stroke-width="2"${dash}/>`)
    for (const [px, py] of series.points.length <= 12 ? series.points : []) {
      parts.push(`<circle cx="${x.at(px).toFixed(1)}" cy="${y.at(py).toFixed(1)}" r="3" fill="${colour}"/>`)
    }
    const legendY = MARGIN.top + 10 + i * 18
    parts.push(
      `<line x1="${WIDTH - MARGIN.right + 12}" y1="${legendY}" x2="${WIDTH - MARGIN.right + 36}" y2="${legendY}" stroke="${colour}" stroke-width="2"${dash}/>`,
      `<text x="${WIDTH - MARGIN.right + 42}" y="${legendY + 4}">${escapeXml(series.label)}</text>`,
    )
  })
  parts.push('</svg>')
  return `${parts.join('\n')}\n`
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function main(): void {
  const { results } = JSON.parse(readFileSync(join(RESULTS, 'simulation.json'), 'utf8')) as {
    results: { runs: Run[] }
  }
  const runs = results.runs
  const pick = (dataset: string, peers: number, vnodes: number) =>
    runs.filter((run) => run.dataset === dataset && run.peers === peers && run.vnodesPerPeer === vnodes)
  const charts: Record<string, Chart> = {}
  const datasets = [
    'lognormal',
    'zipf',
    'bursty-timestamps',
    'cities-population',
    'english-words',
    'cities-lonlat-hilbert',
    'urls',
  ]
  for (const dataset of datasets) {
    const bound = pick(dataset, 1000, 3).find((run) => run.scheme === 'dlht-placed')?.load.lowerBound ?? 1
    charts[`sim-load-${dataset}.svg`] = {
      title: `Keys per peer, ${dataset}, 1,000 peers × 3 vnodes`,
      xLabel: 'peers, sorted by load (percentile)',
      yLabel: 'load / mean load',
      xLog: false,
      yLog: true,
      series: [
        ...pick(dataset, 1000, 3).map((run) => ({
          label: run.scheme,
          points: run.load.sortedLoadCurve.map((load, i) => [i, Math.max(load, 0.01)] as [number, number]),
        })),
        {
          label: 'target max 1.15',
          dashed: true,
          colour: 'black',
          points: [
            [0, 1.15],
            [100, 1.15],
          ],
        },
        {
          label: `lower bound ${bound.toFixed(2)}`,
          dashed: true,
          colour: '#7f7f7f',
          points: [
            [0, bound],
            [100, bound],
          ],
        },
      ],
    }
  }
  const lognormal = runs.filter(
    (run) => run.dataset === 'lognormal' && run.vnodesPerPeer === 3 && run.lookups,
  )
  const schemes = [...new Set(lognormal.map((run) => run.scheme))]
  const peerCounts = [...new Set(lognormal.map((run) => run.peers))].sort((a, b) => a - b)
  charts['sim-hops-vs-n.svg'] = {
    title: 'Lookup hops vs peers (3 vnodes each, lognormal keys)',
    xLabel: 'peers N',
    yLabel: 'mean hops',
    xLog: true,
    yLog: false,
    series: [
      ...schemes.flatMap((scheme) => {
        const of = lognormal.filter((run) => run.scheme === scheme)
        return [
          {
            label: `${scheme} cold`,
            points: of.map((run) => [run.peers, run.lookups?.meanHops ?? 0] as [number, number]),
          },
          {
            label: `${scheme} warm`,
            dashed: true,
            points: of.map((run) => [run.peers, run.warmLookups?.meanHops ?? 0] as [number, number]),
          },
        ]
      }),
      {
        label: 'target ½ log2 N',
        dashed: true,
        colour: 'black',
        points: peerCounts.map((n) => [n, 0.5 * Math.log2(n)] as [number, number]),
      },
    ],
  }
  charts['sim-range-messages.svg'] = {
    title: 'Messages per range query (lognormal, 1,000 peers × 3 vnodes)',
    xLabel: 'keys in range',
    yLabel: 'messages',
    xLog: true,
    yLog: true,
    series: pick('lognormal', 1000, 3)
      .filter((run) => run.ranges !== undefined)
      .map((run) => ({
        label: run.scheme,
        points: (run.ranges ?? []).map((range) => [range.rangeKeys, range.meanMessages] as [number, number]),
      })),
  }
  mkdirSync(PLOTS, { recursive: true })
  for (const [name, chart] of Object.entries(charts)) {
    writeFileSync(join(PLOTS, name), renderChart(chart))
    console.log(`wrote benchmark/plots/${name}`)
  }
}

main()
