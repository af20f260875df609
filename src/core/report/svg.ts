/**
 * A small SVG chart builder for the html report: horizontal bar charts (top-N tables) and
 * stacked column charts (time series). Output is plain SVG markup with every text escaped, no
 * script, no external reference, so it renders offline and cannot carry markup from the log.
 */

/** Most bars / columns drawn in one chart. */
export const MAX_CHART_ITEMS = 400

export const PALETTE: Record<string, string> = {
  fix: '#2b8a3e',
  drop: '#c92a2a',
  log: '#1971c2',
  shadow: '#868e96',
  anomalies: '#e67700',
  value: '#5f3dc4',
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'))
    // control characters are not allowed in XML 1.0
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '\ufffd')
}

const fmt = (v: number): string => (Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(2))

function shorten(s: string, max: number): string {
  return s.length > max ? s.slice(0, max - 1) + '…' : s
}

export interface BarItem {
  label: string
  value: number
}

/** Horizontal bars, one per item, value printed at the end of each bar. */
export function barChart(title: string, items: readonly BarItem[], opts: {width?: number; color?: string} = {}): string {
  const list = items.slice(0, MAX_CHART_ITEMS)
  const width = opts.width ?? 640
  const labelW = 180
  const barH = 18
  const gap = 6
  const top = 28
  const height = top + Math.max(1, list.length) * (barH + gap) + 8
  const max = Math.max(1, ...list.map((i) => i.value))
  const avail = width - labelW - 80
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(title)}">`,
    `<title>${escapeXml(title)}</title>`,
    `<text x="0" y="16" font-size="14" font-weight="bold" font-family="sans-serif">${escapeXml(title)}</text>`,
  ]
  if (list.length === 0) parts.push(`<text x="0" y="${top + 14}" font-size="12" font-family="sans-serif" fill="#666">no data</text>`)
  list.forEach((it, i) => {
    const y = top + i * (barH + gap)
    const w = Math.max(it.value > 0 ? 1 : 0, Math.round((Math.max(0, it.value) / max) * avail))
    parts.push(
      `<text x="${labelW - 6}" y="${y + 13}" font-size="12" font-family="monospace" text-anchor="end">${escapeXml(shorten(it.label, 24))}</text>`,
      `<rect x="${labelW}" y="${y}" width="${w}" height="${barH}" fill="${opts.color ?? PALETTE.value}"><title>${escapeXml(it.label)}: ${fmt(it.value)}</title></rect>`,
      `<text x="${labelW + w + 4}" y="${y + 13}" font-size="12" font-family="sans-serif">${fmt(it.value)}</text>`,
    )
  })
  parts.push('</svg>')
  return parts.join('')
}

export interface Series {
  name: string
  color: string
  values: readonly number[]
}

/** Stacked columns over time (one column per bucket), with a legend and a y-axis maximum. */
export function stackedColumns(title: string, labels: readonly string[], series: readonly Series[], opts: {width?: number; height?: number} = {}): string {
  const n = Math.min(labels.length, MAX_CHART_ITEMS)
  const width = opts.width ?? 800
  const height = opts.height ?? 260
  const left = 60
  const top = 40
  const bottom = 40
  const plotW = width - left - 10
  const plotH = height - top - bottom
  const totals = Array.from({length: n}, (_, i) => series.reduce((a, s) => a + Math.max(0, s.values[i] ?? 0), 0))
  const max = Math.max(1, ...totals)
  const colW = n > 0 ? plotW / n : plotW
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(title)}">`,
    `<title>${escapeXml(title)}</title>`,
    `<text x="0" y="16" font-size="14" font-weight="bold" font-family="sans-serif">${escapeXml(title)}</text>`,
  ]
  let lx = left
  for (const s of series) {
    parts.push(`<rect x="${lx}" y="24" width="10" height="10" fill="${s.color}"/>`,
      `<text x="${lx + 14}" y="33" font-size="11" font-family="sans-serif">${escapeXml(s.name)}</text>`)
    lx += 24 + s.name.length * 7
  }
  parts.push(
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333"/>`,
    `<text x="${left - 4}" y="${top + 10}" font-size="11" font-family="sans-serif" text-anchor="end">${fmt(max)}</text>`,
    `<text x="${left - 4}" y="${top + plotH}" font-size="11" font-family="sans-serif" text-anchor="end">0</text>`,
  )
  if (n === 0) parts.push(`<text x="${left + 8}" y="${top + 20}" font-size="12" font-family="sans-serif" fill="#666">no data</text>`)
  for (let i = 0; i < n; i++) {
    let y = top + plotH
    const x = left + i * colW
    for (const s of series) {
      const v = Math.max(0, s.values[i] ?? 0)
      if (v === 0) continue
      const h = (v / max) * plotH
      y -= h
      parts.push(`<rect x="${x.toFixed(2)}" y="${y.toFixed(2)}" width="${Math.max(0.5, colW - 1).toFixed(2)}" height="${h.toFixed(2)}" fill="${s.color}"><title>${escapeXml(labels[i])} ${escapeXml(s.name)}: ${fmt(v)}</title></rect>`)
    }
  }
  if (n > 0) {
    parts.push(`<text x="${left}" y="${height - 20}" font-size="11" font-family="sans-serif">${escapeXml(labels[0])}</text>`)
    if (n > 1) parts.push(`<text x="${left + plotW}" y="${height - 20}" font-size="11" font-family="sans-serif" text-anchor="end">${escapeXml(labels[n - 1])}</text>`)
  }
  parts.push('</svg>')
  return parts.join('')
}
