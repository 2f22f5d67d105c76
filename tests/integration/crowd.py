"""A crowd of connections that do nothing, for tests/integration/test_crowd.sh.

Holds --silent TCP connections that never send a byte and --idle TLS
connections that finished their handshake (no client certificate) and send
nothing after it, and --stalled connections that send a ClientHello and then
nothing (each holds a handshake slot until the handshake deadline), all
from --source, to HOST:PORT. Whatever the server
closes is opened again, as an attacker would. The idle connections are
opened first. Writes its counts to --status every half second:
"idle=N silent=M reopened=K stalled=S"; a line "ready" once both are full for the
first time. Reads --control: a number there, when it changes, is the new
--silent. Runs until SIGTERM.
"""
import argparse
import os
import selectors
import signal
import socket
import ssl
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--source", default="127.0.0.2")
    ap.add_argument("--silent", type=int, default=2000)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--stalled", type=int, default=0)
    ap.add_argument("--status", required=True)
    ap.add_argument("--control", required=True)
    a = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sel = selectors.DefaultSelector()
    silent, idle, stalled = set(), set(), set()
    # One ClientHello, sent by every stalled connection: the server answers
    # its flight and waits for a client Certificate that never comes.
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    try:
        ctx.wrap_bio(inc, out, server_hostname="localhost").do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    reopened = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    def connect():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((a.source, 0))
        s.settimeout(30)
        s.connect((a.host, a.port))
        return s

    def open_idle():
        s = ctx.wrap_socket(connect(), server_hostname="localhost")
        s.setblocking(False)
        idle.add(s)
        sel.register(s, selectors.EVENT_READ, idle)

    def open_silent():
        s = connect()
        s.setblocking(False)
        silent.add(s)
        sel.register(s, selectors.EVENT_READ, silent)

    def open_stalled():
        s = connect()
        s.sendall(hello)
        s.setblocking(False)
        stalled.add(s)
        sel.register(s, selectors.EVENT_READ, stalled)

    def write_status(extra=""):
        tmp = a.status + ".tmp"
        with open(tmp, "w") as f:
            f.write("idle=%d silent=%d reopened=%d stalled=%d\n%s" %
                    (len(idle), len(silent), reopened, len(stalled), extra))
        os.replace(tmp, a.status)

    ready = ""
    last = 0.0
    want_silent = a.silent
    while not stop:
        try:
            with open(a.control) as f:
                want_silent = int(f.read().strip() or want_silent)
        except (OSError, ValueError):
            pass
        try:
            # A few at a time, so that closes are noticed while filling up.
            for _ in range(200):
                if len(idle) < a.idle:
                    open_idle()
                elif len(silent) < want_silent:
                    open_silent()
                elif len(stalled) < a.stalled:
                    open_stalled()
                else:
                    break
        except (OSError, ssl.SSLError) as e:
            print("crowd: connect failed: %s" % e, file=sys.stderr)
            time.sleep(0.1)
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except OSError:
                data = b""
            if data:
                continue
            sel.unregister(s)
            key.data.discard(s)
            s.close()
            reopened += 1
        if (not ready and len(idle) >= a.idle and len(silent) >= want_silent and
                len(stalled) >= a.stalled):
            ready = "ready\n"
        if time.monotonic() - last > 0.5:
            write_status(ready)
            last = time.monotonic()
    for s in list(idle) + list(silent) + list(stalled):
        s.close()


if __name__ == "__main__":
    main()
