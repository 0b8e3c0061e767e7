#!/usr/bin/env python3
"""Raw DNS client for selftests/e2e/e2e_dns.sh: what dig and kdig cannot send.

  rawclient.py SERVER formerr          malformed query over UDP and TCP: prints
                                       the rcode and whether the id was echoed
  rawclient.py SERVER garbage N        N random datagrams and N/10 random TCP
                                       frames; prints how many replies came back
  rawclient.py SERVER pipeline NAME... all queries in one TCP write; prints
                                       "ok" if every one got its own answer
  rawclient.py SERVER idle SECONDS     open a TCP connection, send nothing; prints
                                       "closed" if the server closed it in time
  rawclient.py SERVER conform          the RFC 1035 / 6891 format errors dig cannot
                                       send (two OPTs, OPT owner not root, meta-type
                                       questions, a forward compression pointer):
                                       one line "CASE rcode=N" each (rcode=none: no
                                       reply in 3 s)
  rawclient.py SERVER flood N NAME     N queries for NAME over UDP as fast as they
                                       go; prints "replies K" (K came back in 2 s)
"""
import random
import socket
import struct
import sys
import time

PORT = 53


def query(qid, name, qtype=1):
    """A plain query (RD set) in wire form."""
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.strip(".").split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", qtype, 1)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def tcp_exchange(server, msgs, timeout=5):
    """Send every message in one write; return the replies by id."""
    s = socket.create_connection((server, PORT), timeout=timeout)
    s.sendall(b"".join(struct.pack("!H", len(m)) + m for m in msgs))
    replies = {}
    for _ in msgs:
        (n,) = struct.unpack("!H", recv_exact(s, 2))
        r = recv_exact(s, n)
        replies[struct.unpack("!H", r[:2])[0]] = r
    s.close()
    return replies


def formerr(server):
    # A header that promises one question, then a label running off the end.
    bad = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + b"\x05hel"
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(bad, (server, PORT))
    r, _ = u.recvfrom(65535)
    t = tcp_exchange(server, [bad]).get(0x4242, b"\0\0\0\0")
    print("udp rcode=%d id=%s tcp rcode=%d id=%s" % (
        r[3] & 0x0F, "echoed" if r[:2] == b"\x42\x42" else "wrong",
        t[3] & 0x0F, "echoed" if t[:2] == b"\x42\x42" else "wrong"))


OPT = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)  # root owner, no options


def conform_cases():
    """(name, query bytes) for each format error a server must answer FORMERR."""
    q = query(0x5151, "www.signed.hmtest")
    hdr = lambda ar: struct.pack("!HHHHHH", 0x5151, 0x0100, 1, 0, 0, ar)
    cases = [
        ("two-opt", hdr(2) + q[12:] + OPT + OPT),
        ("opt-owner-not-root", hdr(1) + q[12:] + b"\x01a\0" + OPT[1:]),
    ]
    for t, name in ((41, "qtype-opt"), (250, "qtype-tsig"), (249, "qtype-tkey"), (128, "qtype-128")):
        cases.append((name, hdr(1) + q[12:-4] + struct.pack("!HH", t, 1) + OPT))
    # The question name is a pointer to offset 18, where a name follows it.
    fwd = struct.pack("!HHHHHH", 0x5151, 0x0100, 1, 0, 0, 0) + b"\xc0\x12" + struct.pack("!HH", 1, 1)
    cases.append(("forward-pointer", fwd + b"\x03www\x06signed\x06hmtest\0"))
    cases.append(("good-query", hdr(1) + q[12:] + OPT))
    return cases


def conform(server):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(3)
    for name, msg in conform_cases():
        u.sendto(msg, (server, PORT))
        try:
            while True:
                r, _ = u.recvfrom(65535)
                if r[:2] == b"\x51\x51":
                    break
            print("%s rcode=%d" % (name, r[3] & 0x0F))
        except socket.timeout:
            print("%s rcode=none" % name)


def flood(server, n, name):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    for i in range(n):
        u.sendto(query(i, name), (server, PORT))
    u.settimeout(0.2)
    seen = set()
    end = time.time() + 2
    while time.time() < end:
        try:
            r, _ = u.recvfrom(65535)
            seen.add(r[:2])
        except socket.timeout:
            pass
    print("replies %d" % len(seen))


def garbage(server, n):
    rng = random.Random(5353)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(0.5)
    base = query(7, "www.signed.hmtest")
    for i in range(n):
        if i % 2:
            d = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80)))
        else:  # a valid query with bits flipped: gets past the first checks
            d = bytearray(base)
            for _ in range(rng.randrange(1, 4)):
                d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
            d = bytes(d)
        u.sendto(d, (server, PORT))
    replies = 0
    try:
        while True:
            u.recvfrom(65535)
            replies += 1
    except socket.timeout:
        pass
    for i in range(n // 10):
        try:
            s = socket.create_connection((server, PORT), timeout=2)
            d = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 100)))
            s.sendall(d)
            s.close()
        except OSError:
            pass
    print("replies %d" % replies)


def pipeline(server, names):
    msgs = [query(1000 + i, n) for i, n in enumerate(names)]
    replies = tcp_exchange(server, msgs, timeout=10)
    ok = all(1000 + i in replies and replies[1000 + i][2] & 0x80 for i in range(len(names)))
    print("ok" if ok and len(replies) == len(names) else "missing %s" % sorted(replies))


def idle(server, secs):
    s = socket.create_connection((server, PORT), timeout=secs)
    start = time.time()
    try:
        data = s.recv(1)
        print("closed" if data == b"" else "data")
    except socket.timeout:
        print("still open after %.1fs" % (time.time() - start))


def main():
    server, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if cmd == "formerr":
        formerr(server)
    elif cmd == "garbage":
        garbage(server, int(args[0]))
    elif cmd == "pipeline":
        pipeline(server, args)
    elif cmd == "idle":
        idle(server, float(args[0]))
    elif cmd == "conform":
        conform(server)
    elif cmd == "flood":
        flood(server, int(args[0]), args[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
