/**
 * Inline mode: a Linux bridge over two interfaces, nftables (netdev ingress) diverting protected
 * services into a veth pair per port, the engine capturing them on the pairs and re-injecting
 * what it forwards into the other port's pair (nft.ts). `startInline` sets everything up and
 * returns a handle to reload (SIGHUP) and stop (SIGINT/SIGTERM) it; teardown removes the table,
 * the veth pairs, the bridge if we created it, and restores the ports' offloads and admin state.
 */
import {execFile} from 'node:child_process'
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
/**
 * confirmed nft commands running at once (bypass ends of flows leaving HTTP: each an `nft -f -`
 * process); past this a line goes through the long-lived child unconfirmed
 */
export const MAX_NFT_CONFIRMS = 32
/** an nft process that has not finished after this long is taken as done (the line was written) */
export const NFT_CONFIRM_TIMEOUT_MS = 2000

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
 * `opts.policy` comes from the policy loader (policy.ts), which writes every address in the
 * engine's text form: the per-service judge, the host policies and the nftables sets all compare
 * it with the flows' printed addresses as it is.
 */
export function startInline(opts: InlineOptions): InlineHandle {
  requirePrivileges()
  const host = new HostNet()
  host.validate(opts.ifaces, opts.force === true, opts.bridge)
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
  /** nftConfirm processes running */
  let confirms = 0
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
    // the end of a bypass a request waits for (CONNECT, Upgrade): an nft process of its own,
    // done when it exits (the kernel has applied the line)
    nftConfirm: (line, done) => {
      if (confirms >= MAX_NFT_CONFIRMS || stopped) {
        nft.write(line)
        done()
        return
      }
      confirms++
      const child = execFile('nft', ['-f', '-'], {timeout: NFT_CONFIRM_TIMEOUT_MS}, (err) => {
        confirms--
        if (err) nft.write(line)
        done()
      })
      child.stdin?.on('error', () => {})
      child.stdin?.end(line + '\n')
    },
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
  // The sweep runs in the check phase (setImmediate), after the loop's I/O poll: when the gateway
  // was starved of CPU, timers fire first in the next loop turn, and sweeping then would time out
  // units whose next segments sat captured but unread in the kernel buffer (an undetected flow's
  // held bytes would go out unjudged after detectHoldTimeoutUs)
  sweep = setInterval(() => setImmediate(() => {
    if (!stopped) fwd.sweep(Date.now() * 1000)
  }), SWEEP_MS)

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
      const policy = next
      opts.policy = policy
      session.reload(detection.rules, policy)
      sets = divertSets([...policy.services, ...dynamic])
      nft.write(setLines(sets).join('; '))
      reopen()
    },
    stop,
  }
}
