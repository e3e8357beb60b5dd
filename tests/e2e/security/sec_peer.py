#!/usr/bin/env python3
"""tests/e2e/security helper peers (docs/security.md).

  sec_peer.py junk SRC HOST PORT N
      N datagrams the SIP parser refuses, from SRC (a malformed burst).
  sec_peer.py tls-hold HOST PORT GO_FILE
      One TLS connection: an OPTIONS answered 200, prints "ready <sha256
      fingerprint of the server certificate>", waits until GO_FILE exists,
      then a second OPTIONS on the same connection must be answered 200.
      Exit 0 when both were; 1 otherwise.
"""
import hashlib
import os
import socket
import ssl
import sys
import time

TIMEOUT = float(os.environ.get("SEC_PEER_TIMEOUT", "10"))


def junk(src, host, port, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    for i in range(int(n)):
        # a start line no parser accepts, then headers: refused (400 or dropped)
        s.sendto(b"GARBAGE%d \x01\x02 SIP/9.9\r\nVia: ???\r\n\r\n" % i, (host, int(port)))
        time.sleep(0.01)
    print("sent %s" % n)
    return 0


def options(tls, host, port, n):
    lport = tls.getsockname()[1]
    msg = ("OPTIONS sip:%s:%d;transport=tls SIP/2.0\r\n"
           "Via: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bK-sec-%d-%d;rport\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:probe@127.0.0.1>;tag=sec%d\r\n"
           "To: <sip:%s:%d>\r\n"
           "Call-ID: sec-tls-%d-%d@127.0.0.1\r\n"
           "CSeq: %d OPTIONS\r\n"
           "Content-Length: 0\r\n\r\n") % (host, port, lport, os.getpid(), n, n, host, port,
                                           os.getpid(), n, n)
    tls.sendall(msg.encode())
    buf = b""
    deadline = time.time() + TIMEOUT
    while b"\r\n\r\n" not in buf and time.time() < deadline:
        d = tls.recv(4096)
        if not d:
            break
        buf += d
    return buf.startswith(b"SIP/2.0 200")


def tls_hold(host, port, go):
    port = int(port)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((host, port), timeout=TIMEOUT)
    tls = ctx.wrap_socket(raw)
    fp = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
    if not options(tls, host, port, 1):
        print("first OPTIONS not answered 200")
        return 1
    print("ready %s" % fp, flush=True)
    deadline = time.time() + 6 * TIMEOUT
    while not os.path.exists(go):
        if time.time() > deadline:
            print("no go file")
            return 1
        time.sleep(0.05)
    if not options(tls, host, port, 2):
        print("second OPTIONS on the held connection not answered 200")
        return 1
    print("held connection still answered %s" % fp, flush=True)
    tls.close()
    return 0


def main(argv):
    if len(argv) == 6 and argv[1] == "junk":
        return junk(*argv[2:])
    if len(argv) == 5 and argv[1] == "tls-hold":
        return tls_hold(*argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
