/**
 * `patchpoint replay` as a function: resolves where events go, builds the engine options from
 * the project, replays each file and totals the results. The command only parses flags and
 * prints.
 */
import path from 'node:path'
import {EventLog, MemoryEventSink, StdoutEventSink} from '../events/writer.js'
import type {EventSink, EveEvent} from '../events/eve.js'
import {loadConfig, eventsFilePath} from '../project/config.js'
import type {ProjectLocation} from '../project/find.js'
import type {DefragPolicy} from '../flow/defrag.js'
import {replayFile, type ReplayFileResult} from './replay.js'
import {defaultGatewayId, hostPolicyFromConfig, tcpPolicyOf} from './session.js'
import {engineDetection} from './detection.js'

export interface ReplayRunOptions {
  files: string[]
  project?: ProjectLocation
  /** '-' = stdout */
  eventsFile?: string
  writeStreamsDir?: string
  flowEvents?: boolean
  defragPolicy?: string
  tcpPolicy?: string
  /** keep the events in the result (for --json) */
  keepEvents?: boolean
}

export interface ReplayRunResult {
  files: ReplayFileResult[]
  totals: {packets: number; bytes: number; flows: number; tcpStreams: number; anomalies: number; alerts: number; events: number; errors: number}
  eventsWrittenTo: string | null
  events?: EveEvent[]
  eventsDropped?: number
}

export async function runReplay(opts: ReplayRunOptions): Promise<ReplayRunResult> {
  const config = opts.project ? await loadConfig(opts.project.configPath) : undefined
  let sink: EventSink | null = null
  let memory: MemoryEventSink | null = null
  let writtenTo: string | null = null
  if (opts.eventsFile === '-') {
    sink = new StdoutEventSink()
    writtenTo = 'standard output'
  } else if (opts.eventsFile) {
    sink = new EventLog(path.resolve(opts.eventsFile))
    writtenTo = path.resolve(opts.eventsFile)
  } else if (opts.project && config) {
    const file = eventsFilePath(config, opts.project.dir)
    sink = new EventLog(file, {rotateBytes: config.events.rotate_bytes, keep: config.events.keep})
    writtenTo = file
  }
  if (opts.keepEvents) memory = new MemoryEventSink()
  const gateway = config?.gateway.id ?? defaultGatewayId()
  const detection = await engineDetection(opts.project, {protections: config?.protections})
  const onEvent = (ev: EveEvent) => {
    sink?.write(ev)
    memory?.write(ev)
  }
  const results: ReplayFileResult[] = []
  try {
    for (const file of opts.files) {
      results.push(replayFile(file, {
        onEvent,
        defragPolicy: (opts.defragPolicy ?? config?.engine.defrag_policy ?? 'first') as DefragPolicy,
        tcpPolicy: tcpPolicyOf(opts.tcpPolicy ?? config?.engine.tcp_policy ?? 'first'),
        hostPolicy: config && !opts.defragPolicy && !opts.tcpPolicy ? hostPolicyFromConfig(config) : undefined,
        maxFlows: config?.engine.limits.flows,
        flowEvents: opts.flowEvents,
        writeStreamsDir: opts.writeStreamsDir,
        detection,
        extra: {host: gateway},
      }))
    }
  } finally {
    await sink?.close()
  }
  const totals = {packets: 0, bytes: 0, flows: 0, tcpStreams: 0, anomalies: 0, alerts: 0, events: 0, errors: 0}
  for (const r of results) {
    totals.packets += r.packets
    totals.bytes += r.bytes
    totals.flows += r.flows
    totals.tcpStreams += r.tcpStreams
    totals.anomalies += r.anomalies
    totals.alerts += r.alerts
    totals.events += r.events
    if (r.error) totals.errors++
  }
  return {
    files: results,
    totals,
    eventsWrittenTo: writtenTo,
    ...(memory ? {events: memory.events, eventsDropped: memory.dropped} : {}),
  }
}
