/**
 * Live capture and injection through libpcap (`cap`): one handle per bridge port, opened on the
 * engine end of the port's veth pair (nft.ts divertVeths), which only carries the frames nftables
 * diverted from that port: it captures them (the BPF filter of the same tuples stays, as a
 * defence: the pair carries nothing else), and a frame sent through it leaves through that port
 * (the pair's other end forwards it out). A frame sent through a handle is not looped back to
 * that handle's own capture.
 */
import {createRequire} from 'node:module'
import {keepCapHandle} from '../capture/cap-handles.js'
import type {GatewayPort} from './forwarder.js'

/**
 * kernel buffer of each capture handle: 16 MB holds about 130 ms of a 1 Gbit/s protected stream
 * (a GC pause or a reload); its pages count in the gateway's RSS once a flood has cycled them
 */
export const CAPTURE_BUFFER_BYTES = 16 * 1024 * 1024
/** largest frame captured (offloads are off: no super-frames) */
export const SNAPLEN = 65_535

interface CapHandle {
  open(device: string, filter: string, bufSize: number, buffer: Buffer): string
  /** any Uint8Array: the binding takes an ArrayBufferView (node::Buffer::HasInstance) */
  send(buffer: Uint8Array, length?: number): void
  close(): void
  on(event: 'packet', fn: (nbytes: number, truncated: boolean) => void): void
  removeAllListeners(event?: string): void
}

interface CapModule {
  Cap: new () => CapHandle
}

let capModule: CapModule | null = null
function loadCap(): CapModule {
  capModule ??= createRequire(import.meta.url)('cap') as CapModule
  return capModule
}

/**
 * Frames are handed over as plain Uint8Array views of the capture buffer, never as Buffers: the
 * engine copies bytes it keeps with `.slice()`, which copies a Uint8Array but only makes a view of
 * a Buffer. With a Buffer, the bytes the engine kept (e.g. a flow's first bytes held for protocol
 * detection) were overwritten by the next packet: tiny TCP segments then defeated detection and
 * passed unjudged.
 */
export type FrameHandler = (frame: Uint8Array, port: 0 | 1) => void

/** the capture buffer as a plain Uint8Array (see FrameHandler: `.slice()` of it copies) */
export function frameView(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}

/** One bridge port (through its veth pair's engine end): capture with a filter, send raw frames. */
export class LivePort implements GatewayPort {
  private handle: CapHandle | null = null
  /** held for the handle's whole life: cap does not keep it alive (see shared NOTES) */
  private buffer: Buffer = Buffer.alloc(SNAPLEN)
  sendErrors = 0

  constructor(readonly device: string, private readonly index: 0 | 1) {}

  open(filter: string, onFrame: FrameHandler): void {
    const {Cap} = loadCap()
    // never collected, even after close (a reopen drops the old one): see cap-handles.ts
    const h = keepCapHandle(new Cap())
    const buffer = Buffer.alloc(SNAPLEN)
    const link = h.open(this.device, filter, CAPTURE_BUFFER_BYTES, buffer)
    if (link !== 'ETHERNET') {
      h.close()
      throw new Error(`${this.device}: link type ${link}, inline mode needs Ethernet`)
    }
    const idx = this.index
    const whole = frameView(buffer)
    h.on('packet', (nbytes: number) => onFrame(whole.subarray(0, nbytes), idx))
    const old = this.handle
    this.handle = h
    this.buffer = buffer
    if (old) {
      old.removeAllListeners('packet')
      old.close()
    }
  }

  send(frame: Uint8Array): void {
    const h = this.handle
    if (!h) return
    try {
      // the view itself: no Buffer object per frame sent
      h.send(frame, frame.byteLength)
    } catch {
      this.sendErrors++
    }
  }

  close(): void {
    const h = this.handle
    this.handle = null
    if (h) {
      h.removeAllListeners('packet')
      h.close()
    }
    void this.buffer
  }
}
