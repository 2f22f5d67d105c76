#!/usr/bin/python3
"""Raw HTTP/1.1 over TLS against devid-verifier, for tests/integration.

Each command prints what came back as one line of key=value pairs (status,
reason, content type, Allow, Connection, and whether the verifier closed the
connection after the answer), so the test can check it:

  wire.py --url URL --ca PEM [--cert PEM --key PEM] [--proto DIR] COMMAND ...

  raw HEX|TEXT        send these bytes (TEXT with \\r \\n \\0 \\xHH escapes)
                      and read one answer
  pipeline TEXT TEXT  send both requests in one write, read two answers
  challenge [--intermediates PEM] [--agent-version S]
                      POST /v1/challenge
  other-connection [--same] [--between CMD] [--intermediates PEM]
                      challenge on one connection, then POST /v1/enroll with
                      its token and placeholder evidence on another one (on
                      the same one with --same); with --between, the shell
                      command CMD runs in between and must exit 0
  journal SOCKET OUT  act as journald: write each native-protocol entry
                      received on the datagram socket SOCKET to OUT as JSON
                      lines, until killed

Written for tests only: no TPM; the client key is a software key.
"""

import argparse
import array
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import urllib.parse

CONTENT_TYPE = "application/x-protobuf"
WAIT = 10  # seconds to wait for an answer or a close; a bound, not a timing


def unescape(text):
    """TEXT with \\r, \\n, \\t, \\0 and \\xHH escapes as bytes."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n == "x":
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}[n]
            i += 2
            continue
        out += c.encode()
        i += 1
    return bytes(out)


def load_pb(proto_dir, tmp):
    subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={tmp}",
                    "devid/v1/enroll.proto"], check=True)
    sys.path.insert(0, tmp)
    from devid.v1 import enroll_pb2  # noqa: E402 (generated just now)
    return enroll_pb2


def pem_der(path):
    text = open(path).read()
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)
    import base64
    return [base64.b64decode("".join(b.split())) for b in blocks]


class Conn:
    def __init__(self, args):
        u = urllib.parse.urlsplit(args.url)
        self.host = u.netloc
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(args.ca)
        if args.tls == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if args.cert:
            ctx.load_cert_chain(args.cert, args.key)
        raw = socket.create_connection((u.hostname, u.port), timeout=WAIT)
        self.s = ctx.wrap_socket(raw, server_hostname=u.hostname)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        try:
            chunk = self.s.recv(65536)
        except (ssl.SSLError, ConnectionError, socket.timeout, OSError):
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def answer(self):
        """One answer: (status, headers, body), or None when the connection
        ended first."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), []).append(v.strip())
        length = int(headers.get("content-length", ["0"])[0])
        while len(self.buf) < length:
            if not self._fill():
                break
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed(self):
        """Whether the verifier closes the connection (within WAIT s)."""
        self.s.settimeout(WAIT)
        try:
            chunk = self.s.recv(1)
        except socket.timeout:
            return False
        except (ssl.SSLError, ConnectionError, OSError):
            return True
        return chunk == b""

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def describe(pb, ans):
    if ans is None:
        return {"status": "none"}
    status, headers, body = ans
    d = {"status": status,
         "ctype": headers.get("content-type", ["none"])[0],
         "allow": ",".join(headers.get("allow", [])) or "none",
         "connection": ",".join(headers.get("connection", [])) or "none",
         "lengths": len(headers.get("content-length", []))}
    if status != 200 and d["ctype"] == CONTENT_TYPE:
        err = pb.Error.FromString(body)
        d["reason"] = pb.Reason.Name(err.reason)
        d["retry_after"] = headers.get("retry-after", ["none"])[0]
    elif status != 200:
        d["reason"] = "none"
    return d


def show(d):
    print(" ".join(f"{k}={v}" for k, v in d.items()), flush=True)


def request(conn, method, path, body):
    head = (f"{method} {path} HTTP/1.1\r\nHost: {conn.host}\r\n"
            f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n")
    conn.send(head.encode() + body)
    return conn.answer()


def challenge(pb, conn, args):
    req = pb.ChallengeRequest(protocol_version=1, agent_version=args.agent_version)
    if args.intermediates:
        req.intermediates.extend(pem_der(args.intermediates))
    return request(conn, "POST", "/v1/challenge", req.SerializeToString())


def cmd_raw(pb, args):
    conn = Conn(args)
    conn.send(unescape(args.data))
    d = describe(pb, conn.answer())
    d["closed"] = "yes" if conn.closed() else "no"
    conn.close()
    show(d)


def cmd_pipeline(pb, args):
    conn = Conn(args)
    conn.send(unescape(args.first) + unescape(args.second))
    for n in ("first", "second"):
        d = describe(pb, conn.answer())
        show({"answer": n, **d})
    conn.close()


def cmd_challenge(pb, args):
    conn = Conn(args)
    d = describe(pb, challenge(pb, conn, args))
    conn.close()
    show(d)


def cmd_other_connection(pb, args):
    c1 = Conn(args)
    ans = challenge(pb, c1, args)
    if ans is None or ans[0] != 200:
        show({"challenge": describe(pb, ans)["status"]})
        return
    resp = pb.ChallengeResponse.FromString(ans[2])
    c2 = c1 if args.same else Conn(args)
    if args.between and subprocess.run(args.between, shell=True).returncode != 0:
        show({"challenge": 200, "between": "failed"})
        return
    # Placeholder evidence: the connection check comes before any check of it.
    req = pb.EnrollRequest(token=resp.token, csr=b"\x30\x00", challenge_signature=b"\x00\x18",
                           evidence=pb.TpmEvidence(signer=pb.SIGNER_KIND_IDEVID))
    if args.intermediates:
        req.intermediates.extend(pem_der(args.intermediates))
    d = describe(pb, request(c2, "POST", "/v1/enroll", req.SerializeToString()))
    for c in {c1, c2}:
        c.close()
    show({"challenge": 200, **d})


def journal_entry(data):
    """The fields of one native-protocol datagram (systemd's
    JOURNAL_NATIVE_PROTOCOL): KEY=VALUE lines, or KEY, a newline, a 64-bit
    little-endian length and that many bytes of binary value."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        fields[k.decode()] = v.decode("utf-8", "backslashreplace")
    return fields


def cmd_journal(args):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(args.socket)
    out = open(args.out, "a")
    while True:
        data, anc, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(16))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fd = array.array("i", payload[:4])[0]
                data = os.pread(fd, 1 << 24, 0)
                os.close(fd)
        out.write(json.dumps(journal_entry(data)) + "\n")
        out.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--tls", choices=["1.3", "1.2"], default="1.3")
    ap.add_argument("--proto", default=os.path.join(os.path.dirname(__file__), "../../proto"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("raw")
    p.add_argument("data")
    p = sub.add_parser("pipeline")
    p.add_argument("first")
    p.add_argument("second")
    for name in ("challenge", "other-connection"):
        p = sub.add_parser(name)
        p.add_argument("--intermediates")
        p.add_argument("--agent-version", default="wire.py/1")
        if name == "other-connection":
            p.add_argument("--same", action="store_true")
            p.add_argument("--between")
    p = sub.add_parser("journal")
    p.add_argument("socket")
    p.add_argument("out")
    args = ap.parse_args()
    if args.cmd == "journal":
        return cmd_journal(args)
    with tempfile.TemporaryDirectory(prefix="devid-wire-") as tmp:
        pb = load_pb(args.proto, tmp)
        try:
            {"raw": cmd_raw, "pipeline": cmd_pipeline, "challenge": cmd_challenge,
             "other-connection": cmd_other_connection}[args.cmd](pb, args)
        except ssl.SSLError as e:
            show({"tls": "refused", "why": type(e).__name__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
