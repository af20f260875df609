/**
 * Pipelined, paced probe sending with adaptive waiting (used by `discover`).
 *
 * Two lanes share one rate budget:
 * - primary probes (ARP requests to every on-link target), sent in rounds; a retry round
 *   resends only the unanswered ones;
 * - follow-up probes (ICMP/TCP to a host as soon as it answered ARP), queued by the reply
 *   handler and sent before the next primary probe, so IP probing overlaps the ARP sweep instead
 *   of waiting for it to end.
 *
 * Waiting is adaptive: a round (and the scan) ends as soon as `allDone()` says nothing is left
 * to wait for, or when nothing was sent or received for `tailMs()` (the caller derives it from
 * the round-trip times it measured, so a LAN scan waits tens of milliseconds, not a fixed
 * second). No allocation per packet: the lanes are index-based callbacks.
 */
import {setTimeout as sleep} from 'node:timers/promises'

export const PIPELINE_LIMITS = {
  maxRate: 1_000_000,
  /** how often the tail wait looks at the clock, ms */
  pollMs: 2,
  /** packets sent per event-loop turn at most (replies are read between turns) */
  maxBatch: 256,
}

export interface PipelineSpec {
  /** number of primary probes per round */
  primaryCount: number
  sendPrimary(i: number): void
  /** primary probe i needs no (re)sending: its target answered */
  primaryDone(i: number): boolean
  /** a follow-up probe is waiting */
  followUpPending(): boolean
  /** send exactly one follow-up probe */
  sendFollowUp(): void
  /** nothing is left to wait for: stop now */
  allDone(): boolean
  /** quiet time (nothing sent, nothing received) after which a round is over, ms */
  tailMs(): number
  /** quiet time before a retry round starts (default tailMs()): a retry only resends what is
   * still unanswered, so it can start before the last round's tail would be over */
  retryTailMs?(): number
  /** performance.now() of the last reply that mattered (0 when none) */
  lastReplyAt(): number
  /** a retry round starts (round >= 1): re-queue follow-ups that are still unanswered */
  onRound?(round: number): void
  /** packets per second */
  rate: number
  /** extra rounds */
  retries: number
  onProgress?: (sent: number, round: number) => void
  signal?: AbortSignal
}

export interface PipelineResult {
  sent: number
  /** rounds actually run (1 + retries used) */
  rounds: number
  /** why it stopped */
  stop: 'all-answered' | 'tail' | 'aborted'
}

export async function runPipeline(s: PipelineSpec): Promise<PipelineResult> {
  const rate = Math.max(1, Math.min(s.rate, PIPELINE_LIMITS.maxRate))
  const gap = 1000 / rate
  const batch = Math.max(1, Math.min(PIPELINE_LIMITS.maxBatch, Math.floor(rate / 500)))
  let sent = 0
  let round = 0
  let cursor = 0
  let lastSend = 0
  /** virtual send clock: when the next packet is due */
  let due = performance.now()
  for (;;) {
    if (s.signal?.aborted) return {sent, rounds: round + 1, stop: 'aborted'}
    let now = performance.now()
    if (due < now - gap * batch) due = now - gap * batch // no burst beyond one batch after idling
    let n = 0
    while (n < batch && due <= now + gap) {
      if (s.followUpPending()) {
        s.sendFollowUp()
      } else {
        while (cursor < s.primaryCount && s.primaryDone(cursor)) cursor++
        if (cursor >= s.primaryCount) break
        s.sendPrimary(cursor++)
      }
      n++
      due += gap
    }
    if (n > 0) {
      sent += n
      lastSend = performance.now()
      s.onProgress?.(sent, round)
    }
    const more = s.followUpPending() || nextPrimary(s, cursor) < s.primaryCount
    if (more) {
      now = performance.now()
      const ahead = due - now
      if (ahead >= 1) await sleep(Math.min(ahead, 50))
      else await new Promise<void>((r) => setImmediate(r))
      continue
    }
    // nothing to send now: wait for replies (which may queue follow-ups) or the end of the tail
    if (s.allDone()) return {sent, rounds: round + 1, stop: 'all-answered'}
    now = performance.now()
    const quiet = now - Math.max(lastSend, s.lastReplyAt())
    const tail = round < s.retries ? (s.retryTailMs?.() ?? s.tailMs()) : s.tailMs()
    if (quiet >= tail) {
      if (round < s.retries) {
        round++
        cursor = 0
        s.onRound?.(round)
        if (s.followUpPending() || nextPrimary(s, 0) < s.primaryCount) continue
        // nothing to resend: this round is over at once
        continue
      }
      return {sent, rounds: round + 1, stop: 'tail'}
    }
    await sleep(Math.max(1, Math.min(PIPELINE_LIMITS.pollMs, tail - quiet)))
  }
}

function nextPrimary(s: PipelineSpec, from: number): number {
  let i = from
  while (i < s.primaryCount && s.primaryDone(i)) i++
  return i
}
