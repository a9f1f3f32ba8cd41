// A small SVG writer for the two charts in docs/benchmarks.md: memory
// against sessions (lines) and login latency per variant (bars). No
// dependencies, no network; text is escaped.

const W = 640
const H = 360
const M = { top: 40, right: 20, bottom: 50, left: 70 }
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd']

function esc (s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c)
}

function niceMax (v: number): number {
  if (!(v > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p
  return 10 * p
}

function frame (title: string, xLabel: string, yLabel: string, yMax: number): string[] {
  const ph = H - M.top - M.bottom
  const out = [
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${W / 2}" y="${H - 10}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`
  ]
  for (let i = 0; i <= 5; i++) {
    const v = yMax * i / 5
    const y = M.top + ph - ph * i / 5
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${M.left - 6}" y="${y + 4}" text-anchor="end" font-size="11">${Math.round(v).toLocaleString('en-US')}</text>`)
  }
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#333"/>`,
    `<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#333"/>`)
  return out
}

function svg (parts: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="Helvetica, Arial, sans-serif">\n${parts.join('\n')}\n</svg>\n`
}

export interface Line { name: string, points: Array<[number, number]> }

export function lineChart (title: string, xLabel: string, yLabel: string, lines: Line[]): string {
  const xMax = Math.max(1, ...lines.flatMap((l) => l.points.map((p) => p[0])))
  const yMax = niceMax(Math.max(...lines.flatMap((l) => l.points.map((p) => p[1]))))
  const pw = W - M.left - M.right
  const ph = H - M.top - M.bottom
  const x = (v: number): number => M.left + pw * v / xMax
  const y = (v: number): number => M.top + ph - ph * v / yMax
  const out = frame(title, xLabel, yLabel, yMax)
  const xs = [...new Set(lines.flatMap((l) => l.points.map((p) => p[0])))].sort((a, b) => a - b)
  for (const v of xs) out.push(`<text x="${x(v)}" y="${M.top + ph + 16}" text-anchor="middle" font-size="11">${v}</text>`)
  lines.forEach((l, i) => {
    const c = COLORS[i % COLORS.length]!
    const pts = l.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2.5" points="${pts}"/>`)
    for (const p of l.points) {
      out.push(`<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3.5" fill="${c}"/>`)
      out.push(`<text x="${(x(p[0]) - 4).toFixed(1)}" y="${(y(p[1]) - 8).toFixed(1)}" text-anchor="end" font-size="10" fill="${c}">${Math.round(p[1]).toLocaleString('en-US')}</text>`)
    }
    out.push(`<rect x="${M.left + 12}" y="${M.top + 6 + i * 18}" width="12" height="12" fill="${c}"/>`,
      `<text x="${M.left + 30}" y="${M.top + 16 + i * 18}" font-size="12">${esc(l.name)}</text>`)
  })
  return svg(out)
}

export interface Bar { label: string, value: number, group?: number }

export function barChart (title: string, yLabel: string, bars: Bar[]): string {
  const yMax = niceMax(Math.max(...bars.map((b) => b.value)))
  const pw = W - M.left - M.right
  const ph = H - M.top - M.bottom
  const slot = pw / bars.length
  const out = frame(title, '', yLabel, yMax)
  bars.forEach((b, i) => {
    const h = ph * b.value / yMax
    const c = COLORS[(b.group ?? i) % COLORS.length]!
    const x0 = M.left + slot * i + slot * 0.15
    out.push(`<rect x="${x0.toFixed(1)}" y="${(M.top + ph - h).toFixed(1)}" width="${(slot * 0.7).toFixed(1)}" height="${h.toFixed(1)}" fill="${c}"/>`,
      `<text x="${(x0 + slot * 0.35).toFixed(1)}" y="${(M.top + ph - h - 5).toFixed(1)}" text-anchor="middle" font-size="11">${Math.round(b.value).toLocaleString('en-US')}</text>`)
    const words = b.label.split(' ')
    const mid = Math.ceil(words.length / 2)
    ;[words.slice(0, mid).join(' '), words.slice(mid).join(' ')].forEach((line, k) => {
      out.push(`<text x="${(x0 + slot * 0.35).toFixed(1)}" y="${M.top + ph + 15 + k * 13}" text-anchor="middle" font-size="10">${esc(line)}</text>`)
    })
  })
  return svg(out)
}
