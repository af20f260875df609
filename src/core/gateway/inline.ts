/**
 * Inline mode: a Linux bridge over two interfaces, nftables (netdev ingress) diverting protected
 * services into a veth pair per port, the engine capturing them on the pairs and re-injecting
 * what it forwards into the other port's pair (nft.ts). `startInline` sets everything up and
 * returns a handle to reload (SIGHUP) and stop (SIGINT/SIGTERM) it; teardown removes the table,
 * the veth pairs, the bridge if we created it, and restores the ports' offloads and admin state.
 */
import type {Detection} from '../engine/detection.js'
import type {EngineOptions} from '../engine/engine.js'
import type {EveEvent} from '../events/eve.js'
import {UserError} from '../errors.js'
import {MAX_FILTER_TERMS, captureFilter} from './bpf.js'
import {LivePort} from './live.js'
import {NftDivert, addElementLine, canonicalIp, divertSets, divertVeths, setLines, type DivertSets} from './nft.js'
import type {Policy} from './policy.js'
import {GatewaySession, type DynamicService} from './session.js'
import {HostNet, requirePrivileges, type BridgeSetup} from './system.js'
import type {GatewayLimits} from './forwarder.js'

/** dynamic services added at run time (each is an nft element and a BPF term) */
export const MAX_DYNAMIC_SERVICES = 1024
/** sweep of held units, fragments and ended flows */
export const SWEEP_MS = 250

export interface InlineOptions {
  ifaces: string[]
  bridge?: string
  force?: boolean
  failClosed?: boolean
  policy: Policy
  detection: Pick<Detection, 'analyzers' | 'rules' | 'protectionsFor'>
  onEvent: (ev: EveEvent) => void
  engine?: Pick<EngineOptions, 'defragPolicy' | 'tcpPolicy' | 'hostPolicy' | 'maxFlows' | 'extra'>
  limits?: Partial<GatewayLimits>
  /** say something to the operator (one line) */
  note?: (line: string) => void
}

export interface InlineHandle {
  session: GatewaySession
  bridge: string
  filter: string
  reload(policy: Policy, detection: Pick<Detection, 'analyzers' | 'rules' | 'protectionsFor'>): void
  stop(): void
  ports: readonly [LivePort, LivePort]
}

/**
 * The policy with every address in the engine's text form (RFC 5952 for IPv6), so the per-service
 * judge, whose keys are compared with the flows' printed addresses, finds `FD00:6:0::3` as
 * `fd00:6::3`. Addresses that do not parse are left as they are (the loader rejects them).
 */
export function canonicalPolicy(policy: Policy): Policy {
  let changed = false
  const canon = <T extends {ip: string}>(e: T): T => {
    const ip = canonicalIp(e.ip)
    if (ip === null || ip === e.ip) return e
    changed = true
    return {...e, ip}
  }
  const services = policy.services.map(canon)
  const hosts = policy.hosts?.map(canon)
  return changed ? {...policy, services, ...(hosts ? {hosts} : {})} : policy
}

export function startInline(opts: InlineOptions): InlineHandle {
  requirePrivileges()
  const host = new HostNet()
  host.validate(opts.ifaces, opts.force === true, opts.bridge)
  opts.policy = canonicalPolicy(opts.policy)
  if (opts.policy.services.length === 0) {
    throw new UserError('the policy protects no service: nothing to divert', {code: 'POLICY_EMPTY', suggestion: 'add services to .patchpoint/policy.json'})
  }
  let sets: DivertSets = divertSets(opts.policy.services)
  const dynamic: DynamicService[] = []
  // each handle on the engine end of its port's veth pair: it captures the frames nftables
  // diverted from that port, and what it sends leaves through that port (the forwarder sends a
  // frame that came in on port A through ports[1]: out of port B)
  const ports = [new LivePort(divertVeths(opts.ifaces[0]).engine, 0), new LivePort(divertVeths(opts.ifaces[1]).engine, 1)] as const
  const nft = new NftDivert()
  let setup: BridgeSetup | null = null
  let sweep: NodeJS.Timeout | null = null
  let stopped = false
  /** the capture filter of the sets; its limit is said once per distinct count */
  let toldOmitted = 0
  const filterOf = (s: DivertSets) => captureFilter(s, (n) => {
    if (n !== toldOmitted) opts.note?.(`capture filter limit (${MAX_FILTER_TERMS} terms): ${n} terms left out: their frames are diverted by nftables but not captured, so they are dropped`)
    toldOmitted = n
  })
  let filter = filterOf(sets)

  const session = new GatewaySession({
    detection: opts.detection,
    policy: opts.policy,
    ports,
    onEvent: opts.onEvent,
    failClosed: opts.failClosed,
    limits: opts.limits,
    engine: opts.engine,
    // bypass elements of flows whose responses nothing needs (batched by the session)
    nftWrite: (line) => nft.write(line),
    onDynamicService: (svc) => {
      const ip = canonicalIp(svc.ip)
      if (ip === null || dynamic.length >= MAX_DYNAMIC_SERVICES) return
      if (dynamic.some((d) => d.ip === ip && d.port === svc.port && d.proto === svc.proto)) return
      dynamic.push({...svc, ip})
      const v6 = ip.includes(':')
      nft.write(addElementLine(svc.proto === 'tcp' ? (v6 ? 'tcp6' : 'tcp4') : v6 ? 'udp6' : 'udp4', `${ip} . ${svc.port}`))
      sets = divertSets([...opts.policy.services, ...dynamic])
      reopen()
    },
  })
  const fwd = session.forwarder
  const onFrame = (frame: Uint8Array, port: 0 | 1) => fwd.handle(frame, port, Date.now() * 1000)

  function reopen(): void {
    filter = filterOf(sets)
    // new handles first, then the old ones close: no window without capture
    ports[0].open(filter, onFrame)
    ports[1].open(filter, onFrame)
  }

  function stop(): void {
    if (stopped) return
    stopped = true
    if (sweep) clearInterval(sweep)
    try {
      fwd.flushAll()
    } catch {
      // best effort: the table goes next and the kernel forwards again
    }
    nft.remove()
    ports[0].close()
    ports[1].close()
    if (setup) host.teardown(setup)
    session.engine.finish()
  }

  try {
    setup = host.setup(opts.ifaces, opts.bridge)
    ports[0].open(filter, onFrame)
    ports[1].open(filter, onFrame)
    nft.install(sets, {failClosed: opts.failClosed, ports: opts.ifaces})
    nft.keepAlive(opts.failClosed === true)
  } catch (err) {
    stop()
    if (err instanceof UserError) throw err
    throw new UserError(`inline setup failed: ${(err as Error).message.split('\n')[0]}`, {code: 'INLINE_SETUP', cause: err})
  }
  sweep = setInterval(() => fwd.sweep(Date.now() * 1000), SWEEP_MS)

  return {
    session,
    get bridge() {
      return setup!.bridge
    },
    get filter() {
      return filter
    },
    ports,
    reload(next, detection) {
      const policy = canonicalPolicy(next)
      opts.policy = policy
      session.reload(detection.rules, policy)
      sets = divertSets([...policy.services, ...dynamic])
      nft.write(setLines(sets).join('; '))
      reopen()
    },
    stop,
  }
}
