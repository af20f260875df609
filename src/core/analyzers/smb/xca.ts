/**
 * How many bytes a compressed SMB 3.1.1 segment decompresses to, for the algorithms of [MS-XCA]
 * that SMB uses: LZNT1 (2.5) and Plain LZ77 (2.4). Only the length is computed: back-references
 * are checked against the output so far, but no output is written, so the work is linear in the
 * compressed bytes whatever they claim.
 *
 * SMBleed (CVE-2020-1206): before the June 2020 fix, srv2.sys decompressed a transform's data
 * into a buffer of OriginalCompressedSegmentSize bytes and used the whole buffer even when the
 * data decompressed to fewer bytes: the rest was uninitialized kernel memory, written to a file
 * the attacker then reads. The fix rejects a message whose decompressed length differs from the
 * declared one. Decompression stops at the declared length (more is no error), so `limit` stops
 * the count there too.
 */

/** the segment is not valid compressed data of its algorithm: the server rejects it */
export const XCA_CORRUPT = -1
/** an algorithm this module does not size (LZ77+Huffman, Pattern_V1, unknown) */
export const XCA_UNSUPPORTED = -2
/** only a first part of the data is at hand and the length depends on the rest */
export const XCA_INCOMPLETE = -3

export const XCA_LZNT1 = 1
export const XCA_LZ77 = 2

/**
 * The decompressed length of `data` (at most `limit`), or XCA_CORRUPT / XCA_UNSUPPORTED. With
 * `complete` false, `data` is the first part of the segment (a message held in part): the answer
 * is still a length when that part decides it (LZNT1's end marker inside it, or `limit` reached),
 * else XCA_INCOMPLETE. An attacker cannot hide a short LZNT1 segment behind padding that follows
 * its end marker.
 */
export function decompressedLength(algorithm: number, data: Uint8Array, limit: number, complete = true): number {
  if (algorithm === XCA_LZNT1) return lznt1Length(data, limit, complete)
  if (algorithm === XCA_LZ77) return lz77Length(data, limit, complete)
  return XCA_UNSUPPORTED
}

const LZNT1_CHUNK = 4096

/**
 * LZNT1: chunks of a 16-bit header (bit 15: compressed; low 12 bits: chunk data length - 1) and at
 * most 4096 bytes of output each; a zero header ends the buffer. A compressed chunk is groups of a
 * flag byte and 8 tokens: a literal byte (flag bit 0) or a 16-bit back-reference whose split
 * between displacement and length depends on how much of the chunk is already out (12 bits of
 * displacement when more than 2048 bytes are, down to 4). A chunk that is followed by another
 * and comes out shorter than 4096 bytes is padded with zeros to 4096 (as the Windows decompressor
 * does).
 */
function lznt1Length(data: Uint8Array, limit: number, complete: boolean): number {
  let out = 0
  let i = 0
  while (out < limit) {
    if (i + 2 > data.length) return complete ? out : XCA_INCOMPLETE
    const header = data[i] | (data[i + 1] << 8)
    // the end marker: what follows it is never read
    if (header === 0) return out
    const size = (header & 0x0fff) + 1
    const start = i + 2
    const end = start + size
    if (end > data.length) return complete ? XCA_CORRUPT : XCA_INCOMPLETE
    let produced: number
    if ((header & 0x8000) === 0) produced = size
    else {
      produced = lznt1ChunkLength(data, start, end)
      if (produced < 0) return XCA_CORRUPT
    }
    if (produced > LZNT1_CHUNK) return XCA_CORRUPT
    i = end
    // another chunk follows: this one counts as a whole 4096 bytes (unknown at the end of a part)
    if (!complete && i + 2 > data.length && produced < LZNT1_CHUNK && out + produced < limit) return XCA_INCOMPLETE
    const more = i + 2 <= data.length && (data[i] | (data[i + 1] << 8)) !== 0
    out += more ? LZNT1_CHUNK : produced
  }
  return Math.min(out, limit)
}

/** the output length of one compressed LZNT1 chunk data[start, end), or -1 when corrupt */
function lznt1ChunkLength(data: Uint8Array, start: number, end: number): number {
  let pos = 0
  let i = start
  while (i < end && pos < LZNT1_CHUNK) {
    const flags = data[i++]
    for (let bit = 0; bit < 8 && i < end && pos < LZNT1_CHUNK; bit++) {
      if ((flags & (1 << bit)) === 0) {
        pos++
        i++
        continue
      }
      if (i + 2 > end) return -1
      const token = data[i] | (data[i + 1] << 8)
      i += 2
      // displacement bits: the fewest (4..12) whose range covers what is out so far
      let dispBits = 4
      while (dispBits < 12 && 1 << dispBits < pos) dispBits++
      const lenBits = 16 - dispBits
      const length = (token & ((1 << lenBits) - 1)) + 3
      const displacement = (token >>> lenBits) + 1
      if (displacement > pos) return -1
      pos = Math.min(LZNT1_CHUNK, pos + length)
    }
  }
  return pos
}

/**
 * Plain LZ77: 32-bit flag words (most significant bit first), a literal byte per 0 bit, a 16-bit
 * match per 1 bit (low 3 bits length - 3, the rest displacement - 1) with longer lengths in a
 * shared half byte, then a byte, then 16 or 32 bits. The data ends where the input does (the
 * compressor's last flag word ends with a 1 bit that meets no input).
 */
function lz77Length(data: Uint8Array, limit: number, complete: boolean): number {
  // where the input runs out: the end of the data, or of the part at hand
  const short = complete ? XCA_CORRUPT : XCA_INCOMPLETE
  let out = 0
  let i = 0
  let flags = 0
  let flagCount = 0
  let halfByteAt = -1
  const n = data.length
  // the input running out between tokens ends the data (as in the spec's match branch); every
  // token needs a byte at least
  while (out < limit) {
    if (flagCount === 0) {
      if (i >= n) return complete ? out : XCA_INCOMPLETE
      if (i + 4 > n) return short
      flags = (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)) >>> 0
      i += 4
      flagCount = 32
    }
    flagCount--
    if (i >= n) return complete ? out : XCA_INCOMPLETE
    if (((flags >>> flagCount) & 1) === 0) {
      i++
      out++
      continue
    }
    if (i + 2 > n) return short
    const match = data[i] | (data[i + 1] << 8)
    i += 2
    let length = match & 7
    const displacement = (match >>> 3) + 1
    if (length === 7) {
      if (halfByteAt < 0) {
        if (i >= n) return short
        length = data[i] & 15
        halfByteAt = i
        i++
      } else {
        length = data[halfByteAt] >>> 4
        halfByteAt = -1
      }
      if (length === 15) {
        if (i >= n) return short
        length = data[i++]
        if (length === 255) {
          if (i + 2 > n) return short
          length = data[i] | (data[i + 1] << 8)
          i += 2
          if (length === 0) {
            if (i + 4 > n) return short
            length = (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)) >>> 0
            i += 4
          }
          if (length < 15 + 7) return XCA_CORRUPT
          length -= 15 + 7
        }
        length += 15
      }
      length += 7
    }
    length += 3
    if (displacement > out) return XCA_CORRUPT
    out += length
  }
  return Math.min(out, limit)
}
