#!/usr/bin/env python3
"""Normalise dig output for comparing two resolvers (selftests/e2e/e2e_dns_conform.sh).

  dig ... +noall +comments +answer +authority | dignorm.py

prints what must match between HyperMesh and Unbound, one item a line:
  rcode NAME / flags (sorted, without aa) / ede CODE / an RR / ns RR
with owners lower-cased, TTLs removed and each section sorted.  The OPT
pseudo-section and the question are left out (the question is what was
asked; the OPT holds the server's own UDP size).
"""
import re
import sys


def main():
    rcode, flags, ede, an, ns = "none", [], None, [], []
    section = None
    for line in sys.stdin:
        line = line.rstrip("\n")
        m = re.search(r"status: ([A-Z]+)", line)
        if m:
            rcode = m.group(1)
        m = re.match(r";; flags: ([a-z ]*);", line)
        if m:
            flags = sorted(f for f in m.group(1).split() if f != "aa")
        m = re.match(r"; EDE: (\d+)", line)
        if m:
            ede = m.group(1)
        if line.startswith(";; ANSWER SECTION"):
            section = an
        elif line.startswith(";; AUTHORITY SECTION"):
            section = ns
        elif line.startswith(";"):
            if not line.strip() or line.startswith(";; ADDITIONAL") or line.startswith(";; OPT"):
                section = None
        elif line.strip() and section is not None:
            f = line.split()
            # owner TTL class type rdata...: drop the TTL
            section.append(" ".join([f[0].lower()] + [x.upper() for x in f[2:4]] + f[4:]))
        elif not line.strip():
            section = None
    print("rcode", rcode)
    print("flags", " ".join(flags))
    if ede is not None:
        print("ede", ede)
    for rr in sorted(an):
        print("an", rr)
    for rr in sorted(ns):
        print("ns", rr)


if __name__ == "__main__":
    main()
