#!/usr/bin/env python3
"""dia_raw.py - a raw Diameter peer for tests/e2e/hss: sends what a
freeDiameter client cannot, requests that once stopped the HSS's Diameter
with a single message (an abort, or the node's shutdown).

  dia_raw.py HOST PORT ORIGIN REALM session-ids
    CER, then one UAR for each Session-Id freeDiameter 1.2.1 itself cannot
    take (V flag, a NUL byte, empty: src/dia/codec.h,
    dia_drop_bad_session_id), then a good UAR on the same connection.  Every
    request must get its answer (matched by hop-by-hop id): the bad ones
    DIAMETER_MISSING_AVP (5005) with a Session-Id in Failed-AVP (the HSS
    removed theirs), the good one its Session-Id back.
  dia_raw.py HOST PORT ORIGIN REALM proxy-info
    CER, then a UAR with two Proxy-Infos: an empty one sent with the V flag,
    on which freeDiameter 1.2.1 could not build the answer and leaked
    (dia_drop_bad_proxy_info), and a good one.  The answer must come, with
    the good Proxy-Info back, once and unchanged (RFC 6733 6.2).
  dia_raw.py HOST PORT ORIGIN REALM server-name
    CER, then a SAR whose Server-Name holds a NUL byte: it must be answered
    DIAMETER_INVALID_AVP_VALUE (5004) with Server-Name in Failed-AVP (it
    was a store failure, UNABLE_TO_COMPLY); then a good UAR still answered.
  dia_raw.py HOST PORT ORIGIN REALM vanish
    ROUNDS times, on a new connection each: CER, then a UAR that freeDiameter
    answers itself with an error (for another realm, for another host, a
    Route-Record naming the HSS: a loop), and the connection closed at once,
    before that answer (src/dia/fd_guard.h); then a good UAR on a new
    connection must still be answered.

Exit status: 0 all answered, 1 a check failed, 2 usage.  One line on stdout
per step.
"""
import os
import socket
import struct
import sys

TIMEOUT = float(os.environ.get("DIA_RAW_TIMEOUT", "5"))
CX = 16777216
TGPP = 10415


def avp(code, data, vendor=None, flags=0x40):
    if vendor is not None:
        flags |= 0x80
    hdr_len = 12 if vendor is not None else 8
    out = struct.pack("!II", code, (flags << 24) | (hdr_len + len(data)))
    if vendor is not None:
        out += struct.pack("!I", vendor)
    return out + data + b"\0" * ((4 - len(data) % 4) % 4)


def u32(v):
    return struct.pack("!I", v)


def message(cmd, app, hbh, avps):
    body = b"".join(avps)
    return (struct.pack("!I", (1 << 24) | (20 + len(body)))
            + struct.pack("!I", (0xC0 << 24) | cmd)  # R, P
            + struct.pack("!III", app, hbh, hbh) + body)


def receive(s):
    buf = b""
    while len(buf) < 4 or len(buf) < (struct.unpack("!I", buf[:4])[0] & 0xFFFFFF):
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed by the HSS")
        buf += chunk
    return buf


def avps_of(msg, pos=20, end=None):
    """(code, data) of each AVP of a message, or of a grouped AVP's data"""
    if end is None:
        end = struct.unpack("!I", msg[:4])[0] & 0xFFFFFF
    while pos + 8 <= end:
        code, fl = struct.unpack("!II", msg[pos:pos + 8])
        alen = fl & 0xFFFFFF
        hl = 12 if (fl >> 24) & 0x80 else 8
        if alen < hl:
            return
        yield code, msg[pos + hl:pos + alen]
        pos += (alen + 3) & ~3


def result(fields):
    if 268 in fields:
        return f"Result-Code {struct.unpack('!I', fields[268])[0]}"
    group = fields.get(297, b"")  # Experimental-Result
    exp = dict(avps_of(group, 0, len(group)))
    if 298 in exp:
        return f"Experimental-Result-Code {struct.unpack('!I', exp[298])[0]}"
    return "no result"


def uar(origin, realm, hbh, session_id, routing=None, extra=()):
    """routing: the AVPs that route it (default: Destination-Realm realm);
    extra: AVPs added at the end"""
    if routing is None:
        routing = [avp(283, realm.encode())]                # Destination-Realm
    return message(300, CX, hbh, [
        session_id,
        avp(260, avp(266, u32(TGPP)) + avp(258, u32(CX))),  # Vendor-Specific-Application-Id
        avp(277, u32(1)),                                    # Auth-Session-State
        avp(264, origin.encode()), avp(296, realm.encode()),
        *routing,
        avp(1, b"alice@ims.test"),                           # User-Name
        avp(601, b"sip:alice@ims.test", vendor=TGPP),        # Public-Identity
        avp(600, realm.encode(), vendor=TGPP),               # Visited-Network-Identifier
        *extra,
    ])


def connect(host, port, origin, realm):
    """A new connection past CER/CEA, or None (said why)."""
    s = socket.create_connection((host, port), timeout=TIMEOUT)
    s.sendall(message(257, 0, 1, [
        avp(264, origin.encode()), avp(296, realm.encode()),
        avp(257, b"\x00\x01" + socket.inet_aton("127.0.0.1")),  # Host-IP-Address
        avp(266, u32(TGPP)), avp(269, b"dia_raw.py", flags=0),
        avp(260, avp(266, u32(TGPP)) + avp(258, u32(CX))),
    ]))
    rc = dict(avps_of(receive(s))).get(268)
    if rc != u32(2001):
        print(f"CER refused: Result-Code {rc!r}")
        s.close()
        return None
    return s


ROUNDS = 20


def server_name(host, port, origin, realm):
    s = connect(host, port, origin, realm)
    if s is None:
        return 1
    print("CEA 2001")
    sar = message(301, CX, 2, [
        avp(263, f"{origin};3;{os.getpid()}".encode()),
        avp(260, avp(266, u32(TGPP)) + avp(258, u32(CX))),
        avp(277, u32(1)),
        avp(264, origin.encode()), avp(296, realm.encode()), avp(283, realm.encode()),
        avp(1, b"alice@ims.test"),
        avp(601, b"sip:alice@ims.test", vendor=TGPP),              # Public-Identity
        avp(602, b"sip:scscf\0.ims.test:6060", vendor=TGPP),      # Server-Name, a NUL
        avp(614, u32(1), vendor=TGPP),                             # REGISTRATION
        avp(624, u32(0), vendor=TGPP),                             # USER_DATA_NOT_AVAILABLE
    ])
    s.sendall(sar)
    try:
        ans = receive(s)
    except (socket.timeout, ConnectionResetError) as e:
        print(f"SAR with a NUL in Server-Name: no answer ({e})")
        return 1
    fields = dict(avps_of(ans))
    failed = fields.get(279, b"")
    print(f"SAR with a NUL in Server-Name: answered, {result(fields)}")
    if fields.get(268) != u32(5004) or 602 not in dict(avps_of(failed, 0, len(failed))):
        print("not refused with 5004 and a Failed-AVP naming Server-Name")
        return 1
    s.sendall(uar(origin, realm, 3, avp(263, f"{origin};4;{os.getpid()}".encode())))
    fields = dict(avps_of(receive(s)))
    print(f"a good UAR after it: {result(fields)}")
    if 268 not in fields and 297 not in fields:
        print("the good UAR got no result")
        return 1
    s.close()
    return 0


def proxy_info(host, port, origin, realm):
    s = connect(host, port, origin, realm)
    if s is None:
        return 1
    print("CEA 2001")
    good = avp(284, avp(280, b"relay.ims.test") + avp(33, b"state-1"))  # Proxy-Host, -State
    bad = avp(284, b"", vendor=0, flags=0)  # V flag, vendor 0, empty
    sid = avp(263, f"{origin};2;{os.getpid()}".encode())
    s.sendall(uar(origin, realm, 2, sid, extra=(bad, good)))
    try:
        ans = receive(s)
    except (socket.timeout, ConnectionResetError) as e:
        print(f"UAR with a bad Proxy-Info: no answer ({e})")
        return 1
    if struct.unpack("!I", ans[12:16])[0] != 2:
        print("an answer to another request")
        return 1
    fields = list(avps_of(ans))
    echoed = [data for code, data in fields if code == 284]
    print(f"UAR with a bad Proxy-Info: answered, {result(dict(fields))}, "
          f"{len(echoed)} Proxy-Info back")
    if echoed != [good[8:]]:
        print(f"want the good Proxy-Info back alone: {echoed!r}")
        return 1
    s.close()
    return 0


def vanish(host, port, origin, realm):
    sid = avp(263, f"{origin};2;{os.getpid()}".encode())
    dest = avp(283, realm.encode())
    kinds = [  # Destination-Realm 283, Destination-Host 293, Route-Record 282
        ("for another realm", [avp(283, b"other.realm")]),
        ("for another host", [dest, avp(293, b"other." + realm.encode())]),
        ("a loop", [dest, avp(282, b"hss." + realm.encode())]),
    ]
    # a new Origin-Host per connection: freeDiameter refuses a CER from a
    # peer whose last connection it is still closing
    n = 0
    for r in range(ROUNDS):
        for name, extra in kinds:
            n += 1
            peer = origin.replace(".", f"-{n}.", 1)
            try:
                s = connect(host, port, peer, realm)
            except OSError as e:  # ConnectionResetError and timeouts too
                s = None
                print(f"round {r + 1}, {name}: {e}")
            if s is None:
                print(f"round {r + 1}, {name}: the HSS no longer takes a peer")
                return 1
            s.sendall(uar(peer, realm, 2, sid, extra))
            s.close()  # before the HSS's answer
        print(f"round {r + 1}: sent each kind and closed at once")
    try:
        s = connect(host, port, origin, realm)
    except OSError as e:  # ConnectionResetError and timeouts too
        print(f"a good UAR afterwards: no connection ({e})")
        return 1
    if s is None:
        return 1
    s.sendall(uar(origin, realm, 3, sid))
    try:
        ans = receive(s)
    except (socket.timeout, ConnectionResetError) as e:
        print(f"a good UAR afterwards: no answer ({e})")
        return 1
    print(f"a good UAR afterwards: answered, {result(dict(avps_of(ans)))}")
    s.close()
    return 0


def main(argv):
    if len(argv) != 6 or argv[5] not in ("session-ids", "proxy-info", "server-name", "vanish"):
        print("usage: dia_raw.py HOST PORT ORIGIN REALM "
              "session-ids|proxy-info|server-name|vanish")
        return 2
    host, port, origin, realm = argv[1], int(argv[2]), argv[3], argv[4]
    if argv[5] == "vanish":
        return vanish(host, port, origin, realm)
    if argv[5] == "proxy-info":
        return proxy_info(host, port, origin, realm)
    if argv[5] == "server-name":
        return server_name(host, port, origin, realm)
    s = connect(host, port, origin, realm)
    if s is None:
        return 1
    print("CEA 2001")
    good = f"{origin};1;{os.getpid()}".encode()
    cases = [
        ("V flag", avp(263, good, vendor=0)),
        ("NUL byte", avp(263, good[:4] + b"\0" + good[4:])),
        ("empty", avp(263, b"")),
        ("good", avp(263, good)),
    ]
    for hbh, (name, sid) in enumerate(cases, start=2):
        s.sendall(uar(origin, realm, hbh, sid))
        try:
            ans = receive(s)
        except (socket.timeout, ConnectionResetError) as e:
            print(f"{name} Session-Id: no answer ({e})")
            return 1
        if struct.unpack("!I", ans[12:16])[0] != hbh:
            print(f"{name} Session-Id: an answer to another request")
            return 1
        fields = dict(avps_of(ans))
        print(f"{name} Session-Id: answered, {result(fields)}")
        if name == "good":
            if fields.get(263) != good:
                print(f"good Session-Id not carried back: {fields.get(263)!r}")
                return 1
            if fields.get(268) == u32(5005):
                print("good Session-Id: refused as missing")
                return 1
            continue
        # RFC 6733 §7.1.5: DIAMETER_MISSING_AVP, the missing AVP in Failed-AVP
        failed = fields.get(279, b"")
        if fields.get(268) != u32(5005) or 263 not in dict(avps_of(failed, 0, len(failed))):
            print(f"{name} Session-Id: not refused with 5005 and a Failed-AVP naming it")
            return 1
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
