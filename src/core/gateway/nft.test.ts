import {describe, it, expect} from 'vitest'
import {execFileSync} from 'node:child_process'
import {ACK, PSH, SYN} from '../packet/decode.js'
import {buildEthernet, buildTcpPacket, buildUdpPacket, fragmentIpv4, fragmentIpv6} from '../packet/encode.js'
import {ALIVE_TIMEOUT_MS, ENGINE_STALL_MS, MAX_IFNAME, NFT_FAMILY, NFT_TABLE, REFRESH_MS, SYN_DIVERT_PER_SECOND, UNPROTECTED_TCP4_NFT, addElementLine, canonicalIp, divertSets, divertVeths, refreshLine, rulesetScript, setLines, tcpPorts4, vlanDivertRule} from './nft.js'
import {hasCommand} from '../lab/netns.js'

const canNft = process.getuid?.() === 0 && hasCommand('nft') && hasCommand('ip')
const canInject = canNft && hasCommand('python3')

/** chain name -> its rules (one per line, without the base chain's `type ... policy` line) */
function chainsOf(script: string): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  let cur: string[] | null = null
  for (const raw of script.split('\n')) {
    const l = raw.trim()
    const m = /^chain (\S+) \{$/.exec(l)
    if (m) {
      cur = out[m[1]] = []
      continue
    }
    if (l === '}') {
      cur = null
      continue
    }
    if (cur && l.length > 0 && !l.startsWith('type ')) cur.push(l)
  }
  return out
}

/** the body of one chain of the script */
function chainOf(script: string, name: string): string {
  const at = script.indexOf(`  chain ${name} {\n`)
  return at < 0 ? '' : script.slice(at, script.indexOf('\n  }\n', at))
}

describe('nftables divert script', () => {
  const sets = divertSets([
    {ip: '10.0.0.3', port: 80, proto: 'tcp'},
    {ip: '10.0.0.3', port: 80, proto: 'tcp'},
    {ip: '10.0.0.4', port: 53, proto: 'udp'},
    {ip: 'fd00::3', port: 80, proto: 'tcp'},
    {ip: 'FD00:0:0::3', port: 80, proto: 'tcp'},
    {ip: 'fd00:6::5', port: 53, proto: 'udp'},
  ])

  it('sets: one element per service, hosts for fragments, IPv4 and IPv6 apart', () => {
    expect(sets.tcp4).toEqual(['10.0.0.3 . 80'])
    expect(sets.udp4).toEqual(['10.0.0.4 . 53'])
    expect([...sets.hosts4].sort()).toEqual(['10.0.0.3', '10.0.0.4'])
    // the same address in two spellings is one element, in the engine's text form (RFC 5952)
    expect(sets.tcp6).toEqual(['fd00::3 . 80'])
    expect(sets.udp6).toEqual(['fd00:6::5 . 53'])
    expect([...sets.hosts6].sort()).toEqual(['fd00:6::5', 'fd00::3'])
  })

  it('canonicalIp: RFC 5952 text, IPv4 unchanged, junk is null', () => {
    expect(canonicalIp('FD00:0006:0000:0000:0000:0000:0000:0003')).toBe('fd00:6::3')
    expect(canonicalIp('10.0.0.3')).toBe('10.0.0.3')
    expect(canonicalIp('fd00::3 . 80')).toBeNull()
    expect(canonicalIp('')).toBeNull()
    expect(divertSets([{ip: 'not-an-ip', port: 80, proto: 'tcp'}])).toEqual({tcp4: [], udp4: [], hosts4: [], tcp6: [], udp6: [], hosts6: []})
  })

  it('a policy with only IPv6 services diverts only IPv6', () => {
    const only6 = divertSets([{ip: 'fd00:6::3', port: 443, proto: 'tcp'}])
    expect(only6.tcp4).toEqual([])
    expect(only6.hosts4).toEqual([])
    expect(only6.tcp6).toEqual(['fd00:6::3 . 443'])
    const s = rulesetScript(only6, {ports: ['ga', 'gb']})
    expect(s).toContain('set tcp6 { type ipv6_addr . inet_service; elements = { fd00:6::3 . 443 } }')
    expect(s).toContain('set tcp4 { type ipv4_addr . inet_service;  }')
  })

  it('SYN floods: bare SYNs to protected services over the rate go to the kernel, before any divert rule', () => {
    const s = rulesetScript(sets, {ports: ['ga', 'gb']})
    for (const [chain, other] of [['tcp4c_0', 'baresyn4'], ['divert6_1', 'baresyn6']]) {
      const c = chainOf(s, chain)
      const limit = c.indexOf(`limit rate over ${SYN_DIVERT_PER_SECOND}/second jump ${other}`)
      expect(limit).toBeGreaterThan(0)
      expect(limit).toBeLessThan(c.indexOf(' fwd to '))
      expect(c).toContain('tcp flags & (fin | syn | rst | ack) == syn')
    }
    // only SYNs without payload leave: the chains accept a length equal to the headers alone
    expect(chainOf(s, 'baresyn4')).toContain('ip length 60 tcp doff 10 accept')
    expect(chainOf(s, 'baresyn6')).toContain('ip6 length 40 tcp doff 10 accept')
    expect(chainOf(s, 'baresyn4')).not.toMatch(/fwd|drop/)
  })

  it('diverts every IPv4 fragment to or from a protected host, matched by address only', () => {
    const s = rulesetScript(sets, {ports: ['ga', 'gb']})
    expect(NFT_FAMILY).toBe('netdev')
    // non-first fragments carry no ports: a rule on tcp dport would miss them
    expect(chainOf(s, 'divert4_0')).toContain('ip frag-off & 0x3fff != 0 ip daddr @hosts4 fwd to "ga-ppk"')
    expect(chainOf(s, 'divert4_0')).toContain('ip frag-off & 0x3fff != 0 ip saddr @hosts4 fwd to "ga-ppk"')
    expect(chainOf(s, 'in0')).toContain('type filter hook ingress device "ga" priority -200; policy accept;')
    expect(chainOf(s, 'in0')).toContain('ether type @alive ether type vmap { ip : jump divert4_0, ip6 : jump divert6_0 }')
    expect(chainOf(s, 'divert4_0')).toContain('ip daddr . tcp dport @tcp4 jump tcp4c_0')
    expect(chainOf(s, 'divert4_0')).toContain('ip saddr . tcp sport @tcp4 jump tcp4s_0')
    expect(chainsOf(s).tcp4c_0.at(-1)).toBe('fwd to "ga-ppk"')
    expect(chainsOf(s).tcp4s_1.at(-1)).toBe('fwd to "gb-ppk"')
    expect(s).toContain(`delete table netdev ${NFT_TABLE}`)
    expect(s).not.toContain('table bridge')
  })

  it('unprotected IPv4 TCP leaves the ingress chain first: ports, then tuples, TCP and no fragment only, accept only', () => {
    const two = divertSets([{ip: '10.0.0.3', port: 80, proto: 'tcp'}, {ip: '10.0.0.5', port: 80, proto: 'tcp'}, {ip: '10.0.0.3', port: 25, proto: 'tcp'}, {ip: '10.0.0.4', port: 53, proto: 'udp'}])
    expect(tcpPorts4(two.tcp4)).toEqual(['80', '25'])
    const s = rulesetScript(two, {ports: ['ga', 'gb']})
    expect(s).toContain('set tports4 { type inet_service; elements = { 80, 25 } }')
    for (const chain of ['in0', 'in1']) {
      const rules = chainsOf(s)[chain]
      // the fast rules come before the alive rule, so they are what most frames cost
      expect(rules.slice(0, 2)).toEqual([...UNPROTECTED_TCP4_NFT])
      expect(rules[2]).toMatch(/^ether type @alive /)
    }
    for (const r of UNPROTECTED_TCP4_NFT) {
      expect(r).toMatch(/^ip frag-off & 0x3fff == 0 meta l4proto tcp /)
      expect(r.endsWith(' accept')).toBe(true)
      expect(r).not.toMatch(/fwd|jump|goto|drop/)
    }
    // both directions: a frame to a protected port and a frame from one both fail the rule
    expect(UNPROTECTED_TCP4_NFT[0]).toContain('tcp dport != @tports4 tcp sport != @tports4')
    expect(UNPROTECTED_TCP4_NFT[1]).toContain('ip daddr . tcp dport != @tcp4 ip saddr . tcp sport != @tcp4')
    // the ports set follows the tuples at run time: replaced with them, and with each added tuple
    const lines = setLines(two)
    expect(lines).toContain(`flush set netdev ${NFT_TABLE} tports4`)
    expect(lines).toContain(`add element netdev ${NFT_TABLE} tports4 { 80, 25 }`)
    expect(setLines(divertSets([])).some((l) => l.includes('tports4 {'))).toBe(false)
    expect(addElementLine('tcp4', '10.0.0.7 . 2049')).toBe(`add element netdev ${NFT_TABLE} tcp4 { 10.0.0.7 . 2049 }; add element netdev ${NFT_TABLE} tports4 { 2049 }`)
    expect(addElementLine('udp4', '10.0.0.7 . 2049')).not.toContain('tports4')
  })

  it('each port diverts into its own veth pair; the pair forwards back out of the same port; the engine end drops', () => {
    const s = rulesetScript(sets, {ports: ['ga', 'gb']})
    for (const [i, port] of [[0, 'ga'], [1, 'gb']] as const) {
      const v = divertVeths(port)
      // what the engine sends into port X's pair (engine end -> kernel end) leaves through X
      expect(chainOf(s, `out${i}`)).toContain(`type filter hook ingress device "${v.kernel}" priority -200; policy accept;`)
      expect(chainsOf(s)[`out${i}`]).toEqual([`fwd to "${port}"`])
      // the engine end's own stack never sees the diverted frames (libpcap's tap runs first)
      expect(chainOf(s, `engine${i}`)).toContain(`type filter hook ingress device "${v.engine}" priority -200; policy drop;`)
      expect(chainsOf(s)[`engine${i}`]).toEqual([])
      // every divert of port X goes into X's pair, none into the other's
      const c = chainsOf(s)
      const fwd = [...c[`divert4_${i}`], ...c[`tcp4c_${i}`], ...c[`tcp4s_${i}`], ...c[`divert6_${i}`]].filter((r) => r.includes('fwd to'))
      expect(fwd.length).toBe(14)
      for (const r of fwd) expect(r.endsWith(`fwd to "${v.kernel}"`), r).toBe(true)
    }
  })

  it('VLAN-tagged frames (802.1Q, 802.1ad) enter the same divert chains by the protocol inside the tag, behind @alive', () => {
    const chains = chainsOf(rulesetScript(sets, {ports: ['ga', 'gb']}))
    for (const i of [0, 1]) {
      expect(chains[`in${i}`]).toContain(vlanDivertRule(i))
      expect(vlanDivertRule(i)).toMatch(new RegExp(`^ether type \\{ 8021q, 8021ad \\} meta protocol @alive meta protocol vmap \\{ ip : jump divert4_${i}, ip6 : jump divert6_${i} \\}$`))
    }
  })

  it('divertVeths: named after the port, at most 15 characters, distinct for long names with one prefix', () => {
    expect(divertVeths('ga')).toEqual({kernel: 'ga-ppk', engine: 'ga-ppe'})
    expect(divertVeths('enp3s0f1')).toEqual({kernel: 'enp3s0f1-ppk', engine: 'enp3s0f1-ppe'})
    const a = divertVeths('enp129s0f1np1')
    const b = divertVeths('enp129s0f1np2')
    for (const v of [a, b, divertVeths('x'.repeat(15))]) {
      expect(v.kernel.length).toBeLessThanOrEqual(MAX_IFNAME)
      expect(v.engine.length).toBeLessThanOrEqual(MAX_IFNAME)
      expect(v.kernel).toMatch(/^[a-z0-9]+-ppk$/)
    }
    expect(a.kernel.startsWith('enp129')).toBe(true)
    expect(a.kernel).not.toBe(b.kernel)
    expect(divertVeths('enp129s0f1np1')).toEqual(a)
  })

  it('IPv6: service tuples both ways, fragments and extension headers by address, all behind @alive', () => {
    const s = rulesetScript(sets, {ports: ['ga', 'gb']})
    const chains = chainsOf(s)
    const v6 = Object.entries(chains).filter(([, rules]) => rules.some((r) => r.includes('@tcp6')))
    expect(v6.map(([n]) => n).sort()).toEqual(['divert6_0', 'divert6_1'])
    for (const [name, rules] of v6) {
      const to = `fwd to "${name === 'divert6_0' ? 'ga-ppk' : 'gb-ppk'}"`
      for (const rule of [
        'ip6 daddr . tcp dport @tcp6', 'ip6 saddr . tcp sport @tcp6',
        'ip6 daddr . udp dport @udp6', 'ip6 saddr . udp sport @udp6',
        'exthdr frag exists ip6 daddr @hosts6', 'exthdr frag exists ip6 saddr @hosts6',
        'ip6 nexthdr != { tcp, udp, ipv6-icmp } ip6 daddr @hosts6', 'ip6 nexthdr != { tcp, udp, ipv6-icmp } ip6 saddr @hosts6',
      ]) expect(rules, rule).toContain(`${rule} ${to}`)
      // the IPv6 chain is reached by IPv6 frames only
      const jump = Object.values(chains).flat().find((r) => r.includes(`jump ${name}`))
      expect(jump).toMatch(new RegExp(`ip6 : jump ${name}\\b`))
    }
    // every divert rule (fwd to a pair) is conditioned on the alive set, in a chain entered only
    // from a port's ingress chain's @alive rule (or from chains that are)
    const gated = (chain: string, depth = 0): boolean => {
      const from = Object.entries(chains).filter(([, list]) => list.some((r) => new RegExp(`(jump|goto) ${chain}\\b`).test(r)))
      return depth < 4 && from.length > 0 && from.every(([n, list]) => /^in\d$/.test(n)
        ? list.every((r) => !r.includes(`jump ${chain}`) || r.startsWith('ether type @alive ') || r.includes(' meta protocol @alive '))
        : gated(n, depth + 1))
    }
    let diverts = 0
    for (const [chain, list] of Object.entries(chains)) {
      for (const r of list) {
        if (!/(^| )fwd to "/.test(r) || /^out\d$/.test(chain)) continue
        diverts++
        expect(gated(chain), `${chain}: ${r}`).toBe(true)
      }
    }
    expect(diverts).toBe(28)
    // no drop anywhere but the engine ends' policy: a frame is diverted, accepted or bridged
    expect(Object.values(chains).flat().filter((r) => r.endsWith(' drop'))).toEqual([])
    expect(s).toContain('set hosts6 { type ipv6_addr; elements = { fd00::3, fd00:6::5 } }')
  })

  it('fail-open: the alive elements (IPv4 and IPv6) expire unless refreshed; fail-closed: they do not', () => {
    expect(rulesetScript(sets, {ports: ['ga', 'gb']})).toContain(`elements = { ip timeout ${ALIVE_TIMEOUT_MS}ms, ip6 timeout ${ALIVE_TIMEOUT_MS}ms }`)
    expect(rulesetScript(sets, {ports: ['ga', 'gb'], failClosed: true})).toContain('elements = { ip, ip6 }')
    const line = refreshLine()
    expect(line).toContain(`add element netdev ${NFT_TABLE} alive { ip timeout ${ALIVE_TIMEOUT_MS}ms, ip6 timeout ${ALIVE_TIMEOUT_MS}ms }`)
    expect(line).toContain(`delete element netdev ${NFT_TABLE} alive { ip, ip6 }`)
    // add, delete, add: the delete never fails and the last write wins
    expect(line.split('; ').map((c) => c.split(' ')[0])).toEqual(['add', 'delete', 'add'])
    // at least two refreshes per lifetime, and the "within one second"
    expect(REFRESH_MS * 2).toBeLessThan(ALIVE_TIMEOUT_MS)
    expect(ALIVE_TIMEOUT_MS).toBeLessThanOrEqual(1000)
    expect(ENGINE_STALL_MS).toBeGreaterThan(ALIVE_TIMEOUT_MS)
  })

  it('setLines and addElementLine cover the IPv6 sets', () => {
    const lines = setLines(sets)
    for (const n of ['tcp4', 'udp4', 'hosts4', 'tcp6', 'udp6', 'hosts6']) expect(lines).toContain(`flush set netdev ${NFT_TABLE} ${n}`)
    expect(lines).toContain(`add element netdev ${NFT_TABLE} tcp6 { fd00::3 . 80 }`)
    expect(lines).toContain(`add element netdev ${NFT_TABLE} hosts6 { fd00::3, fd00:6::5 }`)
    // an empty set is flushed, never given an empty element list (a syntax error)
    expect(lines.some((l) => l.endsWith('{  }'))).toBe(false)
    expect(addElementLine('udp6', 'fd00:6::3 . 5353')).toBe(`add element netdev ${NFT_TABLE} udp6 { fd00:6::3 . 5353 }`)
    // large sets are written in chunks of 256 elements
    const many = divertSets(Array.from({length: 600}, (_, i) => ({ip: `fd00:6::${(i + 1).toString(16)}`, port: 80, proto: 'tcp' as const})))
    const adds = setLines(many).filter((l) => l.includes(' tcp6 {'))
    expect(adds.length).toBe(3)
  })
})

/**
 * The script and the run-time lines loaded by the real nft, in a namespace of our own (nothing
 * in the host's ruleset is touched): syntax, types (ipv6_addr . inet_service), ether type ip6 in
 * the alive set.
 */
describe.skipIf(!canNft)('nftables divert script, loaded by nft (root)', () => {
  it('loads, holds the IPv6 elements, and accepts the refresh and set lines', () => {
    const ns = `pp6-nft-${process.pid % 10000}${Math.floor(Math.random() * 1000)}`
    execFileSync('ip', ['netns', 'add', ns])
    try {
      const nft = (args: string[], input?: string) => execFileSync('ip', ['netns', 'exec', ns, 'nft', ...args], {input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe']})
      // the ports and their pairs (nft resolves the hooks' devices and `fwd to` when loading)
      for (const port of ['p6ga', 'p6gb']) {
        const v = divertVeths(port)
        execFileSync('ip', ['-n', ns, 'link', 'add', port, 'type', 'veth', 'peer', 'name', `${port}x`])
        execFileSync('ip', ['-n', ns, 'link', 'add', v.kernel, 'type', 'veth', 'peer', 'name', v.engine])
      }
      const sets = divertSets([
        {ip: '10.66.0.3', port: 80, proto: 'tcp'},
        {ip: 'fd00:6::3', port: 80, proto: 'tcp'},
        {ip: 'fd00:6::3', port: 53, proto: 'udp'},
      ])
      const script = rulesetScript(sets, {ports: ['p6ga', 'p6gb']})
      nft(['-c', '-f', '-'], script)
      nft(['-f', '-'], rulesetScript(sets, {ports: ['p6ga', 'p6gb'], failClosed: true}))
      const listed = nft(['list', 'table', 'netdev', NFT_TABLE])
      expect(listed).toMatch(/set tcp6 \{\s+type ipv6_addr \. inet_service\s+elements = \{ fd00:6::3 \. 80 \}/)
      expect(listed).toMatch(/set alive \{[^}]*elements = \{ ip,\s*ip6 \}/)
      expect(listed).toContain('exthdr frag exists ip6 daddr @hosts6 fwd to "p6ga-ppk"')
      expect(listed).toContain('type filter hook ingress device "p6gb-ppk" priority -200; policy accept;')
      // run-time lines: the refresh and a set replacement, as the nft -i child gets them
      nft(['-f', '-'], refreshLine() + '\n' + setLines(divertSets([{ip: 'fd00:6::4', port: 8080, proto: 'tcp'}])).join('; ') + '\n' + addElementLine('udp6', 'fd00:6::4 . 53') + '\n')
      const after = nft(['list', 'table', 'netdev', NFT_TABLE])
      expect(after).toMatch(/elements = \{ fd00:6::4 \. 8080 \}/)
      expect(after).toMatch(/elements = \{ fd00:6::4 \. 53 \}/)
      expect(after).toMatch(/ip timeout 1s expires/)
      expect(after).toMatch(/ip6 timeout 1s expires/)
    } finally {
      execFileSync('ip', ['netns', 'del', ns])
    }
  })
})

/**
 * Sends each frame into a port (`tx`, the port's veth peer) and says which came out on the
 * engine end of the port's divert pair (`rx`): the frames the ruleset diverts.
 */
const INJECT_PY = `import socket, sys, select, time
frames = [bytes.fromhex(l) for l in sys.stdin.read().split()]
rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
rx.bind((sys.argv[2], 0))
tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
tx.bind((sys.argv[1], 0))
for f in frames:
    tx.send(f)
got = set()
end = time.time() + 1.0
while time.time() < end:
    r, _, _ = select.select([rx], [], [], 0.1)
    if r:
        d = rx.recv(65535)
        if d in frames:
            got.add(frames.index(d))
print(' '.join(str(i) for i in sorted(got)))
`

describe.skipIf(!canInject)('nftables divert script, frames through the real kernel (root)', () => {
  it('diverts exactly the protected frames; the unprotected fast path lets the rest through', () => {
    const ns = `pp6-nfx-${process.pid % 10000}${Math.floor(Math.random() * 1000)}`
    const C4 = '10.66.0.1'
    const S4 = '10.66.0.3'
    const C6 = 'fd00:6::1'
    const S6 = 'fd00:6::3'
    const body = new Uint8Array(Buffer.from('EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: y\r\n\r\n'))
    const eth4 = (dg: Uint8Array) => buildEthernet({etherType: 0x0800}, dg)
    const eth6 = (dg: Uint8Array) => buildEthernet({etherType: 0x86dd}, dg)
    const req = buildTcpPacket({src: C4, dst: S4, srcPort: 40000, dstPort: 25, seq: 1, ack: 1, flags: PSH | ACK, payload: body})
    const other = buildTcpPacket({src: C4, dst: S4, srcPort: 40001, dstPort: 8025, seq: 1, ack: 1, flags: PSH | ACK, payload: body})
    const frames: [string, Uint8Array][] = [
      ['to service', req],
      ['from service', buildTcpPacket({src: S4, dst: C4, srcPort: 25, dstPort: 40000, seq: 7, ack: 9, flags: PSH | ACK, payload: body})],
      ['bare SYN to service', buildTcpPacket({src: C4, dst: S4, srcPort: 40002, dstPort: 25, flags: SYN})],
      ['udp to service', buildUdpPacket({src: C4, dst: S4, srcPort: 5000, dstPort: 53, payload: new Uint8Array(12)})],
      ['first fragment, unprotected port of a protected host', eth4(fragmentIpv4(other.subarray(14), 16)[0])],
      ['later fragment, unprotected port of a protected host', eth4(fragmentIpv4(other.subarray(14), 16)[2])],
      ['v6 to service', buildTcpPacket({src: C6, dst: S6, srcPort: 40000, dstPort: 25, seq: 1, ack: 1, flags: PSH | ACK, payload: body})],
      ['v6 fragment to protected host', eth6(fragmentIpv6(buildTcpPacket({src: C6, dst: S6, srcPort: 40000, dstPort: 8025, payload: body}).subarray(14), 16)[1])],
      // not diverted
      ['unprotected port of a protected host', other],
      ['unprotected, reply direction', buildTcpPacket({src: S4, dst: C4, srcPort: 8025, dstPort: 40001, seq: 5, ack: 2, flags: PSH | ACK, payload: body})],
      ['protected port of another host', buildTcpPacket({src: C4, dst: '10.66.0.9', srcPort: 40003, dstPort: 25, flags: PSH | ACK, payload: body})],
      ['from a protected port number of another host', buildTcpPacket({src: '10.66.0.9', dst: C4, srcPort: 25, dstPort: 40003, flags: PSH | ACK, payload: body})],
      ['pure ACK to service', buildTcpPacket({src: C4, dst: S4, srcPort: 40000, dstPort: 25, seq: 2, ack: 9, flags: ACK})],
      ['udp, unprotected port', buildUdpPacket({src: C4, dst: S4, srcPort: 5000, dstPort: 54, payload: new Uint8Array(12)})],
      ['v6 unprotected port', buildTcpPacket({src: C6, dst: S6, srcPort: 40000, dstPort: 8025, flags: PSH | ACK, payload: body})],
    ]
    const diverted = frames.slice(0, 8).map(([n]) => n)
    const sets = divertSets([
      {ip: S4, port: 25, proto: 'tcp'},
      {ip: '10.66.0.5', port: 80, proto: 'tcp'},
      {ip: S4, port: 53, proto: 'udp'},
      {ip: S6, port: 25, proto: 'tcp'},
    ])
    execFileSync('ip', ['netns', 'add', ns])
    try {
      const ip = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args])
      const v = divertVeths('p6ga')
      ip('link', 'add', 'p6ga', 'type', 'veth', 'peer', 'name', 'p6gax')
      ip('link', 'add', 'p6gb', 'type', 'veth', 'peer', 'name', 'p6gbx')
      ip('link', 'add', v.kernel, 'type', 'veth', 'peer', 'name', v.engine)
      ip('link', 'add', divertVeths('p6gb').kernel, 'type', 'veth', 'peer', 'name', divertVeths('p6gb').engine)
      for (const dev of ['p6ga', 'p6gax', v.kernel, v.engine]) {
        ip('link', 'set', 'dev', dev, 'addrgenmode', 'none')
        ip('link', 'set', dev, 'up')
      }
      // fail-closed: the alive elements do not expire while the frames go through
      execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {input: rulesetScript(sets, {ports: ['p6ga', 'p6gb'], failClosed: true})})
      const out = execFileSync('ip', ['netns', 'exec', ns, 'python3', '-c', INJECT_PY, 'p6gax', v.engine], {
        input: frames.map(([, f]) => Buffer.from(f).toString('hex')).join('\n'), encoding: 'utf8', timeout: 20_000,
      })
      const got = out.trim().split(' ').filter(Boolean).map((i) => frames[Number(i)][0])
      expect(got).toEqual(diverted)
    } finally {
      execFileSync('ip', ['netns', 'del', ns])
    }
  })
})
