/**
 * DCE/RPC over TCP (ncacn_ip_tcp: port 135 endpoint mapper and the dynamic ports it hands out):
 * one DcerpcConn fed with each direction's bytes at their absolute stream offsets.
 */
import type {Analyzer, AnalyzerContext, Direction} from '../types.js'
import {DCERPC_LIMITS, DcerpcConn, type DcerpcLimits} from './conn.js'

export class DcerpcAnalyzer implements Analyzer {
  readonly protocol = 'dcerpc'
  readonly conn: DcerpcConn
  private readonly pos: Record<Direction, number> = {toserver: 0, toclient: 0}

  constructor(ctx: AnalyzerContext, limits: Partial<DcerpcLimits> = DCERPC_LIMITS) {
    const sink = {
      emit: (p: Parameters<AnalyzerContext['emit']>[0]) => ctx.emit(p),
      anomaly: ctx.anomaly,
      dynamicService: ctx.dynamicService,
      serverIp: ctx.flow?.serverIp,
      reads: ctx.reads,
    }
    this.conn = new DcerpcConn(sink, limits === DCERPC_LIMITS ? DCERPC_LIMITS : {...DCERPC_LIMITS, ...limits})
  }

  data(dir: Direction, chunk: Uint8Array): void {
    const off = this.pos[dir]
    this.pos[dir] += chunk.length
    this.conn.data(dir, chunk, off)
  }

  gap(dir: Direction, length: number): void {
    this.conn.gap(dir, length)
    this.pos[dir] += length
  }

  end(dir: Direction): void {
    this.conn.end(dir)
  }

  pendingFrom(dir: Direction): number {
    return this.conn.pendingFrom(dir)
  }
}

/** first bytes of a connection-oriented DCE/RPC PDU: version 5.0/5.1, a CO PTYPE, sane frag_length */
export function detectDcerpc(_dir: Direction, b: Uint8Array): boolean {
  if (b.length < 10) return false
  if (b[0] !== 5 || b[1]! > 1) return false
  const ptype = b[2]!
  if (ptype !== 0 && ptype !== 2 && ptype !== 3 && (ptype < 11 || ptype > 19)) return false
  if ((b[4]! & 0xee) !== 0) return false
  const le = (b[4]! & 0x10) !== 0
  const frag = le ? b[8]! | (b[9]! << 8) : (b[8]! << 8) | b[9]!
  return frag >= 16
}
