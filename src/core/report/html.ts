/**
 * The html report: one self-contained file (inline CSS and SVG, no script, no external
 * reference; a Content-Security-Policy forbids fetching anything), so it opens offline and a
 * hostile string in the event log stays text.
 */
import type {ReportData} from './aggregate.js'
import {barChart, escapeXml as esc, PALETTE, stackedColumns} from './svg.js'
import {reportTables} from './tables.js'
import type {ReportTable} from './tables.js'

/** Rows per html table (the tables are already top-N; this caps exposure and the timeline). */
export const MAX_HTML_ROWS = 500
/** Bars in a top-N chart. */
export const CHART_TOP = 15

function cell(v: string | number | null | undefined, type: string): string {
  if (v === null || v === undefined) return '<td></td>'
  if (type === 'number') return `<td class="n">${typeof v === 'number' ? v.toLocaleString('en-US') : esc(String(v))}</td>`
  if (type === 'date') return `<td>${esc(String(v).replace('T', ' ').replace(/\.\d+Z$/, 'Z'))}</td>`
  return `<td>${esc(String(v))}</td>`
}

function htmlTable(t: ReportTable): string {
  const rows = t.rows.slice(0, MAX_HTML_ROWS)
  const more = t.rows.length > rows.length ? `<p class="note">${t.rows.length - rows.length} more rows in the csv / xlsx / json report</p>` : ''
  return `<section id="${esc(t.name)}"><h2>${esc(t.title)}</h2><table><thead><tr>${t.columns.map((c) => `<th>${esc(c.header)}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${t.columns.map((c) => cell(r[c.key], c.type)).join('')}</tr>`).join('')}</tbody></table>${more}</section>`
}

/** Render the whole report as one html document. */
export function renderHtml(r: ReportData, title = 'patchpoint report'): string {
  const tl = r.timeline.rows
  const labels = tl.map((x) => (r.timeline.bucket === 'day' ? x.start.slice(0, 10) : x.start.slice(0, 13).replace('T', ' ') + 'h'))
  const charts = [
    stackedColumns(`Events per ${r.timeline.bucket}`, labels, [
      {name: 'fix', color: PALETTE.fix, values: tl.map((x) => x.fix)},
      {name: 'drop', color: PALETTE.drop, values: tl.map((x) => x.drop)},
      {name: 'log', color: PALETTE.log, values: tl.map((x) => x.log)},
      {name: 'shadow', color: PALETTE.shadow, values: tl.map((x) => x.shadow)},
      {name: 'anomalies', color: PALETTE.anomalies, values: tl.map((x) => x.anomalies)},
    ]),
    barChart('Alerts by action', r.actions.map((a) => ({label: a.action, value: a.count}))),
    barChart('Top CVEs', r.cves.slice(0, CHART_TOP).map((c) => ({label: c.key, value: c.count})), {color: PALETTE.drop}),
    barChart('Top attacking sources', r.sources.slice(0, CHART_TOP).map((c) => ({label: c.key, value: c.count})), {color: PALETTE.anomalies}),
    barChart('Coverage', [
      {label: 'rules loaded', value: r.coverage.rules_loaded ?? 0},
      {label: 'rules fired', value: r.coverage.rules_fired},
      {label: 'services protected', value: r.coverage.services_protected},
      {label: 'hosts protected', value: r.coverage.hosts_protected},
      {label: 'shadow would block', value: r.coverage.shadow_would_block},
    ], {color: PALETTE.fix}),
  ]
  const period = `${r.period.since ?? r.period.first_event ?? '-'} to ${r.period.until ?? r.period.last_event ?? '-'}`
  const approx = r.limits.approximate
    ? '<p class="warn">Some tables hit their size limit: their counts are upper bounds (column "max overcount").</p>' : ''
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f1f3f5;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.charts svg{display:block;margin:12px 0}
.note{color:#666;font-size:12px}.warn{color:#c92a2a}
</style></head><body>
<h1>${esc(title)}</h1>
<p>Period: ${esc(period)}. Generated ${esc(r.generated_at)}. ${r.totals.events.toLocaleString('en-US')} events from ${r.inputs.length} log(s), ${r.coverage.gateways} gateway(s).</p>
${approx}
<div class="charts">${charts.join('\n')}</div>
${reportTables(r).map(htmlTable).join('\n')}
</body></html>
`
}
