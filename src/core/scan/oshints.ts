/**
 * OS hints from what a host's packets look like. Coarse on purpose: they pick a host's IP
 * defragmentation and TCP overlap policy, not a version.
 *
 * - Initial TTL: replies arrive with TTL = initial - hops. Linux/BSD/macOS start at 64, Windows
 *   at 128, many network devices and Solaris at 255.
 * - SYN-ACK window: Linux 5.x/6.x offers 64240 (or 65160/43440 with scaling), Windows 8192 or
 *   65535 with MSS 1460, FreeBSD 65535 with TTL 64.
 */
import type {OsHint} from '../inventory/inventory.js'

export function initialTtl(ttl: number): number {
  if (ttl <= 0) return 0
  if (ttl <= 32) return 32
  if (ttl <= 64) return 64
  if (ttl <= 128) return 128
  return 255
}

export function ttlHint(ttl: number): OsHint | null {
  const init = initialTtl(ttl)
  if (init === 64) return {source: 'ttl', os: 'unix', detail: `ttl=${ttl} (initial 64: Linux, BSD, macOS)`, confidence: 0.4}
  if (init === 128) return {source: 'ttl', os: 'windows', detail: `ttl=${ttl} (initial 128)`, confidence: 0.5}
  if (init === 255) return {source: 'ttl', os: 'network-device', detail: `ttl=${ttl} (initial 255: network device, Solaris)`, confidence: 0.3}
  return null
}

export function windowHint(ttl: number, window: number): OsHint | null {
  const init = initialTtl(ttl)
  if (init === 64 && (window === 64240 || window === 65160 || window === 43440 || window === 28960 || window === 29200 || window === 14600)) {
    return {source: 'tcp_window', os: 'linux', detail: `syn-ack window=${window} ttl=${ttl}`, confidence: 0.6}
  }
  if (init === 128 && (window === 8192 || window === 65535 || window === 64240)) {
    return {source: 'tcp_window', os: 'windows', detail: `syn-ack window=${window} ttl=${ttl}`, confidence: 0.6}
  }
  if (init === 64 && window === 65535) {
    return {source: 'tcp_window', os: 'bsd', detail: `syn-ack window=${window} ttl=${ttl}`, confidence: 0.4}
  }
  return null
}
