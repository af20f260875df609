/**
 * The xlsx report (exceljs): a `charts` sheet (PNG bar/column charts drawn by png.ts, the labels
 * and values in the cells beside each bar) and one sheet per table with native date and number
 * formats, an autofilter and a frozen header row.
 */
import ExcelJS from 'exceljs'
import type {ReportData} from './aggregate.js'
import {barChartPng, columnChartPng} from './png.js'
import {PALETTE} from './svg.js'
import {reportTables} from './tables.js'

/** Rows per sheet at most (Excel's own limit is 1,048,576). */
export const MAX_SHEET_ROWS = 1_000_000
/** Bars per chart on the charts sheet. */
export const XLSX_CHART_TOP = 15

const DATE_FMT = 'yyyy-mm-dd hh:mm:ss'
const INT_FMT = '#,##0'
const DEC_FMT = '#,##0.00'
/** 20 px rows: the PNG bars are drawn 20 px apart to line up with them. */
const ROW_PT = 15
const ROW_PX = 20

function toDate(v: unknown): Date | null {
  if (typeof v !== 'string' || v === '') return null
  const d = new Date(v)
  return Number.isNaN(d.getTime()) ? null : d
}

/** Build the workbook (exposed for tests). */
export function buildWorkbook(r: ReportData): ExcelJS.Workbook {
  const wb = new ExcelJS.Workbook()
  wb.creator = 'patchpoint'
  wb.created = new Date(r.generated_at)
  addCharts(wb, r)
  for (const t of reportTables(r)) {
    const ws = wb.addWorksheet(t.name, {views: [{state: 'frozen', ySplit: 1}]})
    ws.columns = t.columns.map((c) => ({
      header: c.header,
      key: c.key,
      width: c.type === 'date' ? 21 : c.type === 'number' ? 14 : Math.min(60, Math.max(12, c.header.length + 2, ...t.rows.slice(0, 200).map((x) => String(x[c.key] ?? '').length + 2))),
      style: c.type === 'date' ? {numFmt: DATE_FMT} : c.type === 'number' ? {numFmt: c.key === 'days_shielded' ? DEC_FMT : INT_FMT} : {},
    }))
    ws.getRow(1).font = {bold: true}
    for (const row of t.rows.slice(0, MAX_SHEET_ROWS)) {
      const out: Record<string, unknown> = {}
      for (const c of t.columns) out[c.key] = c.type === 'date' ? toDate(row[c.key]) : row[c.key]
      ws.addRow(out)
    }
    ws.autoFilter = {from: {row: 1, column: 1}, to: {row: 1, column: t.columns.length}}
  }
  return wb
}

function addCharts(wb: ExcelJS.Workbook, r: ReportData): void {
  const ws = wb.addWorksheet('charts')
  ws.getColumn(1).width = 28
  ws.getColumn(2).width = 12
  let row = 1
  const title = (text: string) => {
    ws.getCell(row, 1).value = text
    ws.getCell(row, 1).font = {bold: true, size: 13}
    row++
  }
  const tl = r.timeline.rows
  title(`Events per ${r.timeline.bucket} (green fix, red drop, blue log, grey shadow, orange anomalies)`)
  if (tl.length > 0) {
    const img = wb.addImage({
      buffer: columnChartPng([
        {color: PALETTE.fix, values: tl.map((x) => x.fix)},
        {color: PALETTE.drop, values: tl.map((x) => x.drop)},
        {color: PALETTE.log, values: tl.map((x) => x.log)},
        {color: PALETTE.shadow, values: tl.map((x) => x.shadow)},
        {color: PALETTE.anomalies, values: tl.map((x) => x.anomalies)},
      ]) as unknown as ExcelJS.Buffer,
      extension: 'png',
    })
    ws.getCell(row, 1).value = `${tl[0].start.slice(0, 16)} .. ${tl[tl.length - 1].start.slice(0, 16)} (see sheet timeline)`
    ws.addImage(img, {tl: {col: 0, row}, ext: {width: 800, height: 240}})
    row += 14
  } else {
    ws.getCell(row, 1).value = 'no data'
    row += 2
  }
  const bars = (name: string, items: {label: string; value: number}[], color: string) => {
    title(name)
    const start = row
    for (const it of items) {
      const r1 = ws.getRow(row)
      r1.height = ROW_PT
      r1.getCell(1).value = it.label
      r1.getCell(2).value = it.value
      r1.getCell(2).numFmt = INT_FMT
      row++
    }
    if (items.length === 0) {
      ws.getCell(row, 1).value = 'no data'
      row++
    } else {
      const img = wb.addImage({buffer: barChartPng(items.map((i) => i.value), color, {rowHeight: ROW_PX}) as unknown as ExcelJS.Buffer, extension: 'png'})
      ws.addImage(img, {tl: {col: 2, row: start - 1}, ext: {width: 400, height: items.length * ROW_PX + 4}})
    }
    row += 2
  }
  bars('Alerts by action', r.actions.map((a) => ({label: a.action, value: a.count})), PALETTE.value)
  bars('Top CVEs', r.cves.slice(0, XLSX_CHART_TOP).map((c) => ({label: c.key, value: c.count})), PALETTE.drop)
  bars('Top attacking sources', r.sources.slice(0, XLSX_CHART_TOP).map((c) => ({label: c.key, value: c.count})), PALETTE.anomalies)
  bars('Coverage', [
    {label: 'rules loaded', value: r.coverage.rules_loaded ?? 0},
    {label: 'rules fired', value: r.coverage.rules_fired},
    {label: 'services protected', value: r.coverage.services_protected},
    {label: 'hosts protected', value: r.coverage.hosts_protected},
    {label: 'shadow would block', value: r.coverage.shadow_would_block},
  ], PALETTE.fix)
}

/** The xlsx file's bytes. */
export async function renderXlsx(r: ReportData): Promise<Buffer> {
  const buf = await buildWorkbook(r).xlsx.writeBuffer()
  return Buffer.from(buf as ArrayBuffer)
}
