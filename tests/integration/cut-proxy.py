#!/usr/bin/env python3
"""A TCP proxy for tests/integration/cloud-upload.sh that interrupts an
upload at chosen points, so the test needs no timing: it counts the bytes
clients send (all connections together) and
  - at STALL_AT: stops forwarding and creates DIR/stalled; when DIR/release
    appears it closes the stalled connections and forwards normally again;
  - at CUT_AT: closes every open connection once and creates DIR/cut.
Usage: cut-proxy.py TARGET_PORT STALL_AT CUT_AT DIR (0 disables a point).
Writes its listening port to DIR/port."""
import os
import selectors
import socket
import sys

target = int(sys.argv[1])
stall_at, cut_at = int(sys.argv[2]), int(sys.argv[3])
state = sys.argv[4]

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
listener.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(listener, selectors.EVENT_READ, None)
with open(os.path.join(state, "port.tmp"), "w") as f:
    f.write("%d\n" % listener.getsockname()[1])
os.rename(os.path.join(state, "port.tmp"), os.path.join(state, "port"))

pairs = {}  # socket -> (peer, is_client)
sent = 0
stalled = False
stall_done = stall_at <= 0
cut_done = cut_at <= 0


def mark(name):
    open(os.path.join(state, name), "w").close()


def close_all():
    for s in list(pairs):
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
    pairs.clear()


def close_pair(s):
    peer, _ = pairs.pop(s, (None, None))
    for x in (s, peer):
        if x is None:
            continue
        try:
            sel.unregister(x)
        except (KeyError, ValueError):
            pass
        pairs.pop(x, None)
        x.close()


held = []  # the stalled connections: not watched (no busy loop), closed on release


def hold_all():
    for x in list(pairs):
        try:
            sel.unregister(x)
        except (KeyError, ValueError):
            pass
        held.append(x)
    pairs.clear()


while True:
    if stalled and os.path.exists(os.path.join(state, "release")):
        for x in held:
            x.close()
        held.clear()
        stalled = False
    for key, _ in sel.select(timeout=0.1):
        s = key.fileobj
        if s is listener:
            try:
                c, _ = listener.accept()
            except OSError:
                continue
            try:
                u = socket.create_connection(("127.0.0.1", target))
            except OSError:
                c.close()
                continue
            pairs[c] = (u, True)
            pairs[u] = (c, False)
            sel.register(c, selectors.EVENT_READ, None)
            sel.register(u, selectors.EVENT_READ, None)
            continue
        if s not in pairs:
            continue
        peer, is_client = pairs[s]
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            close_pair(s)
            continue
        if is_client:
            sent += len(data)
            if not stall_done and sent >= stall_at:
                stall_done = True
                stalled = True
                hold_all()
                mark("stalled")
                break
            if not cut_done and sent >= cut_at:
                cut_done = True
                close_all()
                mark("cut")
                break
        try:
            peer.sendall(data)
        except OSError:
            close_pair(s)
