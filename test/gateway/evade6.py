#!/usr/bin/python3
"""Send an HTTP request to [DST]:PORT over IPv6 with scapy, the data segment cut into IPv6
fragments (RFC 8200 section 4.5) of FRAGDATA bytes of data each (a multiple of 8; the first
fragment keeps the whole TCP header, as Linux requires since RFC 7112).
Prints 'RST' if the connection was reset, 'OK' if data came back, 'NONE' otherwise, then the
flags seen, 'SPORT' and the source port, 'FRAGS' and the number of fragments sent.
usage: evade6.py DST PORT REQUEST_FILE [FRAGDATA]"""
import sys, random, time, subprocess, threading
from scapy.all import IPv6, IPv6ExtHdrFragment, TCP, Raw, sr1, send, conf, AsyncSniffer
conf.verb = 0
dst, port, reqfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fragdata = int(sys.argv[4]) if len(sys.argv) > 4 else 32
req = open(reqfile, 'rb').read()
sport = random.randint(20000, 60000)
# scapy's own neighbour solicitation finds no route for the solicited-node multicast address in a
# namespace without a default route: take the kernel's neighbour entry instead
subprocess.run(['ping', '-6', '-c1', '-W1', dst], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
neigh = subprocess.run(['ip', '-6', 'neigh', 'show', dst], capture_output=True, text=True).stdout.split()
if 'lladdr' in neigh:
    conf.netcache.in6_neighbor[dst] = neigh[neigh.index('lladdr') + 1]
ip = IPv6(dst=dst)
synack = sr1(ip / TCP(sport=sport, dport=port, flags='S', seq=1000), timeout=3)
if synack is None or not synack.haslayer(TCP):
    print('NOSYNACK'); sys.exit(0)
ack = synack[TCP].seq + 1
seq = 1001
send(ip / TCP(sport=sport, dport=port, flags='A', seq=seq, ack=ack))
# conf.iface follows the IPv4 routes (none here): sniff where the IPv6 route goes
iface = conf.route6.route(dst)[0]
# send nothing before the sniffer listens (it opens its socket in its own thread)
listening = threading.Event()
sn = AsyncSniffer(iface=iface, filter=f'ip6 and tcp and src port {port} and dst port {sport}', store=True,
                  started_callback=listening.set)
sn.start()
listening.wait(10)
time.sleep(0.05)
# build the fragments by hand: scapy's fragment6 sizes them by MTU
whole = bytes(TCP(sport=sport, dport=port, flags='PA', seq=seq, ack=ack) / Raw(req))
# recompute the checksum against the IPv6 pseudo-header
seg = TCP(whole)
seg.chksum = None
whole = bytes(IPv6(src=synack[IPv6].dst, dst=dst) / seg)[40:]
ident = random.randint(1, 0xffffffff)
frags = []
for off in range(0, len(whole), fragdata):
    chunk = whole[off:off + fragdata]
    more = 1 if off + fragdata < len(whole) else 0
    frags.append(IPv6(dst=dst, nh=44) / IPv6ExtHdrFragment(nh=6, offset=off // 8, m=more, id=ident) / Raw(chunk))
for f in frags:
    send(f)
time.sleep(1.5)
got = sn.stop()
flags = [str(p[TCP].flags) for p in got if p.haslayer(TCP)]
data = any(len(bytes(p[TCP].payload)) > 0 for p in got if p.haslayer(TCP))
print('RST' if any('R' in f for f in flags) else 'OK' if data else 'NONE', flags, 'SPORT', sport, 'FRAGS', len(frags))
