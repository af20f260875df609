import {mkdtempSync, readFileSync, writeFileSync, mkdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, it, expect} from 'vitest'
import fc from 'fast-check'
import type {AnomalyReport} from '../events/anomaly.js'
import {
  canonicalInventory, emptyInventory, loadInventory, mergeHost, mergeService, parseInventory,
  serializeInventory, setManual, updateInventory, INVENTORY_LIMITS,
} from './inventory.js'
import {macVendor} from './oui.js'

const T1 = '2025-01-01T00:00:00.000Z'
const T2 = '2025-01-02T00:00:00.000Z'

describe('inventory merge', () => {
  it('keeps first_seen, advances last_seen and unions found_by', () => {
    const inv = emptyInventory(T1)
    mergeHost(inv, {ip: '10.0.0.5', found_by: ['arp'], mac: '52:54:00:12:34:56'}, {now: T1})
    mergeHost(inv, {ip: '10.0.0.5', found_by: ['icmp', 'arp']}, {now: T2})
    const h = inv.hosts[0]
    expect(h.first_seen).toBe(T1)
    expect(h.last_seen).toBe(T2)
    expect(h.found_by).toEqual(['arp', 'icmp'])
    expect(h.vendor).toBe('QEMU/KVM')
  })

  it('sorts hosts numerically, services by proto and port, keys in a fixed order', () => {
    const inv = emptyInventory(T1)
    for (const ip of ['10.0.0.10', '10.0.0.9', '2001:db8::1', '10.0.0.100']) mergeHost(inv, {ip}, {now: T1})
    mergeService(inv, '10.0.0.9', {port: 443, source: 'active'}, {now: T1})
    mergeService(inv, '10.0.0.9', {port: 22, source: 'active', product: 'OpenBSD/OpenSSH', version: '9.2p1'}, {now: T1})
    mergeService(inv, '10.0.0.9', {port: 53, proto: 'udp', source: 'active'}, {now: T1})
    const c = canonicalInventory(inv)
    expect(c.hosts.map((h) => h.ip)).toEqual(['10.0.0.9', '10.0.0.10', '10.0.0.100', '2001:db8::1'])
    expect(c.hosts[0].services.map((s) => `${s.proto}/${s.port}`)).toEqual(['tcp/22', 'tcp/443', 'udp/53'])
    expect(Object.keys(c.hosts[0].services[0])).toEqual(['port', 'proto', 'state', 'product', 'version', 'source', 'first_seen', 'last_seen'])
    expect(c.hosts[0].services[0].product).toBe('openbsd/openssh')
    // idempotent and byte-stable
    expect(serializeInventory(c)).toBe(serializeInventory(canonicalInventory(c)))
  })

  it('a manual value wins over later detections until cleared', () => {
    const inv = emptyInventory(T1)
    mergeService(inv, '10.0.0.1', {port: 80, source: 'active', product: 'nginx/nginx', candidates: [{product: 'nginx/nginx', version: '1.22.0', confidence: 0.5}, {product: 'nginx/nginx', version: '1.22.1', confidence: 0.5}]}, {now: T1})
    setManual(inv, '10.0.0.1', 80, 'tcp', {product: 'nginx/nginx', version: '1.22.1'}, {now: T1})
    const s = mergeService(inv, '10.0.0.1', {port: 80, source: 'active', product: 'apache/http_server', version: '2.4.62'}, {now: T2})!
    expect(s.product).toBe('nginx/nginx')
    expect(s.version).toBe('1.22.1')
    expect(s.source).toBe('manual')
    expect(s.candidates).toBeUndefined()
    expect(s.detected?.product).toBe('apache/http_server')
    // cleared: the latest detection comes back
    setManual(inv, '10.0.0.1', 80, 'tcp', null, {now: T2})
    expect(s.product).toBe('apache/http_server')
    expect(s.version).toBe('2.4.62')
    expect(s.manual).toBeUndefined()
  })

  it('an open-port-only result keeps an earlier product and version', () => {
    const inv = emptyInventory(T1)
    mergeService(inv, '10.0.0.1', {port: 21, source: 'active', product: 'vsftpd/vsftpd', version: '3.0.3'}, {now: T1})
    const s = mergeService(inv, '10.0.0.1', {port: 21, source: 'passive'}, {now: T2})!
    expect(s.product).toBe('vsftpd/vsftpd')
    expect(s.version).toBe('3.0.3')
    expect(s.source).toBe('active')
  })

  it('hits the host and service limits with an anomaly, never throws', () => {
    const seen: AnomalyReport[] = []
    const inv = emptyInventory(T1)
    const o = {now: T1, limits: {maxHosts: 2, maxServicesPerHost: 1}, onAnomaly: (a: AnomalyReport) => seen.push(a)}
    mergeHost(inv, {ip: '10.0.0.1'}, o)
    mergeHost(inv, {ip: '10.0.0.2'}, o)
    expect(mergeHost(inv, {ip: '10.0.0.3'}, o)).toBeUndefined()
    mergeService(inv, '10.0.0.1', {port: 1, source: 'active'}, o)
    expect(mergeService(inv, '10.0.0.1', {port: 2, source: 'active'}, o)).toBeUndefined()
    expect(inv.hosts).toHaveLength(2)
    expect(seen.map((a) => a.event)).toEqual(['inventory.max_hosts', 'inventory.max_services'])
  })

  it('strips control characters from banner-derived text and bounds its length', () => {
    const inv = emptyInventory(T1)
    const s = mergeService(inv, '10.0.0.1', {port: 21, source: 'active', product: 'x/y', version: '1.0\r\n\x1b[31m', extra: 'A'.repeat(5000)}, {now: T1})!
    expect(s.version).toBe('1.0   [31m')
    expect(s.extra!.length).toBe(INVENTORY_LIMITS.maxFieldChars)
  })

  it('property: random merges stay canonical-stable and bounded', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ip: fc.constantFrom('10.0.0.1', '10.0.0.2', '10.0.0.3', '192.0.2.7'), port: fc.integer({min: 1, max: 20}), product: fc.option(fc.constantFrom('nginx/nginx', 'a/b'), {nil: undefined})}), {maxLength: 60}),
      (ops) => {
        const inv = emptyInventory(T1)
        for (const op of ops) mergeService(inv, op.ip, {port: op.port, source: 'active', product: op.product}, {now: T1, limits: {maxServicesPerHost: 5}})
        const c = canonicalInventory(inv)
        expect(serializeInventory(c)).toBe(serializeInventory(canonicalInventory(JSON.parse(serializeInventory(c)))))
        for (const h of c.hosts) expect(h.services.length).toBeLessThanOrEqual(5)
      },
    ), {numRuns: Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 100)})
  })
})

describe('inventory on disk', () => {
  it('updateInventory writes canonical JSON under the lock and reads it back', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pp-inv-'))
    const state = path.join(dir, '.patchpoint')
    await updateInventory(dir, state, (inv) => { mergeService(inv, '10.0.0.2', {port: 22, source: 'active'}, {now: T1}) })
    await updateInventory(dir, state, (inv) => { mergeHost(inv, {ip: '10.0.0.1', found_by: ['manual']}, {now: T2}) })
    const text = readFileSync(path.join(state, 'inventory.json'), 'utf8')
    const inv = await loadInventory(state)
    expect(inv.hosts.map((h) => h.ip)).toEqual(['10.0.0.1', '10.0.0.2'])
    expect(serializeInventory(inv)).toBe(text)
  })

  it('a missing file is an empty inventory; a bad file is a user error naming it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pp-inv-'))
    expect((await loadInventory(dir)).hosts).toEqual([])
    mkdirSync(dir, {recursive: true})
    writeFileSync(path.join(dir, 'inventory.json'), '{"version": 1, "hosts": [{"ip": "nope"}]}')
    await expect(loadInventory(dir)).rejects.toThrow(/inventory.json: host entry without a valid ip/)
    expect(() => parseInventory('{')).toThrow(/not valid JSON/)
  })
})

describe('oui', () => {
  it('names common vendors and locally administered addresses', () => {
    expect(macVendor('00:50:56:aa:bb:cc')).toBe('VMware')
    expect(macVendor('08-00-27-AA-BB-CC')).toBe('Oracle VirtualBox')
    expect(macVendor('02:11:22:33:44:55')).toBe('locally administered')
    expect(macVendor('00:11:22:33:44:55')).toBeUndefined()
    expect(macVendor('garbage')).toBeUndefined()
  })
})
