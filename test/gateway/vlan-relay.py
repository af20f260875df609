#!/usr/bin/python3
"""A VLAN host end in user space, for kernels without 802.1Q support (no `ip link add ... type
vlan`): frames the host's stack sends on HOSTDEV leave WIREDEV carrying the tags; frames that
arrive on WIREDEV carrying exactly those tags reach HOSTDEV untagged; everything else arriving on
WIREDEV (untagged, other tags) is dropped and counted, as a VLAN-only port would.
TAGS: comma-separated TPID:VID, outermost first (e.g. 0x8100:10, or 0x88a8:100,0x8100:10).
The kernel moves the outermost tag of a received frame out of the frame (PACKET_AUXDATA gives
it back); inner tags stay in the frame.
WIREDEV's MTU must leave room for the tags (a packet socket sends a full-size frame with one
802.1Q tag beyond the MTU, nothing more).
Writes 'READY' when listening; on SIGTERM prints the counts ('tagged_in N ... send_errors E').
usage: vlan-relay.py HOSTDEV WIREDEV TAGS"""
import os, select, signal, socket, struct, sys

ETH_P_ALL = 3
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
host_dev, wire_dev, tags_arg = sys.argv[1], sys.argv[2], sys.argv[3]
tags = [tuple(int(x, 0) for x in t.split(':')) for t in tags_arg.split(',')]
tag_bytes = b''.join(struct.pack('!HH', tpid, vid) for tpid, vid in tags)
inner = b''.join(struct.pack('!HH', tpid, vid) for tpid, vid in tags[1:])


def open_sock(dev, aux):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    if aux:
        s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((dev, 0))
    return s


host = open_sock(host_dev, False)
wire = open_sock(wire_dev, True)
counts = {'tagged_in': 0, 'untagged_or_foreign': 0, 'out': 0, 'send_errors': 0}


def done(*_):
    print(' '.join(f'{k} {v}' for k, v in counts.items()), flush=True)
    os._exit(0)


signal.signal(signal.SIGTERM, done)
print('READY', flush=True)
while True:
    r, _, _ = select.select([host, wire], [], [])
    if host in r:
        data, addr = host.recvfrom(65535)
        if addr[2] != socket.PACKET_OUTGOING:
            # the host stack's frame arrived on our end of its veth: tag it onto the wire
            try:
                wire.send(data[:12] + tag_bytes + data[12:])
                counts['out'] += 1
            except OSError:
                counts['send_errors'] += 1
    if wire in r:
        data, anc, _, addr = wire.recvmsg(65535, socket.CMSG_SPACE(20))
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        outer = None
        for level, kind, cdata in anc:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= 20:
                status, _, _, _, _, tci, tpid = struct.unpack('IIIHHHH', cdata[:20])
                if status & TP_STATUS_VLAN_VALID:
                    outer = (tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100, tci & 0x0fff)
        if outer == tags[0] and data[12:12 + len(inner)] == inner:
            host.send(data[:12] + data[12 + len(inner):])
            counts['tagged_in'] += 1
        else:
            counts['untagged_or_foreign'] += 1
