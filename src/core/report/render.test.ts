import {inflateSync} from 'node:zlib'
import ExcelJS from 'exceljs'
import {describe, expect, it} from 'vitest'
import type {EveEvent} from '../events/eve.js'
import {ReportAggregator} from './aggregate.js'
import {bar, renderCsvFiles, renderCsvStream, renderTerminal} from './format.js'
import {renderHtml} from './html.js'
import {barChartPng, crc32} from './png.js'
import {escapeXml} from './svg.js'
import {bruteForce, generateEvents} from './testing.js'
import {buildWorkbook, renderXlsx} from './xlsx.js'

/** RFC 4180 reader for the tests (quoted fields, doubled quotes); columns: true -> objects */
function parse(text: string, _o: {columns: true}): Record<string, string>[] {
  const rows: string[][] = []
  let row: string[] = []
  let f = ''
  let q = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (q) {
      if (c === '"' && text[i + 1] === '"') { f += '"'; i++ } else if (c === '"') q = false
      else f += c
    } else if (c === '"') q = true
    else if (c === ',') { row.push(f); f = '' } else if (c === '\n') { row.push(f); rows.push(row); row = []; f = '' } else f += c
  }
  if (f !== '' || row.length > 0) { row.push(f); rows.push(row) }
  const [head, ...body] = rows
  return body.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i]])))
}

const events = [...generateEvents(1500, {seed: 11, gateways: ['gw-a', 'gw-b', 'gw-c']})]
const brute = bruteForce(events)
const agg = new ReportAggregator({topRows: 1000, rulesLoaded: ['PP-2021-44228', 'PP-UNUSED']})
for (const ev of events) agg.add(ev)
const data = agg.result()

describe('csv', () => {
  it('one file per table; figures equal the brute-force counts', () => {
    const files = renderCsvFiles(data)
    expect([...files.keys()]).toEqual(expect.arrayContaining(['summary.csv', 'rules.csv', 'cves.csv', 'sources.csv', 'timeline.csv', 'exposure.csv']))
    const rows = parse(files.get('sources.csv')!, {columns: true}) as Record<string, string>[]
    expect(new Map(rows.map((r) => [r.source, Number(r.events)]))).toEqual(brute.byKey.sources)
    const summary = Object.fromEntries((parse(files.get('summary.csv')!, {columns: true}) as {figure: string; value: string}[]).map((r) => [r.figure, Number(r.value)]))
    expect(summary.alerts).toBe(brute.alerts)
    expect(summary['alerts fixed']).toBe(brute.byAction.fix)
    expect(renderCsvStream(data)).toMatch(/^# summary\nfigure,value\n/)
  })
})

describe('xlsx', () => {
  it('reads back: a sheet per table, native dates and numbers, autofilter, frozen header, chart images', async () => {
    const buf = await renderXlsx(data)
    const wb = new ExcelJS.Workbook()
    await wb.xlsx.load(buf as unknown as ExcelJS.Buffer)
    const names = wb.worksheets.map((w) => w.name)
    expect(names).toEqual(['charts', 'summary', 'timeline', 'actions', 'rules', 'cves', 'sources', 'destinations', 'services', 'gateways', 'anomalies', 'coverage', 'exposure', 'inputs'])
    const rules = wb.getWorksheet('rules')!
    expect(rules.getRow(1).getCell(1).value).toBe('rule')
    expect(rules.views[0]).toMatchObject({state: 'frozen', ySplit: 1})
    expect(rules.autoFilter).toBeTruthy()
    const got = new Map<string, number>()
    rules.eachRow((row, i) => {
      if (i > 1) got.set(String(row.getCell(1).value), Number(row.getCell(2).value))
    })
    expect(got).toEqual(brute.byKey.rules)
    const last = rules.getRow(2).getCell(8)
    expect(last.value).toBeInstanceOf(Date)
    expect(last.numFmt).toBe('yyyy-mm-dd hh:mm:ss')
    expect(rules.getRow(2).getCell(2).numFmt).toBe('#,##0')
    const tl = wb.getWorksheet('timeline')!
    let alerts = 0
    tl.eachRow((row, i) => {
      if (i > 1) for (let c = 2; c <= 5; c++) alerts += Number(row.getCell(c).value)
    })
    expect(alerts).toBe(brute.alerts)
    const charts = wb.getWorksheet('charts')!
    expect(charts.getImages().length).toBe(5)
    const media = (wb as unknown as {model: {media: {extension: string; buffer: Buffer}[]}}).model.media
    expect(media.every((m) => m.extension === 'png' && Buffer.from(m.buffer).subarray(1, 4).toString() === 'PNG')).toBe(true)
  })

  it('builds with an empty report', () => {
    const wb = buildWorkbook(new ReportAggregator().result())
    expect(wb.getWorksheet('rules')!.rowCount).toBe(1)
  })
})

describe('html', () => {
  it('is self-contained, has the five charts, and escapes log content', () => {
    const evil: EveEvent = {
      timestamp: '2026-01-01T00:00:00.000000+0000', event_type: 'alert', src_ip: '<script>alert(1)</script>', dest_ip: '"><img src=x onerror=alert(1)>',
      alert: {action: 'blocked', gid: 1, signature_id: 1, rev: 1, signature: 's', category: 'c', severity: 1},
      patchpoint: {action: 'drop', rule_id: '</svg><script>x</script>', cves: ['CVE-<b>'], gateway: 'gw'},
    }
    const a = new ReportAggregator()
    a.add(evil)
    const html = renderHtml(a.result())
    expect(html).not.toMatch(/<script/i)
    expect(html).not.toMatch(/<img/i)
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//i)
    expect(html).toContain("default-src 'none'")
    const full = renderHtml(data)
    expect(full.match(/<svg /g)?.length).toBe(5)
    for (const t of ['Events per', 'Alerts by action', 'Top CVEs', 'Top attacking sources', 'Coverage']) expect(full).toContain(t)
  })
  it('escapeXml removes control characters', () => {
    expect(escapeXml('a\u0001<&')).toBe('a\ufffd&lt;&amp;')
  })
})

describe('terminal', () => {
  it('shows tables with proportional bars', () => {
    expect(bar(10, 10, 10)).toBe('██████████')
    expect(bar(5, 10, 10)).toBe('█████')
    expect(bar(0, 10, 10)).toBe('')
    const text = renderTerminal(data, {interactive: false})
    expect(text).toContain(`${brute.alerts} alerts`)
    expect(text).toMatch(/Top attacking sources/)
    expect(text).toMatch(/█/)
  })
})

describe('png', () => {
  it('writes a valid PNG (signature, IHDR size, chunk CRCs, pixel data)', () => {
    const png = barChartPng([3, 1, 0], '#ff0000', {width: 50, rowHeight: 10})
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    let off = 8
    const chunks: string[] = []
    let idat = Buffer.alloc(0)
    while (off < png.length) {
      const len = png.readUInt32BE(off)
      const type = png.subarray(off + 4, off + 8).toString('ascii')
      expect(png.readUInt32BE(off + 8 + len)).toBe(crc32(png, off + 4, off + 8 + len))
      if (type === 'IDAT') idat = Buffer.concat([idat, png.subarray(off + 8, off + 8 + len)])
      chunks.push(type)
      off += 12 + len
    }
    expect(chunks).toEqual(['IHDR', 'IDAT', 'IEND'])
    expect(png.readUInt32BE(16)).toBe(50)
    expect(png.readUInt32BE(20)).toBe(34)
    const raw = inflateSync(idat)
    expect(raw.length).toBe((50 * 3 + 1) * 34)
    // row 5 (inside the first bar): a red pixel at x=10
    const px = raw.subarray(5 * 151 + 1 + 10 * 3, 5 * 151 + 1 + 10 * 3 + 3)
    expect([...px]).toEqual([255, 0, 0])
  })
})
