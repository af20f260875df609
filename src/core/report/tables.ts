/**
 * The report as a list of flat tables: one description shared by the csv, xlsx and terminal
 * renderers, so every format shows the same figures under the same names.
 */
import type {CountRow, ReportData} from './aggregate.js'

export type ColumnType = 'string' | 'number' | 'date'

export interface Column {
  key: string
  header: string
  type: ColumnType
}

export interface ReportTable {
  /** file / sheet name: lowercase, no spaces */
  name: string
  title: string
  columns: Column[]
  rows: Record<string, string | number | null>[]
}

const s = (key: string, header = key): Column => ({key, header, type: 'string'})
const n = (key: string, header = key): Column => ({key, header, type: 'number'})
const d = (key: string, header = key): Column => ({key, header, type: 'date'})

const countColumns = (keyHeader: string): Column[] => [
  s('key', keyHeader), n('count', 'events'), n('fix'), n('log'), n('drop'), n('shadow'),
  d('first_seen', 'first seen'), d('last_seen', 'last seen'), n('error', 'max overcount'),
]

const countRows = (rows: CountRow[]): ReportTable['rows'] => rows.map((r) => ({...r}))

/** Every table of the report, in display order. */
export function reportTables(r: ReportData): ReportTable[] {
  const t = r.totals
  return [
    {
      name: 'summary',
      title: 'Summary',
      columns: [s('figure'), n('value')],
      rows: [
        {figure: 'events', value: t.events},
        {figure: 'alerts', value: t.alerts},
        {figure: 'alerts fixed', value: t.by_action.fix},
        {figure: 'alerts dropped', value: t.by_action.drop},
        {figure: 'alerts logged', value: t.by_action.log},
        {figure: 'alerts in shadow mode', value: t.by_action.shadow},
        {figure: 'anomalies', value: t.anomalies},
        {figure: 'flows', value: t.flows},
        {figure: 'gateways', value: r.coverage.gateways},
        {figure: 'events outside the period', value: t.filtered},
        {figure: 'events with a bad timestamp', value: t.bad_timestamp},
        {figure: 'malformed lines', value: r.inputs.reduce((a, i) => a + i.malformed, 0)},
      ],
    },
    {
      name: 'timeline',
      title: `Alerts and anomalies per ${r.timeline.bucket}`,
      columns: [d('start'), n('fix'), n('log'), n('drop'), n('shadow'), n('anomalies')],
      rows: r.timeline.rows.map((x) => ({...x})),
    },
    {name: 'actions', title: 'Alerts by action', columns: [s('action'), n('count', 'alerts')], rows: r.actions.map((x) => ({...x}))},
    {name: 'rules', title: 'Alerts by rule', columns: countColumns('rule'), rows: countRows(r.rules)},
    {name: 'cves', title: 'Alerts by CVE', columns: countColumns('cve'), rows: countRows(r.cves)},
    {name: 'sources', title: 'Top attacking sources', columns: countColumns('source'), rows: countRows(r.sources)},
    {name: 'destinations', title: 'Alerts by destination host', columns: countColumns('host'), rows: countRows(r.destinations)},
    {name: 'services', title: 'Alerts by service', columns: countColumns('service'), rows: countRows(r.services)},
    {name: 'gateways', title: 'Alerts and anomalies by gateway', columns: countColumns('gateway'), rows: countRows(r.gateways)},
    {name: 'anomalies', title: 'Anomalies by kind', columns: [s('key', 'anomaly'), n('count'), d('first_seen', 'first seen'), d('last_seen', 'last seen')], rows: countRows(r.anomalies)},
    {
      name: 'coverage',
      title: 'Protection coverage',
      columns: [s('figure'), n('value')],
      rows: [
        {figure: 'rules loaded', value: r.coverage.rules_loaded},
        {figure: 'rules that raised alerts', value: r.coverage.rules_fired},
        {figure: 'services protected (with alerts)', value: r.coverage.services_protected},
        {figure: 'hosts protected (with alerts)', value: r.coverage.hosts_protected},
        {figure: 'shadow-mode alerts', value: r.coverage.shadow_alerts},
        {figure: 'shadow mode: would have blocked', value: r.coverage.shadow_would_block},
      ],
    },
    {
      name: 'exposure',
      title: 'Patch exposure: days shielded per CVE and host',
      columns: [s('cve'), s('host'), s('gateway'), n('days_shielded', 'days shielded'), s('status'), d('first_seen', 'first alert'),
        d('last_seen', 'last alert'), d('retired_at', 'retired'), n('alerts')],
      rows: r.exposure.map((x) => ({...x})),
    },
    {
      name: 'inputs',
      title: 'Event logs read',
      columns: [s('label', 'log'), s('gateway'), n('files'), n('events'), n('malformed')],
      rows: r.inputs.map((i) => ({label: i.label, gateway: i.gateway, files: i.files.length, events: i.events, malformed: i.malformed})),
    },
  ]
}
