#!/usr/bin/env python3
"""acl_peer.py - raw TCP peers for tests/e2e/acl, each bound to a chosen
loopback source address (127.0.0.2 is a denied source without any alias:
all of 127/8 is local on Linux).

  acl_peer.py sip-tcp SRC HOST PORT            OPTIONS over a new TCP connection
  acl_peer.py sip-tcp-hold SRC HOST PORT FILE  OPTIONS, wait until FILE exists,
                                               OPTIONS again on the same connection
  acl_peer.py cer SRC HOST PORT ORIGIN REALM   a Diameter CER (RFC 6733 §5.3.1)
                                               advertising Cx

Exit status: 0 answered (SIP: any final response; Diameter: CEA with
Result-Code 2001), 3 refused (reset, closed, or a CEA with another
Result-Code), 4 no answer in time, 2 usage.  One line on stdout says what
happened.
"""
import os
import socket
import struct
import sys
import time

TIMEOUT = float(os.environ.get("ACL_PEER_TIMEOUT", "5"))


def connect(src, host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.bind((src, 0))
    s.connect((host, int(port)))
    return s


def options(s, src, host, port, n):
    lport = s.getsockname()[1]
    msg = (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP {src}:{lport};branch=z9hG4bK-acl-{os.getpid()}-{n}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:acl@{src}>;tag=acl{n}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: acl-{os.getpid()}-{n}@{src}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    s.sendall(msg.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionResetError("closed")
        buf += chunk
        first = buf.split(b"\r\n", 1)[0]
        # provisional responses are skipped: wait for the final one
        if first.startswith(b"SIP/2.0 1") and b"\r\n\r\n" in buf:
            buf = buf.split(b"\r\n\r\n", 1)[1]
    return buf.split(b"\r\n", 1)[0].decode(errors="replace")


def sip_tcp(src, host, port, hold_file=None):
    try:
        s = connect(src, host, port)
        line = options(s, src, host, port, 1)
        print(f"answered: {line}")
        if hold_file:
            deadline = time.time() + 60
            while not os.path.exists(hold_file):
                if time.time() > deadline:
                    print("hold: the go file never appeared")
                    return 4
                time.sleep(0.05)
            line = options(s, src, host, port, 2)
            print(f"answered on the held connection: {line}")
        s.close()
        return 0
    except socket.timeout:
        print("no answer (timeout)")
        return 4
    except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError) as e:
        print(f"refused: {e}")
        return 3


# ---- Diameter

def avp(code, data, vendor=None, mandatory=True):
    flags = (0x40 if mandatory else 0) | (0x80 if vendor else 0)
    hdr_len = 12 if vendor else 8
    length = hdr_len + len(data)
    out = struct.pack("!I", code) + struct.pack("!I", (flags << 24) | length)
    if vendor:
        out += struct.pack("!I", vendor)
    out += data
    return out + b"\0" * ((4 - len(data) % 4) % 4)


def u32(v):
    return struct.pack("!I", v)


def cer(src, host, port, origin, realm):
    ip = socket.inet_aton(src)
    body = (
        avp(264, origin.encode())                          # Origin-Host
        + avp(296, realm.encode())                         # Origin-Realm
        + avp(257, b"\x00\x01" + ip)                       # Host-IP-Address
        + avp(266, u32(10415))                             # Vendor-Id
        + avp(269, b"acl_peer.py", mandatory=False)        # Product-Name
        + avp(260, avp(266, u32(10415)) + avp(258, u32(16777216)))  # VSAI: Cx
    )
    length = 20 + len(body)
    hdr = struct.pack("!I", (1 << 24) | length) + struct.pack("!I", (0x80 << 24) | 257)
    hdr += struct.pack("!III", 0, 0x1234, 0x5678)
    try:
        s = connect(src, host, port)
        s.sendall(hdr + body)
        buf = b""
        while len(buf) < 20 or len(buf) < (struct.unpack("!I", buf[:4])[0] & 0xFFFFFF):
            chunk = s.recv(4096)
            if not chunk:
                print("refused: closed without a CEA")
                return 3
            buf += chunk
        s.close()
    except socket.timeout:
        print("no answer (timeout)")
        return 4
    except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError) as e:
        print(f"refused: {e}")
        return 3
    pos, end = 20, struct.unpack("!I", buf[:4])[0] & 0xFFFFFF
    while pos + 8 <= end:
        code, fl = struct.unpack("!II", buf[pos:pos + 8])
        alen = fl & 0xFFFFFF
        hl = 12 if (fl >> 24) & 0x80 else 8
        if code == 268:  # Result-Code
            rc = struct.unpack("!I", buf[pos + hl:pos + hl + 4])[0]
            print(f"CEA Result-Code {rc}")
            return 0 if rc == 2001 else 3
        pos += (alen + 3) & ~3
    print("CEA without Result-Code")
    return 3


def main(argv):
    if len(argv) >= 5 and argv[1] == "sip-tcp":
        return sip_tcp(argv[2], argv[3], argv[4])
    if len(argv) >= 6 and argv[1] == "sip-tcp-hold":
        return sip_tcp(argv[2], argv[3], argv[4], argv[5])
    if len(argv) >= 7 and argv[1] == "cer":
        return cer(argv[2], argv[3], argv[4], argv[5], argv[6])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
