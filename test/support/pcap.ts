/** Frames to a capture file for tests that run tcpdump on it (the project's own pcap writer). */
import {PcapWriter} from '../../src/core/capture/writer.js'
import {LINKTYPE} from '../../src/core/packet/linktype.js'

/** Ethernet frames to a classic pcap; frame i is stamped i + 1 seconds, so `tcpdump -tt` names it */
export function writeFrames(file: string, frames: readonly Uint8Array[]): void {
  const w = PcapWriter.open(file, {linktype: LINKTYPE.ETHERNET})
  try {
    frames.forEach((f, i) => w.write((i + 1) * 1_000_000, f))
  } finally {
    w.close()
  }
}
