#!/usr/bin/env python3
"""Replica-to-replica HyperMesh datagrams in a pcap (selftests/e2e/e2e_link.sh).

usage: pcap_link.py PCAP REPLICA_ADDR... -- MARKER

Prints one line of counts, key=value:
  hm            HyperMesh datagrams between two replica addresses
  with_payload  ... with a payload (payload_len > 0)
  sealed        ... of those, HM_FLAG_ENCRYPTED set
  compressed    ... of those, HM_FLAG_COMPRESSED set
  plain         ... of those, no HM_FLAG_ENCRYPTED (must be 0 with encryption)
  marker_replica  replica-to-replica datagrams containing MARKER
  marker_client   any other datagram containing MARKER (the capture works)
Link types: Ethernet (1), Linux cooked v1 (113) and v2 (276).
"""
import socket
import struct
import sys

FLAG_ENCRYPTED, FLAG_COMPRESSED = 0x0002, 0x0004
HDR_LEN = 136


def frames(path):
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            incl = struct.unpack(endian + "IIII", rec)[2]
            yield linktype, f.read(incl)


def ipv4_payload(linktype, frame):
    if linktype == 1:
        off, proto = 14, struct.unpack(">H", frame[12:14])[0]
    elif linktype == 113:
        off, proto = 16, struct.unpack(">H", frame[14:16])[0]
    elif linktype == 276:
        off, proto = 20, struct.unpack(">H", frame[0:2])[0]
    else:
        raise SystemExit("unsupported link type %d" % linktype)
    return frame[off:] if proto == 0x0800 else None


def main():
    args = sys.argv[1:]
    sep = args.index("--")
    path, replicas, marker = args[0], set(args[1:sep]), args[sep + 1].encode()
    c = dict(hm=0, with_payload=0, sealed=0, compressed=0, plain=0, marker_replica=0,
             marker_client=0)
    for linktype, frame in frames(path):
        ip = ipv4_payload(linktype, frame)
        if not ip or len(ip) < 20 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        udp = ip[ihl + 8:]
        between = src in replicas and dst in replicas
        if marker in udp:
            c["marker_replica" if between else "marker_client"] += 1
        if not between or len(udp) < HDR_LEN or udp[:4] != b"HMSH":
            continue
        c["hm"] += 1
        flags, plen = struct.unpack(">H", udp[6:8])[0], struct.unpack(">I", udp[12:16])[0]
        if plen == 0:
            continue
        c["with_payload"] += 1
        c["sealed"] += bool(flags & FLAG_ENCRYPTED)
        c["compressed"] += bool(flags & FLAG_COMPRESSED)
        c["plain"] += not flags & FLAG_ENCRYPTED
    print(" ".join("%s=%d" % kv for kv in c.items()))


if __name__ == "__main__":
    main()
