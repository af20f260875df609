import {Args, Flags} from '@oclif/core'
import {PatchpointCommand} from '../cli/base-command.js'
import {isInteractive, renderTable} from '../cli/output.js'
import {discover, discoverWords, DISCOVER_DEFAULTS, type DiscoverResult} from '../core/scan/discover.js'
import {progressRenderer} from '../core/scan/progress.js'
import {MAX_TARGETS, parsePorts} from '../core/scan/targets.js'

export class Discover extends PatchpointCommand<typeof Discover> {
  static override summary = 'Find the live hosts in address ranges and record them in the inventory.'

  static override description = `On directly attached subnets every address is asked by ARP, so a host that drops all
IP probes is still found; hosts that answer then get ICMP echo and timestamp requests, TCP SYN to
--ports and TCP ACK (how they answer and their TTL become OS hints). Routed ranges get the IP
probes only. Probes go out through libpcap at --rate packets per second and unanswered ones are
retried --retries times. Without raw-socket rights (root or CAP_NET_RAW) discovery falls back to
TCP connect() to --ports (this machine's own addresses are left out).

Nothing outside the given ranges (minus --exclude) is ever probed. Results merge into the
project's inventory (.patchpoint/inventory.json): first and last seen, MAC and vendor, how each
host was found.

Exit codes: 0 hosts found; 1 none found; 2 bad range or flag; 4 raw access denied with --method raw.`

  static override examples = [
    {description: 'Sweep a /24 and record what answers.', command: '<%= config.bin %> <%= command.id %> 192.0.2.0/24'},
    {description: 'Two ranges, leaving the printers out, slower.', command: '<%= config.bin %> <%= command.id %> 10.1.0.0/24 10.1.5.10-40 --exclude 10.1.0.200-250 --rate 500'},
    {description: 'Add a host by hand (not probed).', command: '<%= config.bin %> <%= command.id %> --add 198.51.100.20'},
    {description: 'Without root: TCP connect() only.', command: '<%= config.bin %> <%= command.id %> 192.0.2.0/28 --method connect --json'},
  ]

  static override strict = false

  static override args = {
    range: Args.string({description: 'CIDR block, address or range (a.b.c.d-e); several allowed', required: false}),
  }

  static override flags = {
    exclude: Flags.string({summary: 'Leave these addresses out (CIDR, address or range); repeatable.', multiple: true, helpValue: 'RANGE'}),
    add: Flags.string({summary: 'Add this host to the inventory by hand, without probing it; repeatable.', multiple: true, helpValue: 'HOST'}),
    ports: Flags.string({summary: 'TCP ports for SYN probes: default, top100, a list like 22,80,8000-8010.', default: 'default'}),
    rate: Flags.integer({summary: 'Packets per second.', default: DISCOVER_DEFAULTS.rate, min: 1}),
    retries: Flags.integer({summary: 'Resend unanswered probes this many times.', default: DISCOVER_DEFAULTS.retries, min: 0, max: 10}),
    wait: Flags.integer({summary: 'Wait this long for late replies, ms.', default: DISCOVER_DEFAULTS.waitMs, min: 50}),
    method: Flags.option({options: ['auto', 'raw', 'connect'] as const, default: 'auto', summary: 'raw (libpcap), connect, or auto (raw when permitted).'})(),
    'max-hosts': Flags.integer({summary: 'Refuse ranges holding more addresses than this.', default: MAX_TARGETS, min: 1}),
    'no-inventory': Flags.boolean({summary: 'Do not write the inventory (works outside a project).'}),
  }

  public async run(): Promise<DiscoverResult> {
    const {argv} = await this.parse(Discover)
    const f = this.flags
    // ranges after --add or --exclude arrive among their words (a repeatable flag takes every word after it)
    const {targets: ranges, add} = discoverWords((argv as string[]).filter((a) => typeof a === 'string'), f.add, f.exclude)
    const render = progressRenderer({mode: this.jsonEnabled() ? 'json' : isInteractive(process.stderr) ? 'tty' : 'plain'})
    const result = await discover({
      targets: ranges, exclude: f.exclude, add, ports: parsePorts(f.ports), rate: f.rate, retries: f.retries,
      waitMs: f.wait, method: f.method, maxHosts: f['max-hosts'], project: f['no-inventory'] ? undefined : this.project(),
      onProgress: render,
    })
    render.end()
    if (!this.jsonEnabled()) {
      this.log(renderTable(['host', 'mac', 'vendor', 'found by', 'open ports', 'os hint'], result.hosts.map((h) => [
        h.ip, h.mac, h.vendor, h.found_by.join(','), h.open_ports.join(','), h.os_hints[0]?.os,
      ])))
      this.log(`${result.hosts.length} of ${result.targets} addresses up (${result.method}, ${result.packetsSent} probes, ${(result.elapsedMs / 1000).toFixed(1)} s)` +
        (result.added.length ? `; added by hand: ${result.added.join(', ')}` : '') + (result.inventory ? `; inventory: ${result.inventory}` : ''))
    }
    this.setExitCode(result.hosts.length + result.added.length > 0 ? 0 : 1)
    return result
  }
}
