/**
 * Minimal PNG rasterizer for the charts embedded in the xlsx report (exceljs embeds PNG or
 * JPEG, not SVG). Draws filled rectangles only (bars, axes); the labels and values sit in the
 * sheet's cells beside the image. Pure JS: node:zlib deflate + a CRC-32 table, no native module.
 *
 * PNG (ISO/IEC 15948, RFC 2083 section 3): signature, then chunks
 *   +--------+--------+----------------+--------+
 *   | length | type   | data (length)  | CRC-32 |   (length and CRC big-endian; CRC over type+data)
 *   +--------+--------+----------------+--------+
 * IHDR (width, height, bit depth 8, colour type 2 = RGB), IDAT (zlib of filter byte 0 + row), IEND.
 */
import {deflateSync} from 'node:zlib'

/** Largest raster drawn (pixels per side). */
export const MAX_PNG_SIDE = 4096

const CRC_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  let c = 0xffffffff
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function hexColor(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex)
  const v = m ? parseInt(m[1], 16) : 0
  return [(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff]
}

export class Raster {
  readonly width: number
  readonly height: number
  readonly pixels: Uint8Array

  constructor(width: number, height: number, background = '#ffffff') {
    this.width = Math.max(1, Math.min(MAX_PNG_SIDE, Math.trunc(width)))
    this.height = Math.max(1, Math.min(MAX_PNG_SIDE, Math.trunc(height)))
    this.pixels = new Uint8Array(this.width * this.height * 3)
    this.fillRect(0, 0, this.width, this.height, background)
  }

  fillRect(x: number, y: number, w: number, h: number, color: string): void {
    const [r, g, b] = hexColor(color)
    const x0 = Math.max(0, Math.round(x))
    const y0 = Math.max(0, Math.round(y))
    const x1 = Math.min(this.width, Math.round(x + w))
    const y1 = Math.min(this.height, Math.round(y + h))
    for (let yy = y0; yy < y1; yy++) {
      let o = (yy * this.width + x0) * 3
      for (let xx = x0; xx < x1; xx++) {
        this.pixels[o++] = r
        this.pixels[o++] = g
        this.pixels[o++] = b
      }
    }
  }

  toPng(): Buffer {
    const stride = this.width * 3
    const raw = Buffer.alloc((stride + 1) * this.height)
    for (let y = 0; y < this.height; y++) {
      raw[y * (stride + 1)] = 0 // filter: none
      raw.set(this.pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1)
    }
    const ihdr = Buffer.alloc(13)
    ihdr.writeUInt32BE(this.width, 0)
    ihdr.writeUInt32BE(this.height, 4)
    ihdr[8] = 8 // bit depth
    ihdr[9] = 2 // RGB
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', deflateSync(raw)),
      chunk('IEND', Buffer.alloc(0)),
    ])
  }
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length)
  out.writeUInt32BE(data.length, 0)
  out.write(type, 4, 'ascii')
  data.copy(out, 8)
  out.writeUInt32BE(crc32(out, 4, 8 + data.length), 8 + data.length)
  return out
}

/** Horizontal bars (one row per value, top to bottom), for a sheet whose rows hold the labels. */
export function barChartPng(values: readonly number[], color: string, opts: {width?: number; rowHeight?: number} = {}): Buffer {
  const rowH = opts.rowHeight ?? 20
  const w = opts.width ?? 400
  const n = Math.max(1, Math.min(values.length, Math.floor(MAX_PNG_SIDE / rowH)))
  const img = new Raster(w, n * rowH + 4)
  const max = Math.max(1, ...values.slice(0, n))
  img.fillRect(0, 0, 1, img.height, '#333333')
  for (let i = 0; i < n && i < values.length; i++) {
    const bw = Math.round((Math.max(0, values[i]) / max) * (w - 8))
    img.fillRect(1, i * rowH + 3, Math.max(values[i] > 0 ? 1 : 0, bw), rowH - 6, color)
  }
  return img.toPng()
}

/** Stacked columns over time (one column per bucket, series stacked bottom-up). */
export function columnChartPng(series: readonly {color: string; values: readonly number[]}[], opts: {width?: number; height?: number} = {}): Buffer {
  const w = opts.width ?? 800
  const h = opts.height ?? 240
  const img = new Raster(w, h)
  const n = Math.max(0, ...series.map((s) => s.values.length))
  const totals = Array.from({length: n}, (_, i) => series.reduce((a, s) => a + Math.max(0, s.values[i] ?? 0), 0))
  const max = Math.max(1, ...totals)
  img.fillRect(0, 0, 1, h, '#333333')
  img.fillRect(0, h - 1, w, 1, '#333333')
  const colW = n > 0 ? (w - 2) / n : w
  for (let i = 0; i < n; i++) {
    let y = h - 1
    for (const s of series) {
      const v = Math.max(0, s.values[i] ?? 0)
      if (v === 0) continue
      const ph = Math.max(1, Math.round((v / max) * (h - 6)))
      y -= ph
      img.fillRect(1 + i * colW, y, Math.max(1, colW - 1), ph, s.color)
    }
  }
  return img.toPng()
}
