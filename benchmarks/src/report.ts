/** Turns benchmarks/results/*.json into docs/benchmarks.md and SVG charts. */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { table } from './harness.js'
import type { ScenarioResult } from './scenarios.js'

const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url))
const CHARTS = `${DOCS}benchmarks/`
const ORDER = [
  'l1-hit',
  'l2-hit',
  'miss-load',
  'batch',
  'stampede',
  'propagation',
  'hit-ratio',
  'memory',
  'codec',
  'telemetry-overhead',
]

interface Stored extends ScenarioResult {
  meta: {
    node: string
    cpus: number
    cpuModel: string
    memoryGiB: number
    date: string
    quick: boolean
    seconds: number
  }
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const num = (s: string | number | undefined) =>
  typeof s === 'number' ? s : Number((s ?? '').replace(/[,%×]/g, ''))

/** Horizontal bars of one numeric column (a ratio), one bar per contender. */
function barChart(title: string, labels: string[], values: number[], unit: string): string {
  const w = 760
  const rowH = 26
  const left = 330
  const h = 50 + labels.length * rowH
  const max = Math.max(...values.filter(Number.isFinite), 1)
  const bars = labels
    .map((label, i) => {
      const v = values[i] ?? 0
      const y = 40 + i * rowH
      const len = Number.isFinite(v) ? Math.max(1, ((w - left - 90) * v) / max) : 0
      const fill = label.startsWith('strata') ? '#2b6cb0' : '#a0aec0'
      return `<text x="${left - 8}" y="${y + 15}" text-anchor="end" font-size="12">${esc(label)}</text><rect x="${left}" y="${y + 3}" width="${len.toFixed(1)}" height="16" fill="${fill}"/><text x="${(left + len + 6).toFixed(1)}" y="${y + 15}" font-size="12">${Number.isFinite(v) ? v.toFixed(2) : 'n/a'}${unit}</text>`
    })
    .join('\n')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-size="14" font-weight="bold">${esc(title)}</text>\n${bars}\n</svg>\n`
}

/** Latency CDF lines for the propagation scenario. */
function cdfChart(title: string, series: Record<string, number[]>): string {
  const w = 760
  const h = 420
  const l = 60
  const b = 360
  const finite = Object.values(series).flat().filter(Number.isFinite)
  const maxX = Math.max(percentileOf(finite, 99.5), 0.01)
  const colors = ['#a0aec0', '#2b6cb0', '#dd6b20', '#718096', '#2c5282', '#c05621']
  const lines = Object.entries(series)
    .map(([name, xs], i) => {
      const pts = xs
        .filter(Number.isFinite)
        .map(
          (x, j, arr) =>
            `${(l + ((w - l - 20) * Math.min(Math.max(x, 0), maxX)) / maxX).toFixed(1)},${(b - ((b - 40) * (j + 1)) / arr.length).toFixed(1)}`,
        )
      const color = colors[i % colors.length] ?? '#000'
      return `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/><text x="${w - 330}" y="${b - 250 + i * 16}" font-size="11" fill="${color}">${esc(name)}</text>`
    })
    .join('\n')
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map(
      (f) =>
        `<text x="${(l + (w - l - 20) * f).toFixed(1)}" y="${b + 16}" font-size="11" text-anchor="middle">${(maxX * f).toFixed(2)} ms</text>`,
    )
    .join('')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-size="14" font-weight="bold">${esc(title)}</text><line x1="${l}" y1="${b}" x2="${w - 20}" y2="${b}" stroke="black"/><line x1="${l}" y1="40" x2="${l}" y2="${b}" stroke="black"/><text x="12" y="${b}" font-size="11">0%</text><text x="12" y="46" font-size="11">100%</text>${ticks}\n${lines}\n</svg>\n`
}

function percentileOf(xs: number[], p: number): number {
  const s = [...xs].sort((a, c) => a - c)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0
}

const CHART_COLUMN: Record<string, string> = {
  'l1-hit': 'get ÷ awaited lru',
  'l2-hit': 'throughput ÷ raw',
  'miss-load': '÷ hand-written',
  batch: 'speed-up',
  stampede: '÷ bare',
  'hit-ratio': 's = 1',
  memory: '÷ raw',
  codec: '~300 B ÷ JSON',
  'telemetry-overhead': '÷ off',
  propagation: 'p99 ÷ raw',
}

export function writeReport(resultsDir: string): string {
  mkdirSync(CHARTS, { recursive: true })
  const results = readdirSync(resultsDir)
    .filter((f) => f.endsWith('.json') && !f.endsWith('.tmp.json'))
    .map((f) => JSON.parse(readFileSync(`${resultsDir}${f}`, 'utf8')) as Stored)
    .sort((a, c) => ORDER.indexOf(a.scenario) - ORDER.indexOf(c.scenario))
  const version = (name: string) => {
    try {
      const file = new URL(`../node_modules/${name}/package.json`, import.meta.url)
      return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
    } catch {
      return 'n/a'
    }
  }
  const first = results[0]?.meta
  const out: string[] = [
    '# Benchmarks',
    '',
    'Generated by `pnpm bench` from `benchmarks/results/*.json` (do not edit by hand; re-run to refresh).',
    'Every comparison runs all contenders in the same run, interleaved and repeated, and reports medians and ratios to a baseline measured in that run.',
    '',
    '## Machine and versions',
    '',
    `- ${first ? `${first.cpuModel}, ${first.cpus} cores, ${first.memoryGiB} GiB; Node ${first.node}${first.quick ? ' (--quick)' : ''}` : 'no results yet'}`,
    // Scenarios can be re-run one at a time: say when each result was measured.
    `- Runs: ${results.map((r) => `${r.scenario} ${r.meta.date.slice(0, 10)}`).join(', ')}`,
    `- Redis: a local redis-server started by the harness on loopback; contenders: bentocache ${version('bentocache')}, cacheable ${version('cacheable')}, cache-manager ${version('cache-manager')}, @keyv/redis ${version('@keyv/redis')}, async-cache-dedupe ${version('async-cache-dedupe')}, lru-cache ${version('lru-cache')}, ioredis ${version('ioredis')}, msgpackr ${version('msgpackr')}`,
    '- Reproduce: `npx -y pnpm@10 bench` (all scenarios) or `npx -y pnpm@10 bench l1-hit propagation` (some); `--quick` for a short run.',
    '',
    '## Summary of targets',
    '',
    table(
      ['scenario', 'target', 'result', 'met'],
      results.flatMap((r) =>
        r.targets.map((t) => [
          r.scenario,
          t.text,
          t.detail,
          t.met === null ? '·' : t.met ? 'yes' : '**no**',
        ]),
      ),
    ),
    '',
  ]
  for (const r of results) {
    out.push(
      `## ${r.scenario}: ${r.title}`,
      '',
      `Method: ${r.method}.`,
      '',
      `Isolation: ${r.isolation}`,
      '',
    )
    out.push(
      table(
        ['contender', ...r.columns],
        r.rows.map((row) => [row.contender, ...r.columns.map((c) => String(row[c] ?? ''))]),
      ),
      '',
    )
    for (const t of r.targets)
      out.push(
        `- Target: ${t.text} — ${t.detail} (${t.met === null ? 'informational' : t.met ? 'met' : '**missed**'})`,
      )
    for (const s of r.skipped) out.push(`- Skipped: ${s}`)
    const column = CHART_COLUMN[r.scenario]
    if (column && r.columns.includes(column)) {
      const file = `${r.scenario}.svg`
      writeFileSync(
        `${CHARTS}${file}`,
        barChart(
          `${r.scenario}: ${column}`,
          r.rows.map((x) => x.contender),
          r.rows.map((x) => num(x[column])),
          r.scenario === 'hit-ratio' ? '%' : '×',
        ),
      )
      out.push('', `![${r.scenario}](benchmarks/${file})`)
    }
    const cdf = (r.extra?.['cdf'] ?? undefined) as Record<string, number[]> | undefined
    if (cdf) {
      writeFileSync(`${CHARTS}propagation-cdf.svg`, cdfChart('propagation latency CDF (ms)', cdf))
      out.push('', '![propagation CDF](benchmarks/propagation-cdf.svg)')
    }
    out.push('')
  }
  const notes = `${DOCS}benchmarks-notes.md`
  if (existsSync(notes)) out.push(readFileSync(notes, 'utf8'))
  const doc = `${DOCS}benchmarks.md`
  writeFileSync(doc, out.join('\n'))
  return doc
}
