/**
 * Offline replay: capture files through the same engine as the gateway. One engine per file, so
 * a file's events do not depend on what was replayed before it.
 */
import fs from 'node:fs'
import path from 'node:path'
import {openCapture, CaptureError} from '../capture/reader.js'
import {isSupportedLinktype, linktypeName} from '../packet/linktype.js'
import {Engine, type EngineOptions, type EngineFlow} from './engine.js'
import type {EveEvent} from '../events/eve.js'
import type {Direction} from '../analyzers/types.js'
import type {Detection} from './detection.js'

export interface ReplayFileResult {
  file: string
  format: string | null
  packets: number
  bytes: number
  flows: number
  tcpStreams: number
  anomalies: number
  alerts: number
  /** events written for this file */
  events: number
  /** frames of a link type the engine cannot decode */
  skippedFrames: number
  seconds: number
  /** set when the file could not be read to its end: one human line */
  error: string | null
}

export interface ReplayOptions extends Omit<EngineOptions, 'onEvent' | 'extra' | 'analyzers' | 'judge' | 'protections'> {
  /** analyzers and rules; none = flows and streams only */
  detection?: Detection
  onEvent: (ev: EveEvent) => void
  /** write each reassembled TCP direction into this folder, named as tcpflow names them */
  writeStreamsDir?: string
  extra?: Record<string, unknown>
}

export function replayFile(file: string, opts: ReplayOptions): ReplayFileResult {
  const started = process.hrtime.bigint()
  const result: ReplayFileResult = {
    file, format: null, packets: 0, bytes: 0, flows: 0, tcpStreams: 0, anomalies: 0, alerts: 0,
    events: 0, skippedFrames: 0, seconds: 0, error: null,
  }
  const streams = opts.writeStreamsDir ? new StreamWriter(opts.writeStreamsDir) : null
  // the judge needs the engine (flow fields, packet time) and the engine needs the judge
  const judge = opts.detection?.judgeFor(() => engine)
  const engine: Engine = new Engine({
    ...opts,
    analyzers: opts.detection?.analyzers,
    judge,
    protections: opts.detection?.protectionsFor(),
    extra: {pcap_filename: file, ...opts.extra},
    onEvent: (ev) => {
      result.events++
      opts.onEvent(ev)
    },
    streamTap: streams || opts.streamTap
      ? (flow, dir, data) => {
          streams?.write(flow, dir, data)
          opts.streamTap?.(flow, dir, data)
        }
      : undefined,
  })
  const warned = new Set<number>()
  let reader
  try {
    reader = openCapture(file)
    result.format = reader.format
    for (let rec = reader.next(); rec !== null; rec = reader.next()) {
      if (!isSupportedLinktype(rec.linktype)) {
        result.skippedFrames++
        if (!warned.has(rec.linktype)) {
          warned.add(rec.linktype)
          result.error = `${file}: link type ${rec.linktype} (${linktypeName(rec.linktype)}) is not supported; its frames were skipped`
        }
        continue
      }
      engine.processFrame(rec.buffer, rec.linktype, rec.tsUs, rec.offset, rec.offset + rec.capturedLength)
    }
  } catch (err) {
    if (err instanceof CaptureError) result.error = err.message
    else if (err instanceof Error && 'code' in err) result.error = `${file}: ${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`.trim()
    else throw err
  } finally {
    reader?.close()
    engine.finish()
    streams?.close()
  }
  Object.assign(result, {
    packets: engine.stats.packets,
    bytes: engine.stats.bytes,
    flows: engine.stats.flows,
    tcpStreams: engine.stats.tcpStreams,
    anomalies: engine.stats.anomalies,
    alerts: engine.stats.alerts,
  })
  result.seconds = Number(process.hrtime.bigint() - started) / 1e9
  return result
}

/**
 * Stream files named as tcpflow names them: `SRCIP.SRCPORT-DSTIP.DSTPORT` per direction, IPv4
 * octets in 3 digits and ports in 5 (`192.000.002.010.40000-192.000.002.020.09000`), so tools that
 * read tcpflow's output folders read ours. IPv6 addresses keep their text, ':' written as '_'.
 */
export const STREAM_WRITER_LIMITS = {openFiles: 64}

function streamEnd(ip: string, port: number): string {
  const addr = ip.includes(':') ? ip : ip.split('.').map((o) => o.padStart(3, '0')).join('.')
  return `${addr}.${String(port).padStart(5, '0')}`
}

class StreamWriter {
  private readonly fds = new Map<string, number>()
  private readonly names = new Map<EngineFlow, [string, string]>()
  private readonly used = new Set<string>()
  private readonly opened = new Set<string>()

  constructor(private readonly dir: string) {
    fs.mkdirSync(dir, {recursive: true})
  }

  write(flow: EngineFlow, dir: Direction, data: Uint8Array): void {
    if (flow.proto !== 6) return
    let names = this.names.get(flow)
    if (!names) {
      const c = streamEnd(flow.clientIp, flow.clientPort)
      const sv = streamEnd(flow.serverIp, flow.serverPort)
      names = [this.unique(`${c}-${sv}`), this.unique(`${sv}-${c}`)]
      this.names.set(flow, names)
    }
    const name = names[dir === 'toserver' ? 0 : 1]
    let fd = this.fds.get(name)
    if (fd === undefined) {
      if (this.fds.size >= STREAM_WRITER_LIMITS.openFiles) {
        const [oldName, oldFd] = this.fds.entries().next().value as [string, number]
        fs.closeSync(oldFd)
        this.fds.delete(oldName)
      }
      // the first open of a stream starts its file afresh; later ones (after the fd was recycled) append
      fd = fs.openSync(path.join(this.dir, name.replaceAll(':', '_')), this.opened.has(name) ? 'a' : 'w')
      this.opened.add(name)
    } else this.fds.delete(name)
    this.fds.set(name, fd)
    fs.writeSync(fd, data)
  }

  private unique(base: string): string {
    let name = base
    for (let i = 2; this.used.has(name); i++) name = `${base}.${i}`
    this.used.add(name)
    return name
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd)
    this.fds.clear()
  }
}
