import {Flags} from '@oclif/core'
import {PatchpointCommand} from '../cli/base-command.js'
import {runGateway, type RunGatewayResult} from '../core/gateway/run.js'
import type {DashboardHandle} from '../cli/run-dashboard.js'

/** The dashboard is the default in a terminal: stdout a TTY, not --json, CI unset, TERM not dumb. */
export function wantsDashboard(flag: boolean | undefined, json: boolean, stdout: {isTTY?: boolean} = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  if (json || flag === false) return false
  if (flag === true) return true
  return stdout.isTTY === true && !env.CI && env.TERM !== 'dumb'
}

/**
 * The dashboard, loaded only when used (plain mode never loads React and ink). React's
 * production build draws a frame about twice as fast as its development build (measured with
 * 1000 events, 160x50: median 8-14 ms against 20-25 ms per redraw on a loaded 2-core VM), so
 * NODE_ENV defaults to production before React is first loaded.
 */
async function loadDashboard(): Promise<DashboardHandle> {
  process.env.NODE_ENV ??= 'production'
  const {startDashboard} = await import('../cli/run-dashboard.js')
  return startDashboard()
}

export class Run extends PatchpointCommand<typeof Run> {
  static override summary = 'Run the gateway: inline between two interfaces, or as a TCP protection proxy.'

  static override description = `Inline mode (--iface A,B) bridges the two interfaces; the kernel forwards all traffic at
wire speed except the services listed in the project's policy (.patchpoint/policy.json), which
nftables diverts into the engine: reassembled, judged by the analyzers and rules, and forwarded,
fixed in place, held until judged, or dropped (resets to both ends). Frames with one VLAN tag
(802.1Q or 802.1ad) are diverted and judged alike and keep their tag; QinQ frames (two tags) are
bridged uninspected. If the engine dies, the
divert rules expire within a second and the kernel forwards everything (fail-open), unless
--fail-closed. Needs CAP_NET_ADMIN and CAP_NET_RAW (exit 4 without them).

Proxy mode (--proxy LISTEN=UPSTREAM, repeatable) needs no privileges: each connection's bytes are
judged the same way; fixes may change lengths, drops close both sockets.

Policy format (.patchpoint/policy.json):
  {"services": [{"ip": "10.0.0.3", "port": 80, "proto": "tcp", "protocol": "http",
                 "rules": ["PP-SHELLSHOCK"], "action": "drop", "shadow": false}],
   "default_action": "fix"}
(rules, action, protocol, shadow and default_action are optional; addresses are read in any
IPv4 or IPv6 form and used as the engine prints them, e.g. FD00:0006::0003 as fd00:6::3; an
error names the file, the line and the field.)

In a terminal (stdout a TTY, no --json), an interactive dashboard shows the mode, traffic in and
out with rates, protected flows, actions by type, engine health and the latest events, redrawn
every second; q or Ctrl-C stops the gateway as SIGINT does. --no-dashboard (or no terminal:
systemd, cron, pipes) prints one line per event (JSON with --json) and a stats line every
--stats-interval seconds instead. With --json, stdout carries JSON lines only (events, stats,
and a closing summary); the gateway's own lines (ready, reloaded, stopped) go to stderr.

Signals: SIGHUP reloads rules and policy (established sessions kept); SIGINT/SIGTERM remove the
nftables table (netdev patchpoint), the divert veth pairs (A-ppk/A-ppe, B-ppk/B-ppe) and the
bridge we created, and leave the interfaces as they were found.

Exit codes: 0 stopped cleanly; 2 bad flag, policy or interface; 4 missing privileges; 70 bug.`

  static override examples = [
    {description: 'Protect the servers behind eth2 from the segment on eth1.', command: '<%= config.bin %> <%= command.id %> --iface eth1,eth2'},
    {description: 'Reuse an existing bridge br0 whose ports are eth1 and eth2.', command: '<%= config.bin %> <%= command.id %> --iface eth1,eth2 --bridge br0'},
    {description: 'A protection proxy in front of a web server, no root needed.', command: '<%= config.bin %> <%= command.id %> --proxy 0.0.0.0:8080=10.0.0.5:80'},
    {description: 'Events as JSON lines on stdout, a stats line every 10 s.', command: '<%= config.bin %> <%= command.id %> --iface eth1,eth2 --events - --json --stats-interval 10'},
  ]

  static override flags = {
    iface: Flags.string({summary: 'Two interfaces to bridge, A,B (inline mode).', helpValue: 'A,B'}),
    bridge: Flags.string({summary: 'Reuse this existing bridge (its ports must be A and B).', helpValue: 'BR'}),
    proxy: Flags.string({summary: 'LISTEN=UPSTREAM, e.g. 0.0.0.0:8080=10.0.0.5:80 (repeatable).', multiple: true, helpValue: 'LISTEN=UPSTREAM'}),
    policy: Flags.file({summary: 'Policy file (default: .patchpoint/policy.json in the project).', helpValue: 'FILE'}),
    events: Flags.string({summary: "Write events to FILE instead of the project's event log ('-' = stdout only).", helpValue: 'FILE'}),
    'fail-closed': Flags.boolean({summary: 'If the engine dies or a hold limit is hit, keep protected flows blocked.'}),
    force: Flags.boolean({summary: "Allow bridging an interface that carries the machine's default route."}),
    'stats-interval': Flags.integer({summary: 'Seconds between stats lines (0 = none; not with the dashboard).', default: 60, min: 0}),
    dashboard: Flags.boolean({summary: 'The terminal dashboard (default in a terminal); --no-dashboard prints plain lines.', allowNo: true}),
  }

  /** --json: the closing summary on one line, like the event and stats lines before it (JSON lines) */
  protected override logJson(json: unknown): void {
    process.stdout.write(JSON.stringify(json) + '\n')
  }

  public async run(): Promise<RunGatewayResult> {
    const flags = this.flags
    let project
    try {
      project = this.project()
    } catch (err) {
      if ((flags as {project?: string}).project || process.env.PATCHPOINT_PROJECT) throw err
    }
    const json = this.jsonEnabled()
    const dash = wantsDashboard(flags.dashboard, json) ? await loadDashboard() : null
    try {
      return await runGateway({
        project,
        ifaces: flags.iface ? flags.iface.split(',').map((s) => s.trim()).filter((s) => s !== '') : undefined,
        bridge: flags.bridge,
        force: flags.force,
        failClosed: flags['fail-closed'],
        proxies: flags.proxy,
        policyFile: flags.policy,
        eventsFile: flags.events,
        json,
        statsIntervalS: flags['stats-interval'],
        view: dash?.view,
      })
    } finally {
      await dash?.close()
    }
  }
}
