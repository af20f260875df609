/**
 * Text renderings of a report: csv (csv-stringify, one table per file), json, and terminal
 * tables with bar charts.
 */
import {stringify} from 'csv-stringify/sync'
import {renderTable} from '../../cli/output.js'
import type {ReportData} from './aggregate.js'
import {reportTables} from './tables.js'
import type {ReportTable} from './tables.js'

export const REPORT_FORMATS = ['table', 'csv', 'xlsx', 'html', 'json'] as const
export type ReportFormat = (typeof REPORT_FORMATS)[number]

/** Width of the terminal bar column. */
export const BAR_WIDTH = 30
/** Rows per terminal table. */
export const TERMINAL_ROWS = 15

/** One table as CSV (header row, ISO dates, plain numbers). */
export function tableCsv(t: ReportTable): string {
  return stringify([t.columns.map((c) => c.header), ...t.rows.map((r) => t.columns.map((c) => r[c.key] ?? ''))])
}

/** Every table as CSV, keyed by file name (`<table>.csv`). */
export function renderCsvFiles(r: ReportData): Map<string, string> {
  const out = new Map<string, string>()
  for (const t of reportTables(r)) out.set(`${t.name}.csv`, tableCsv(t))
  return out
}

/** All tables in one stream: each preceded by a `# <table>` line, separated by a blank line. */
export function renderCsvStream(r: ReportData): string {
  return reportTables(r).map((t) => `# ${t.name}\n${tableCsv(t)}`).join('\n')
}

export function renderJson(r: ReportData): string {
  return JSON.stringify(r, null, 2) + '\n'
}

/** A bar of `width` cells for value/max, with eighth-block resolution. */
export function bar(value: number, max: number, width = BAR_WIDTH): string {
  if (!(max > 0) || !(value > 0)) return ''
  const eighths = Math.max(1, Math.round((Math.min(value, max) / max) * width * 8))
  const full = Math.floor(eighths / 8)
  const rest = eighths % 8
  return '█'.repeat(full) + (rest > 0 ? ' ▏▎▍▌▋▊▉'[rest] : '')
}

/** Terminal rendering: summary, then each non-empty table with a bar column. */
export function renderTerminal(r: ReportData, opts: {interactive?: boolean; rows?: number} = {}): string {
  const rowsMax = opts.rows ?? TERMINAL_ROWS
  const out: string[] = []
  const period = `${r.period.since ?? r.period.first_event ?? '-'} .. ${r.period.until ?? r.period.last_event ?? '-'}`
  out.push(`patchpoint report: ${r.totals.events} events, ${r.totals.alerts} alerts, ${r.totals.anomalies} anomalies, ${r.coverage.gateways} gateway(s); ${period}`)
  if (r.limits.approximate) out.push('note: some tables hit their size limit; counts there are upper bounds (max overcount column in csv/xlsx/json)')
  for (const t of reportTables(r)) {
    if (t.name === 'summary' || t.name === 'inputs' || t.rows.length === 0) continue
    const barKey = t.columns.find((c) => c.type === 'number')?.key
    const shown = t.name === 'timeline' ? t.rows.slice(-rowsMax * 2) : t.rows.slice(0, rowsMax)
    const cols = t.columns.filter((c) => c.key !== 'error' && c.key !== 'first_seen' && c.key !== 'retired_at')
    const wantBar = barKey !== undefined && t.name !== 'coverage'
    const values = shown.map((row) => (t.name === 'timeline' ? ['fix', 'log', 'drop', 'shadow', 'anomalies'].reduce((a, k) => a + Number(row[k] ?? 0), 0) : Number(row[barKey ?? ''] ?? 0)))
    const max = Math.max(0, ...values)
    out.push('', t.title + (t.rows.length > shown.length ? ` (${shown.length} of ${t.rows.length})` : ''))
    out.push(renderTable(
      [...cols.map((c) => c.header), ...(wantBar ? [''] : [])],
      shown.map((row, i) => [
        ...cols.map((c) => {
          const v = row[c.key]
          if (v === null || v === undefined) return ''
          if (c.type === 'date') return String(v).slice(0, 19).replace('T', ' ')
          return v
        }),
        ...(wantBar ? [bar(values[i], max)] : []),
      ]),
      {interactive: opts.interactive, align: [...cols.map((c) => (c.type === 'number' ? 'right' as const : 'left' as const)), 'left']},
    ))
  }
  return out.join('\n')
}
