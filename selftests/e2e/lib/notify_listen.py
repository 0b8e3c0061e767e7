#!/usr/bin/env python3
"""The service manager's side of sd_notify(3), for the tests: bind a unix
datagram socket at PATH (what systemd passes as NOTIFY_SOCKET) and append
every message to OUT as one line, its fields joined by '|', prefixed with
the monotonic time in ms, so a test can tell what arrived and in which
order.  Runs until killed.

    notify_listen.py PATH OUT
"""
import os
import socket
import sys
import time


def main():
    path, out = sys.argv[1], sys.argv[2]
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    with open(out, "a", buffering=1) as f:
        f.write("listening\n")
        while True:
            data = sock.recv(4096)
            fields = data.decode("utf-8", "replace").strip("\n").split("\n")
            f.write("%d %s\n" % (time.monotonic() * 1000, "|".join(fields)))


if __name__ == "__main__":
    main()
