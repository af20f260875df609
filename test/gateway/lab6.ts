/**
 * IPv6 namespace lab for the inline gateway: lab.ts with its own names and addresses, so it runs
 * beside the IPv4 lab:
 *
 *   [pp6-c-ID client fd00:6::1] p6c0 ---- p6ga [pp6-g-ID gateway: bridge] p6gb ---- p6s0 [pp6-s-ID server fd00:6::3]
 *
 * ULA addresses from fd00:6::/64 inside the namespaces only, no default route.
 */
import {GatewayLab, type LabTopology} from './lab.js'

export const CLIENT6 = 'fd00:6::1'
export const SERVER6 = 'fd00:6::3'
export const GW_PORTS = ['p6ga', 'p6gb'] as const

export const LAB6: LabTopology = {
  ns: {client: 'pp6-c-', gw: 'pp6-g-', server: 'pp6-s-'},
  devs: ['p6c0', GW_PORTS[0], GW_PORTS[1], 'p6s0'],
  clientIp: CLIENT6,
  serverIp: SERVER6,
  listen: (p) => `[::]:${p} ipv6only=on`,
  tmpPrefix: 'pp6-gwlab-',
}

export class GatewayLab6 extends GatewayLab {
  constructor() {
    super(LAB6)
  }
}
