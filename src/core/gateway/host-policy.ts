/**
 * Which overlap policies the engine uses for a destination: the compiled policy's `hosts` (from
 * each server's OS hints, written by `protect`) first, then the config's `hosts:` entries.
 */
import type {HostPolicy} from '../engine/engine.js'
import type {Policy} from './policy.js'

export function combinedHostPolicy(
  policy: Pick<Policy, 'hosts'>,
  fromConfig: ((ip: string) => HostPolicy | undefined) | undefined,
): ((ip: string) => HostPolicy | undefined) | undefined {
  const byIp = new Map((policy.hosts ?? []).map((h) => [h.ip, {defrag: h.defrag, tcp: h.tcp}]))
  if (byIp.size === 0) return fromConfig
  return (ip) => byIp.get(ip) ?? fromConfig?.(ip)
}
