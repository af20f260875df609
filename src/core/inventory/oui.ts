/**
 * A small IEEE OUI table (the first three bytes of a MAC address) for common server, network
 * and virtualisation vendors. Enough to tell "a VMware guest" from "a Cisco switch" in the
 * inventory; not a full registry. Locally administered addresses (bit 1 of the first byte)
 * are reported as such.
 */
export const OUI_VENDORS: Readonly<Record<string, string>> = Object.freeze({
  '00:50:56': 'VMware', '00:0c:29': 'VMware', '00:05:69': 'VMware', '00:1c:14': 'VMware',
  '08:00:27': 'Oracle VirtualBox', '0a:00:27': 'Oracle VirtualBox',
  '52:54:00': 'QEMU/KVM', '00:16:3e': 'Xen', '00:15:5d': 'Microsoft Hyper-V',
  '00:1c:42': 'Parallels', '02:42:ac': 'Docker',
  '00:00:0c': 'Cisco', '00:1b:54': 'Cisco', '00:25:45': 'Cisco', '58:8d:09': 'Cisco', 'f8:72:ea': 'Cisco',
  '00:1b:21': 'Intel', '3c:fd:fe': 'Intel', 'a0:36:9f': 'Intel', '00:15:17': 'Intel', 'f8:f2:1e': 'Intel',
  '00:14:22': 'Dell', '18:66:da': 'Dell', 'f8:bc:12': 'Dell', '24:6e:96': 'Dell', 'b8:2a:72': 'Dell',
  '00:17:a4': 'HPE', '3c:a8:2a': 'HPE', '94:18:82': 'HPE', '00:25:b3': 'HPE', '98:f2:b3': 'HPE',
  '00:1e:67': 'Intel', '00:25:90': 'Supermicro', 'ac:1f:6b': 'Supermicro', '0c:c4:7a': 'Supermicro',
  '00:0d:b9': 'PC Engines', '00:1a:4a': 'Qumranet', '00:03:ff': 'Microsoft',
  '00:1b:17': 'Palo Alto Networks', '00:09:0f': 'Fortinet', '00:1f:12': 'Juniper', '00:05:85': 'Juniper',
  '00:0b:86': 'Aruba', '00:1a:1e': 'Aruba', '00:90:0b': 'Lanner', '00:e0:4c': 'Realtek',
  '00:10:18': 'Broadcom', '00:02:c9': 'Mellanox', 'b8:27:eb': 'Raspberry Pi', 'dc:a6:32': 'Raspberry Pi',
  '00:11:32': 'Synology', '00:08:9b': 'QNAP', '24:5e:be': 'QNAP', '00:0e:c6': 'ASIX',
  '3c:ec:ef': 'Supermicro', '00:26:b9': 'Dell', '00:21:5a': 'HPE', '00:50:b6': 'Good Way',
  '00:80:92': 'Silex', '00:1d:d8': 'Microsoft', '28:18:78': 'Microsoft', '7c:1e:52': 'Microsoft',
})

/** Vendor for a MAC (`aa:bb:cc:dd:ee:ff`, any case, `:` or `-`), undefined when unknown. */
export function macVendor(mac: string): string | undefined {
  const m = mac.toLowerCase().replace(/-/g, ':')
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(m)) return undefined
  const v = OUI_VENDORS[m.slice(0, 8)]
  if (v) return v
  if ((parseInt(m.slice(0, 2), 16) & 0x02) !== 0) return 'locally administered'
  return undefined
}
