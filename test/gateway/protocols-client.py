#!/usr/bin/python3
"""Real protocol clients (python3 stdlib only) for test/gateway/protocols.test.ts.

usage: protocols-client.py ACTION IP [ARGS...]
  smtp-send IP FILE RCPT          send FILE (a whole message, CRLF lines) with smtplib
  smtp-exploit IP MARKER          MAIL FROM:<;sleep 66;> (CVE-2020-7247 shape), then RCPT/DATA if accepted
  ftp-get IP NAME OUTFILE         anonymous passive RETR NAME into OUTFILE
  ftp-exploit IP USER             USER <USER> (the vsftpd 2.3.4 backdoor shape when it holds ':)'), then USER anonymous
  imap-fetch IP USER OUTFILE      LOGIN, SELECT INBOX, FETCH 1 BODY.PEEK[] into OUTFILE
  imap-exploit IP USER            LOGIN, then 'pp1 APPEND INBOX {4294967296}' (literal size overflow), then NOOP
Prints one JSON object: what the client saw ('reset': the connection was reset or closed under it).
"""
import ftplib
import imaplib
import json
import smtplib
import socket
import sys

TIMEOUT = 15
action, ip = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
out = {'action': action, 'reset': False}
RESETS = (ConnectionError, EOFError, smtplib.SMTPServerDisconnected, imaplib.IMAP4.abort, socket.timeout)


def decode(b):
    return b.decode('latin1') if isinstance(b, bytes) else str(b)


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
