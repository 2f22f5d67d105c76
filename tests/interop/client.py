#!/usr/bin/python3
"""An independent devid enrollment client, for interoperability tests.

Written from docs/protocol.md and proto/devid/v1/enroll.proto only, without
reading devid's own C code, to show that the specification is enough to build
a client. It uses off-the-shelf tools and nothing of devid:

  - protoc --python_out, run here into a temporary directory, and
    python3-protobuf for the messages;
  - openssl s_client with the tpm2 provider for mutual TLS with the
    TPM-resident IDevID key, and its -keymatexport for the RFC 9266 exporter;
  - tpm2-tools 5.4 for the TPM: tpm2_create, tpm2_load, tpm2_evictcontrol,
    tpm2_sign, tpm2_readpublic, tpm2_flushcontext; and tpm2_send for
    TPM2_Certify, because tpm2_certify 5.4 has no way to pass qualifyingData;
  - the openssl command for the CSR, signed by the new key inside the TPM.

HTTP/1.1 is framed by hand: request line, Host, Content-Type, Content-Length
and body out; status line, headers and a Content-Length body back.

  client.py --url URL --ca-bundle PEM --idevid-cert PEM --chain PEM \
            --proto DIR --tcti TCTI --work DIR [--tls 1.3|1.2] [--fault F]

--fault makes a request the verifier must refuse:
  wrong-connection  challenge on connection 1; T with connection 2's exporter,
                    sent on connection 2 with connection 1's token
  no-fixedtpm       the new key is created with fixedTPM and fixedParent clear
  csr-mismatch      the CSR is made by a software key, not the certified key
  no-ems            TLS 1.2 without the Extended Master Secret (an OpenSSL
                    configuration with Options = -ExtendedMasterSecret)
  forged-attest     no key in the TPM at all: a software P-256 key, a
                    TPMT_PUBLIC for it that claims fixedTPM, and a
                    TPMS_ATTEST made here in software, its digest signed by
                    the IDevID with TPM2_Sign (an unrestricted key signs any
                    digest): the attack assurance level none cannot tell
                    apart, and the verifier can only refuse under a minimum
                    of iak
  ek-other-tpm      with --ek-cert and --ek-public copied from another
                    device: this TPM's EK at --ek-handle cannot activate the
                    credential, so 32 zero bytes go as activated_secret
  ek-second-tpm-key the credential is activated here for a key of this TPM,
                    then the key enrolled is one created in --second-tcti's
                    TPM, with a TPMS_ATTEST for it made in software and
                    signed by the IDevID (as forged-attest)
  quote-idevid      the PCR quote the verifier asks for (protocol.md 6.2) is
                    made by TPM2_Quote with the IDevID, an unrestricted key,
                    instead of the IAK
  quote-wrong-nonce the quote's qualifyingData is SHA-256(T), not T
  ak-secret-wrong   with --ak-handle: quote.ak_activated_secret is the AK
                    credential TPM2_ActivateCredential returned, one bit
                    flipped
--iak-handle H with --iak-cert PEM certifies the new key with the IAK at H
(signer SIGNER_KIND_IAK) instead of the IDevID. When the ChallengeResponse
names quote_pcrs, the client reads them (tpm2_pcrread) and quotes them with
the IAK and qualifyingData T (tpm2_quote), as protocol.md 6.2 says.
--ek-handle H runs the EK credential activation of protocol.md 6.1 with the
EK at persistent handle H, its certificate read from the EK certificate NV
index of its kind (0x81010001: 0x01C00002, 0x81010002: 0x01C0000A,
0x81010016: 0x01C00016) unless --ek-cert FILE (DER) and --ek-public FILE (a
TPMT_PUBLIC) give them. --ek-secret FILE sends FILE as activated_secret
instead of what TPM2_ActivateCredential returns (an earlier answer, replayed).
The recovered secret is kept in WORK/activated_secret.bin.
--ak-handle H (with --ek-handle, without --iak-handle) creates a restricted
signing key persistent at H before the challenge, sends it as
ChallengeRequest.ak_public, activates the verifier's AK credential with the
EK and quotes with the AK (protocol.md 6.2); the AK is evicted afterwards.
The recovered AK secret is kept in WORK/ak_activated_secret.bin;
--ak-secret FILE sends FILE instead (an answer of an earlier challenge), and
--fault ak-secret-wrong flips a bit of it.
--resend FILE sends FILE (an enroll_request.bin this client wrote) as the
body of POST /v1/enroll on a new connection, byte for byte, and nothing
else: the retry after a lost answer.
--no-handshake-chain sends the intermediates only in the messages, not in the
TLS handshake.

Writes WORK/result.json (what happened), WORK/cert.pem and WORK/cert.der on
success, WORK/ldevid-pub.pem (the new key as the TPM reports it), and every
intermediate artefact (csr.der, T.bin, ...) for a human to look at.
Exit status: 0 enrolled, 1 refused by the verifier with an Error, 2 any other
failure (a tool failed, the verifier broke the protocol, a timeout).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

EXPORTER_LABEL = "EXPORTER-Channel-Binding"  # protocol.md 2.1
TRANSCRIPT_PREFIX = b"devid/v1 enroll"        # protocol.md 5, 15 bytes
CONTENT_TYPE = "application/x-protobuf"       # protocol.md 3
TIMEOUT = 60                                  # seconds, for any one step

# Section 6: the attributes the new key must have (tpm2-tools spelling).
# userwithauth is "either" in the spec; it is needed here to use the key with
# an empty password.
LDEVID_ATTRS = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign"
# The boot-state gate's AK: a restricted signing key made in the TPM.
AK_ATTRS = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign"
# For --fault no-fixedtpm: the same key, but it may be duplicated.
LDEVID_ATTRS_NO_FIXEDTPM = "sensitivedataorigin|userwithauth|sign"

# TPM 2.0 constants (TPM 2.0 Part 2), for the one command built by hand.
TPM_ST_SESSIONS = 0x8002
TPM_CC_CERTIFY = 0x00000148
TPM_RS_PW = 0x40000009
TPM_ALG_RSA = 0x0001
TPM_ALG_ECC = 0x0023
TPM_ALG_SHA256 = 0x000B
TPM_ALG_RSASSA = 0x0014
TPM_ALG_ECDSA = 0x0018
TPM_GENERATED_VALUE = 0xFF544347
TPM_ST_ATTEST_CERTIFY = 0x8017
TPM_ST_ATTEST_QUOTE = 0x8018

# protocol.md 6.1: the EK certificate NV index of each standard EK handle.
EK_NV_INDEX = {0x81010001: 0x01C00002, 0x81010002: 0x01C0000A, 0x81010016: 0x01C00016}
CRED_FILE_MAGIC = 0xBADCC0DE  # tpm2_makecredential's file header



class ClientError(Exception):
    """Anything other than a refusal by the verifier."""


def log(msg):
    print(f"interop-client: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# running tools


def run(cmd, env, stdin=None, what=None):
    """Run a tool, bounded; fail with its stderr unless it exits 0."""
    try:
        p = subprocess.run(cmd, env=env, input=stdin, capture_output=True,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ClientError(f"{what or cmd[0]} timed out after {TIMEOUT} s")
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip()
        raise ClientError(f"{what or cmd[0]} failed (exit {p.returncode}): {err}")
    return p.stdout


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def pem_certs_to_der(path):
    """The DER of every certificate in a PEM file, in order."""
    text = read_file(path).decode()
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----",
                        text, re.S)
    return [base64.b64decode("".join(b.split())) for b in blocks]


def der_to_pem(der, label="CERTIFICATE"):
    b64 = base64.b64encode(der).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return (f"-----BEGIN {label}-----\n" + "\n".join(lines) +
            f"\n-----END {label}-----\n").encode()


# --------------------------------------------------------------------------
# protobuf


def load_messages(proto_dir, tmp):
    """Generate the Python bindings from proto/ with protoc and import them."""
    out = os.path.join(tmp, "pb")
    os.makedirs(out)
    run(["protoc", f"--proto_path={proto_dir}", f"--python_out={out}",
         "devid/v1/enroll.proto"], os.environ, what="protoc")
    sys.path.insert(0, out)
    from devid.v1 import enroll_pb2  # noqa: E402 (generated just now)
    return enroll_pb2


def reason_name(pb, value):
    try:
        return pb.Reason.Name(value)
    except ValueError:
        return f"REASON_{value}"


# --------------------------------------------------------------------------
# TLS: one openssl s_client process is one TLS connection


class TlsConnection:
    """A mutual TLS connection made by openssl s_client, driven over pipes.

    s_client prints its handshake summary (with the exporter) and, in TLS 1.3,
    each NewSessionTicket on the same stdout as the application data it
    receives. It runs under `stdbuf -o0` so that its own text is written at
    once, in order with the data, instead of sitting in a stdio buffer that
    may be flushed in the middle of an HTTP answer; answers are then found by
    their status line.
    """

    def __init__(self, name, url, args, env, work):
        self.name = name
        u = urllib.parse.urlsplit(url)
        if u.scheme != "https" or not u.hostname or not u.port:
            raise ClientError(f"URL {url} is not https://HOST:PORT")
        self.host_header = u.netloc
        host = u.hostname
        is_ip = re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", host) is not None
        connect = f"[{host}]:{u.port}" if ":" in host else f"{host}:{u.port}"
        cmd = ["stdbuf", "-o0", "openssl", "s_client", "-connect", connect,
               # the tpm2 provider after the default one; only signatures
               # are taken from it (see the report: ?provider=tpm2 breaks
               # TLS 1.2, no property query breaks both)
               "-provider", "default", "-provider", "tpm2",
               "-propquery", "?tpm2.signature",
               "-cert", args.idevid_cert, "-key", f"handle:{args.idevid_handle}",
               # protocol.md 2: verify the server against the CA bundle and
               # the URL's host
               "-CAfile", args.ca_bundle, "-verify_return_error",
               "-keymatexport", EXPORTER_LABEL, "-keymatexportlen", "32",
               # no command letters (Q, R, k...) in what we write
               "-nocommands",
               "-tls1_3" if args.tls == "1.3" else "-tls1_2"]
        if not args.no_handshake_chain:
            cmd += ["-cert_chain", args.chain]
        if args.fault == "no-ems":
            # s_client 3.0 has no -no_ems; the SSL_CONF option does it.
            conf = os.path.join(work, "no-ems.cnf")
            write_file(conf, b"openssl_conf = init\n[init]\nssl_conf = ssl\n"
                             b"[ssl]\nsystem_default = sys\n"
                             b"[sys]\nOptions = -ExtendedMasterSecret\n")
            env = dict(env, OPENSSL_CONF=conf)
        if is_ip:
            cmd += ["-verify_ip", host, "-noservername"]
        else:
            cmd += ["-verify_hostname", host, "-servername", host]
        self.err_path = os.path.join(work, f"s_client-{name}.err")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err)
        self.buf = bytearray()
        self.pos = 0          # everything before this has been consumed
        self.eof = False
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.version = None
        self.ems = None
        self.exporter = None
        self._handshake()

    def _read(self):
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            with self.cond:
                if not chunk:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.buf += chunk
                self.cond.notify_all()

    def _wait(self, found, what):
        """Wait until found() returns something, bounded; return it."""
        deadline = time.monotonic() + TIMEOUT
        with self.cond:
            while True:
                r = found()
                if r is not None:
                    return r
                if self.eof:
                    raise ClientError(f"connection {self.name}: s_client ended "
                                      f"before {what}; {self.stderr_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ClientError(f"connection {self.name}: no {what} "
                                      f"within {TIMEOUT} s")
                self.cond.wait(left)

    def stderr_tail(self):
        self.err.flush()
        text = read_file(self.err_path).decode(errors="replace").strip()
        return "s_client stderr: " + (text[-800:] if text else "(empty)")

    def _handshake(self):
        pat = re.compile(rb"Keying material: ([0-9A-Fa-f]+)\r?\n")
        m = self._wait(lambda: pat.search(self.buf, self.pos), "handshake")
        summary = bytes(self.buf[self.pos:m.start()])
        self.pos = m.end()
        self.exporter = bytes.fromhex(m.group(1).decode())
        if len(self.exporter) != 32:
            raise ClientError(f"exporter of {len(self.exporter)} bytes, want 32")
        v = re.search(rb"New, (TLSv1(?:\.[0-9])?|SSLv3), Cipher is", summary)
        if not v:
            raise ClientError(f"connection {self.name}: no protocol in the "
                              f"s_client summary")
        self.version = v.group(1).decode()
        if self.version != "TLSv1.3":
            e = re.search(rb"Extended master secret: (yes|no)", summary)
            self.ems = e.group(1) == b"yes" if e else None
        log(f"connection {self.name}: {self.version}"
            f"{'' if self.ems is None else ', EMS ' + ('yes' if self.ems else 'no')}"
            f", exporter {self.exporter.hex()}")

    def request(self, method, path, body):
        """Send one HTTP/1.1 request; return (status, headers, body)."""
        head = (f"{method} {path} HTTP/1.1\r\n"
                f"Host: {self.host_header}\r\n"
                f"Content-Type: {CONTENT_TYPE}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "\r\n").encode()
        try:
            self.proc.stdin.write(head + body)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise ClientError(f"connection {self.name}: s_client is gone; "
                              f"{self.stderr_tail()}")
        return self._response()

    def _response(self):
        status_re = re.compile(rb"HTTP/1\.[01] ([0-9]{3})[^\r\n]*\r\n")

        def headers_done():
            m = status_re.search(self.buf, self.pos)
            if not m:
                return None
            end = self.buf.find(b"\r\n\r\n", m.start())
            return (m, end) if end >= 0 else None

        m, end = self._wait(headers_done, "HTTP answer")
        skipped = bytes(self.buf[self.pos:m.start()])
        if skipped.replace(b"---", b"").strip() and b"Session Ticket" not in skipped \
                and b"read R BLOCK" not in skipped:
            log(f"connection {self.name}: skipped s_client text {skipped[:200]!r}")
        status = int(m.group(1))
        headers = {}
        for line in bytes(self.buf[m.end():end]).split(b"\r\n"):
            if not line:
                continue
            k, sep, v = line.partition(b":")
            if not sep:
                raise ClientError(f"malformed answer header {line!r}")
            key = k.strip().decode().lower()
            if key in headers:
                raise ClientError(f"answer has two {key} fields")
            headers[key] = v.strip().decode()
        if "transfer-encoding" in headers or "content-length" not in headers:
            raise ClientError(f"answer {status} is not framed by Content-Length: "
                              f"{headers}")
        length = int(headers["content-length"])
        start = end + 4
        self._wait(lambda: True if len(self.buf) >= start + length else None,
                   "answer body")
        body = bytes(self.buf[start:start + length])
        self.pos = start + length
        return status, headers, body

    def close(self):
        """Close stdin: s_client sends close_notify and exits."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)
        self.err.close()


# --------------------------------------------------------------------------
# TPM, with tpm2-tools


class Tpm:
    def __init__(self, env, work, srk_handle):
        self.env = env
        self.work = work
        self.srk = srk_handle

    def path(self, name):
        return os.path.join(self.work, name)

    def tool(self, *cmd, stdin=None):
        return run(list(cmd), self.env, stdin=stdin, what=cmd[0])

    def flush_transients(self):
        self.tool("tpm2_flushcontext", "-t")

    def persistent_handles(self):
        out = self.tool("tpm2_getcap", "handles-persistent").decode()
        return {int(h, 16) for h in re.findall(r"^- (0x[0-9a-fA-F]+)$", out, re.M)}

    def public(self, handle):
        """The TPMT_PUBLIC at a handle: tpm2_readpublic -f tss writes a
        TPM2B_PUBLIC, whose 2-byte size is dropped (protocol.md 4)."""
        out = self.path(f"pub-{handle}.tss")
        self.tool("tpm2_readpublic", "-c", handle, "-f", "tss", "-o", out)
        return strip_size(read_file(out), "TPM2B_PUBLIC from tpm2_readpublic")

    def ensure_srk(self):
        """A storage key of the owner hierarchy at the SRK handle, created
        (tpm2-tools' default ECC P-256 storage template) if absent."""
        if int(self.srk, 16) in self.persistent_handles():
            return
        ctx = self.path("srk.ctx")
        self.tool("tpm2_createprimary", "-C", "o", "-g", "sha256",
                  "-G", "ecc256:aes128cfb", "-c", ctx)
        self.tool("tpm2_evictcontrol", "-C", "o", "-c", ctx, self.srk)
        self.flush_transients()
        log(f"created the SRK at {self.srk}")

    def create_key(self, attrs, handle, name="ldevid", alg="ecc256:ecdsa-sha256"):
        """Create a P-256 signing key under the SRK, persist it at handle
        (tpm2_send needs it there, see certify()), return its TPMT_PUBLIC."""
        pub, priv, ctx = self.path(f"{name}.pub"), self.path(f"{name}.priv"), self.path(f"{name}.ctx")
        self.tool("tpm2_create", "-C", self.srk, "-g", "sha256",
                  "-G", alg, "-a", attrs, "-u", pub, "-r", priv)
        self.tool("tpm2_load", "-C", self.srk, "-u", pub, "-r", priv, "-c", ctx)
        self.tool("tpm2_evictcontrol", "-C", "o", "-c", ctx, handle)
        self.flush_transients()
        os.unlink(ctx)
        # tpm2_create -u writes a TPM2B_PUBLIC too.
        return strip_size(read_file(pub), "TPM2B_PUBLIC from tpm2_create -u")

    def evict(self, handle):
        self.tool("tpm2_evictcontrol", "-C", "o", "-c", handle)

    def ek_certificate(self, handle):
        """The EK certificate's bytes from its NV index (protocol.md 6.1),
        without a TCG header or padding."""
        index = EK_NV_INDEX.get(int(handle, 16))
        if index is None:
            raise ClientError(f"no EK certificate index known for EK handle {handle}")
        out = self.path("ek.nv")
        self.tool("tpm2_nvread", f"0x{index:08x}", "-o", out)
        return cert_from_nv(read_file(out))

    def activate(self, key_handle, ek_handle, ek_public, blob, secret):
        """TPM2_ActivateCredential(activateHandle = key, keyHandle = EK):
        the EK's authorization is a PolicySecret(TPM_RH_ENDORSEMENT) session
        unless it has userWithAuth (protocol.md 6.1). Returns certInfo, or
        None when the TPM refuses."""
        cred = self.path("cred.blob")
        out = self.path("activated.bin")
        write_file(cred, struct.pack(">II", CRED_FILE_MAGIC, 1) + blob + secret)
        (attrs,) = struct.unpack(">I", ek_public[4:8])
        cmd = ["tpm2_activatecredential", "-c", key_handle, "-C", ek_handle, "-i", cred,
               "-o", out]
        session = None
        if not attrs & 0x40:  # userWithAuth
            session = self.path("ek-session.ctx")
            halg = "sha384" if struct.unpack(">H", ek_public[2:4])[0] == 0x000C else "sha256"
            self.tool("tpm2_startauthsession", "--policy-session", "-g", halg, "-S", session)
            self.tool("tpm2_policysecret", "-S", session, "-c", "e")
            cmd += ["-P", f"session:{session}"]
        try:
            self.tool(*cmd)
        except ClientError as e:
            log(f"TPM2_ActivateCredential refused: {e}")
            return None
        finally:
            if session is not None:
                try:
                    self.tool("tpm2_flushcontext", session)
                except ClientError:
                    pass
        return read_file(out)

    def sign_digest(self, handle, key_type, digest, name="challenge"):
        """TPM2_Sign(handle, digest, SHA-256 scheme, NULL ticket): a
        marshalled TPMT_SIGNATURE (tpm2_sign's default tss format)."""
        d = self.path("T.bin" if name == "challenge" else f"{name}.digest")
        sig = self.path(f"{name}_signature.tss")
        write_file(d, digest)
        scheme = "ecdsa" if key_type == TPM_ALG_ECC else "rsassa"
        self.tool("tpm2_sign", "-c", handle, "-g", "sha256", "-s", scheme,
                  "-d", "-o", sig, d)
        return read_file(sig)

    def certify(self, object_handle, sign_handle, signer_type, qualifying):
        """TPM2_Certify(object, signer, qualifyingData, SHA-256 scheme).

        tpm2_certify (tpm2-tools 5.4) always sends an empty qualifyingData,
        so the command is marshalled here (TPM 2.0 Part 3, 18.2) and sent
        with tpm2_send. Both handles are persistent: tpm2_send is one
        command on one connection, and through tpm2-abrmd a transient object
        does not outlive the tool that loaded it. Both take the empty
        password (TPM_RS_PW); objectHandle needs the ADMIN role, which the
        password gives since the new key has adminWithPolicy clear.
        """
        pw = struct.pack(">IHBH", TPM_RS_PW, 0, 0, 0)
        auth = pw + pw
        if signer_type == TPM_ALG_ECC:
            scheme = struct.pack(">HH", TPM_ALG_ECDSA, TPM_ALG_SHA256)
        else:
            scheme = struct.pack(">HH", TPM_ALG_RSASSA, TPM_ALG_SHA256)
        params = struct.pack(">H", len(qualifying)) + qualifying + scheme
        body = (struct.pack(">II", int(object_handle, 16), int(sign_handle, 16)) +
                struct.pack(">I", len(auth)) + auth + params)
        cmd = struct.pack(">HII", TPM_ST_SESSIONS, 10 + len(body), TPM_CC_CERTIFY) + body
        write_file(self.path("certify.cmd"), cmd)
        rsp = self.tool("tpm2_send", stdin=cmd)
        write_file(self.path("certify.rsp"), rsp)
        if len(rsp) < 10:
            raise ClientError("TPM2_Certify: short response")
        tag, size, rc = struct.unpack(">HII", rsp[:10])
        if rc != 0:
            raise ClientError(f"TPM2_Certify failed: TPM response code 0x{rc:08x}")
        if size != len(rsp) or tag != TPM_ST_SESSIONS:
            raise ClientError("TPM2_Certify: malformed response")
        (param_size,) = struct.unpack(">I", rsp[10:14])
        params = rsp[14:14 + param_size]
        (attest_size,) = struct.unpack(">H", params[:2])
        certify_info = params[2:2 + attest_size]      # TPMS_ATTEST, no size
        signature = params[2 + attest_size:]          # TPMT_SIGNATURE
        if len(certify_info) != attest_size or len(signature) < 4:
            raise ClientError("TPM2_Certify: malformed response parameters")
        magic, st = struct.unpack(">IH", certify_info[:6])
        if magic != TPM_GENERATED_VALUE or st != TPM_ST_ATTEST_CERTIFY:
            raise ClientError("TPM2_Certify: not a TPM-generated certify structure")
        return certify_info, signature


    def pcr_read(self, pcrs):
        """The SHA-256 values of |pcrs|, ascending: tpm2_pcrread -o writes
        them one after another, 32 bytes each."""
        out = self.path("pcrs.bin")
        sel = "sha256:" + ",".join(str(i) for i in pcrs)
        self.tool("tpm2_pcrread", sel, "-o", out)
        data = read_file(out)
        if len(data) != 32 * len(pcrs):
            raise ClientError(f"tpm2_pcrread wrote {len(data)} bytes for {len(pcrs)} PCRs")
        return [data[32 * k:32 * (k + 1)] for k in range(len(pcrs))]

    def quote(self, handle, pcrs, qualifying):
        """TPM2_Quote(handle, qualifyingData, SHA-256 PCRs |pcrs|): the
        TPMS_ATTEST (tpm2_quote -m) and the TPMT_SIGNATURE (-s, tss)."""
        msg, sig = self.path("quote.msg"), self.path("quote.sig")
        sel = "sha256:" + ",".join(str(i) for i in pcrs)
        self.tool("tpm2_quote", "-c", handle, "-l", sel, "-q", qualifying.hex(),
                  "-g", "sha256", "-m", msg, "-s", sig)
        info = read_file(msg)
        magic, st = struct.unpack(">IH", info[:6])
        if magic != TPM_GENERATED_VALUE or st != TPM_ST_ATTEST_QUOTE:
            raise ClientError("tpm2_quote: not a TPM-generated quote structure")
        return info, read_file(sig)


def forged_key(work, env):
    """A software P-256 key (its PEM path) and a TPMT_PUBLIC for it as the
    TPM would write one for a key made with LDEVID_ATTRS: the verifier cannot
    tell it from a TPM key's public area."""
    key = os.path.join(work, "forged.key")
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", key], env, what="openssl genpkey")
    spki = run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"], env,
               what="openssl pkey")
    point = spki[-65:]
    if point[0] != 4:
        raise ClientError("software key: no uncompressed point at the end of its SPKI")
    x, y = point[1:33], point[33:65]
    fixedtpm, fixedparent, sdo, uwa, sign = 0x2, 0x10, 0x20, 0x40, 0x40000
    attrs = fixedtpm | fixedparent | sdo | uwa | sign
    TPM_ALG_NULL, TPM_ECC_NIST_P256 = 0x0010, 0x0003
    public = (struct.pack(">HHI", TPM_ALG_ECC, TPM_ALG_SHA256, attrs) +
              struct.pack(">H", 0) +                                  # authPolicy
              struct.pack(">HHHHH", TPM_ALG_NULL, TPM_ALG_ECDSA, TPM_ALG_SHA256,
                          TPM_ECC_NIST_P256, TPM_ALG_NULL) +
              struct.pack(">H", 32) + x + struct.pack(">H", 32) + y)
    return key, public


def forged_attest(T, name, signer_name):
    """A TPMS_ATTEST of type CERTIFY made in software: magic, type,
    qualifiedSigner, extraData = T, clockInfo, firmwareVersion, then the
    certified Name twice (name, qualifiedName)."""
    def b2(data):
        return struct.pack(">H", len(data)) + data
    clock = struct.pack(">QIIB", 123456789, 1, 0, 1)
    return (struct.pack(">IH", TPM_GENERATED_VALUE, TPM_ST_ATTEST_CERTIFY) + b2(signer_name) +
            b2(T) + clock + struct.pack(">Q", 0x2020_0320_0016_0000) + b2(name) + b2(name))


def resend(args):
    """POST --resend's bytes to /v1/enroll on a new connection."""
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, TPM2TOOLS_TCTI=args.tcti, TPM2OPENSSL_TCTI=args.tcti)
    result = {"resend": args.resend}
    conn = None
    with tempfile.TemporaryDirectory(prefix="devid-interop-") as tmp:
        try:
            pb = load_messages(args.proto, tmp)
            body = read_file(args.resend)
            conn = TlsConnection("resend", args.url, args, env, work)
            ex = Exchange(pb, "enroll", *conn.request("POST", "/v1/enroll", body))
            result["enroll"] = ex.summary(pb)
            if ex.error is not None:
                log(f"enroll refused: {result['enroll']}")
                return 1
            resp = pb.EnrollResponse.FromString(ex.body)
            write_file(os.path.join(work, "cert.der"), resp.certificate)
            write_file(os.path.join(work, "cert.pem"), der_to_pem(resp.certificate))
            result["serial"] = resp.serial
            return 0
        except ClientError as e:
            result["error"] = str(e)
            log(f"error: {e}")
            return 2
        finally:
            if conn is not None:
                conn.close()
            with open(os.path.join(work, "result.json"), "w") as f:
                json.dump(result, f, indent=1, sort_keys=True)


def strip_size(data, what):
    """A TPM2B's contents: check the 2-byte size against the rest, drop it."""
    if len(data) < 2 or struct.unpack(">H", data[:2])[0] != len(data) - 2:
        raise ClientError(f"{what} does not start with its own size")
    return data[2:]


def cert_from_nv(data):
    """A certificate as an EK NV index holds it: perhaps behind the TCG
    header (10 01 00, a 2-byte size, 10 02), then one DER SEQUENCE, then
    padding. Returns the SEQUENCE's bytes."""
    if data[:3] == b"\x10\x01\x00" and data[5:7] == b"\x10\x02":
        data = data[7:]
    if len(data) < 2 or data[0] != 0x30:
        raise ClientError("the EK NV index does not hold a certificate")
    n = data[1]
    if n < 0x80:
        return data[:2 + n]
    k = n & 0x7F
    if k == 0 or k > 3 or len(data) < 2 + k:
        raise ClientError("the EK certificate's length does not decode")
    return data[:2 + k + int.from_bytes(data[2:2 + k], "big")]


def tpm_name(public):
    """The Name of a TPMT_PUBLIC: nameAlg || H_nameAlg(TPMT_PUBLIC)."""
    name_alg = struct.unpack(">H", public[2:4])[0]
    if name_alg != TPM_ALG_SHA256:
        raise ClientError(f"nameAlg 0x{name_alg:04x}: only SHA-256 is computed here")
    return public[2:4] + hashlib.sha256(public).digest()


# --------------------------------------------------------------------------
# the enrollment


def transcript(nonce, exporter, csr):
    """protocol.md 5: T = SHA-256("devid/v1 enroll" || nonce || exporter ||
    SHA-256(csr))."""
    assert len(TRANSCRIPT_PREFIX) == 15
    if len(nonce) != 32 or len(exporter) != 32:
        raise ClientError(f"nonce of {len(nonce)} and exporter of "
                          f"{len(exporter)} bytes, want 32 each")
    return hashlib.sha256(TRANSCRIPT_PREFIX + nonce + exporter +
                          hashlib.sha256(csr).digest()).digest()


def make_csr(args, env, work, key_uri, software):
    """A DER PKCS#10 request signed by the key (its subject is ignored by the
    verifier, protocol.md 4)."""
    out = os.path.join(work, "csr.der")
    cmd = ["openssl", "req", "-new", "-sha256", "-subj", "/CN=devid interop client",
           "-outform", "DER", "-out", out, "-key", key_uri]
    if not software:
        cmd[2:2] = ["-provider", "default", "-provider", "tpm2",
                    "-propquery", "?tpm2.signature"]
    run(cmd, env, what="openssl req")
    run(["openssl", "req", "-inform", "DER", "-in", out, "-noout", "-verify"],
        env, what="openssl req -verify")
    return read_file(out)


class Exchange:
    """The outcome of one request, for result.json."""

    def __init__(self, pb, what, status, headers, body):
        self.what, self.status, self.headers, self.body = what, status, headers, body
        self.error = None
        if status != 200:
            if headers.get("content-type") != CONTENT_TYPE:
                raise ClientError(f"{what}: {status} without an Error body "
                                  f"(Content-Type {headers.get('content-type')})")
            self.error = pb.Error.FromString(body)

    def summary(self, pb):
        s = {"status": self.status, "content_type": self.headers.get("content-type")}
        if self.error is not None:
            s.update(reason=reason_name(pb, self.error.reason),
                     reason_value=int(self.error.reason),
                     message=self.error.message,
                     retryable=self.error.retryable,
                     retry_after_seconds=self.error.retry_after_seconds)
        return s


def challenge(pb, conn, intermediates, ek=None, ak_public=None):
    req = pb.ChallengeRequest(protocol_version=1, agent_version="devid-interop/1",
                              intermediates=intermediates)
    if ek is not None:
        req.ek_certificate, req.ek_public, req.ldevid_public = ek
    if ak_public is not None:
        req.ak_public = ak_public
    body = req.SerializeToString()
    ex = Exchange(pb, "challenge", *conn.request("POST", "/v1/challenge", body))
    if ex.error is None:
        resp = pb.ChallengeResponse.FromString(ex.body)
        if len(resp.nonce) != 32 or not resp.token:
            raise ClientError(f"challenge answer with a {len(resp.nonce)}-byte "
                              f"nonce and a {len(resp.token)}-byte token")
        if ek is not None and not (resp.credential_blob and resp.encrypted_secret):
            raise ClientError("challenge with an EK answered without a credential")
        return ex, resp
    return ex, None


def enroll(args):
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, TPM2TOOLS_TCTI=args.tcti, TPM2OPENSSL_TCTI=args.tcti)
    result = {"fault": args.fault, "tls_requested": args.tls}
    result_path = os.path.join(work, "result.json")
    conns = []
    tpm = Tpm(env, work, args.srk_handle)
    key_made = False
    ak_made = False
    ak_public = None
    enrolled = False
    second = None
    with tempfile.TemporaryDirectory(prefix="devid-interop-") as tmp:
        try:
            pb = load_messages(args.proto, tmp)
            intermediates = pem_certs_to_der(args.chain)
            idevid_public = tpm.public(args.idevid_handle)
            iak_public = tpm.public(args.iak_handle) if args.iak_handle else None
            signer_type = struct.unpack(">H", idevid_public[:2])[0]
            if signer_type not in (TPM_ALG_ECC, TPM_ALG_RSA):
                raise ClientError(f"IDevID key type 0x{signer_type:04x}")
            tpm.ensure_srk()
            if int(args.key_handle, 16) in tpm.persistent_handles():
                raise ClientError(f"handle {args.key_handle} is already in use")

            ek = None
            if args.ek_handle:
                if args.ek_cert:
                    ek_cert, ek_public = read_file(args.ek_cert), read_file(args.ek_public)
                else:
                    ek_cert, ek_public = tpm.ek_certificate(args.ek_handle), tpm.public(args.ek_handle)
                write_file(os.path.join(work, "ek_certificate.der"), ek_cert)
                # protocol.md 6.1: the new key exists before the challenge.
                ldevid_public = tpm.create_key(LDEVID_ATTRS, args.key_handle)
                key_made = True
                ek = (ek_cert, ek_public, ldevid_public)
                if args.ak_handle:
                    # A restricted signing key has no symmetric algorithm.
                    ak_public = tpm.create_key(AK_ATTRS, args.ak_handle, "ak",
                                               "ecc256:ecdsa-sha256:null")
                    ak_made = True

            c1 = TlsConnection("1", args.url, args, env, work)
            conns.append(c1)
            result.update(tls=c1.version, ems=c1.ems)
            if args.fault == "no-ems" and c1.ems is not False:
                raise ClientError(f"{c1.version} with EMS {c1.ems}: cannot test without EMS")
            ex, ch = challenge(pb, c1, intermediates, ek, ak_public)
            result["challenge"] = ex.summary(pb)
            if ch is None:
                log(f"challenge refused: {result['challenge']}")
                return 1
            result["expires_at"] = ch.expires_at

            conn = c1
            if args.fault == "wrong-connection":
                conn = TlsConnection("2", args.url, args, env, work)
                conns.append(conn)
                result["exporters_differ"] = conn.exporter != c1.exporter

            activated = b""
            if ek is not None:
                if args.ek_secret:
                    activated = read_file(args.ek_secret)
                else:
                    activated = tpm.activate(args.key_handle, args.ek_handle, ek[1],
                                             ch.credential_blob, ch.encrypted_secret)
                    result["activated"] = activated is not None
                    if activated is None:
                        if args.fault != "ek-other-tpm":
                            raise ClientError("TPM2_ActivateCredential failed")
                        activated = bytes(32)
                write_file(os.path.join(work, "activated_secret.bin"), activated)
            ak_activated = b""
            result["ak_credential"] = bool(ch.ak_credential_blob)
            if ak_public is not None and ch.ak_credential_blob:
                if args.ak_secret:
                    ak_activated = read_file(args.ak_secret)
                else:
                    ak_activated = tpm.activate(args.ak_handle, args.ek_handle, ek[1],
                                                ch.ak_credential_blob, ch.ak_encrypted_secret)
                    if ak_activated is None:
                        raise ClientError("TPM2_ActivateCredential of the AK credential failed")
                    write_file(os.path.join(work, "ak_activated_secret.bin"), ak_activated)
                if args.fault == "ak-secret-wrong":
                    ak_activated = bytes([ak_activated[0] ^ 1]) + ak_activated[1:]

            if args.fault == "ek-second-tpm-key":
                env2 = dict(os.environ, TPM2TOOLS_TCTI=args.second_tcti,
                            TPM2OPENSSL_TCTI=args.second_tcti)
                second = Tpm(env2, os.path.join(work, "second"), args.srk_handle)
                os.makedirs(second.work, exist_ok=True)
                second.ensure_srk()
                ldevid_public = second.create_key(LDEVID_ATTRS, args.key_handle)
                write_file(os.path.join(work, "ldevid_public.tpmt"), ldevid_public)

            forged = args.fault == "forged-attest"
            if second is not None:
                csr = make_csr(args, second.env, work, f"handle:{args.key_handle}",
                               software=False)
            elif ek is not None:
                write_file(os.path.join(work, "ldevid_public.tpmt"), ldevid_public)
                csr = make_csr(args, env, work, f"handle:{args.key_handle}", software=False)
            elif forged:
                soft_key, ldevid_public = forged_key(work, env)
                write_file(os.path.join(work, "ldevid_public.tpmt"), ldevid_public)
                run(["openssl", "pkey", "-in", soft_key, "-pubout",
                     "-out", os.path.join(work, "ldevid-pub.pem")], env, what="openssl pkey")
                csr = make_csr(args, env, work, soft_key, software=True)
            else:
                # The new key (section 6), persistent at --key-handle.
                attrs = LDEVID_ATTRS_NO_FIXEDTPM if args.fault == "no-fixedtpm" else LDEVID_ATTRS
                ldevid_public = tpm.create_key(attrs, args.key_handle)
                key_made = True
                write_file(os.path.join(work, "ldevid_public.tpmt"), ldevid_public)
                run(["tpm2_readpublic", "-c", args.key_handle, "-f", "pem",
                     "-o", os.path.join(work, "ldevid-pub.pem")], env, what="tpm2_readpublic")
                if args.fault == "csr-mismatch":
                    other = os.path.join(work, "other.key")
                    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                         "ec_paramgen_curve:P-256", "-out", other], env, what="openssl genpkey")
                    csr = make_csr(args, env, work, other, software=True)
                else:
                    csr = make_csr(args, env, work, f"handle:{args.key_handle}", software=False)

            T = transcript(ch.nonce, conn.exporter, csr)
            signature = tpm.sign_digest(args.idevid_handle, signer_type, T)
            if forged or second is not None:
                certify_info = forged_attest(T, tpm_name(ldevid_public), tpm_name(idevid_public))
                write_file(os.path.join(work, "forged_attest.bin"), certify_info)
                certify_signature = tpm.sign_digest(args.idevid_handle, signer_type,
                                                    hashlib.sha256(certify_info).digest(),
                                                    name="forged_attest")
            elif args.iak_handle:
                iak_type = struct.unpack(">H", iak_public[:2])[0]
                certify_info, certify_signature = tpm.certify(
                    args.key_handle, args.iak_handle, iak_type, T)
            else:
                certify_info, certify_signature = tpm.certify(
                    args.key_handle, args.idevid_handle, signer_type, T)
            # What the verifier will check (section 6), checked here first so
            # that a refusal cannot come from a mistake of this client.
            check_attest(certify_info, T, tpm_name(ldevid_public))

            if args.iak_handle:
                evidence = pb.TpmEvidence(
                    certify_info=certify_info, certify_signature=certify_signature,
                    ldevid_public=ldevid_public, signer=pb.SIGNER_KIND_IAK,
                    iak_certificate=pem_certs_to_der(args.iak_cert)[0],
                    signer_public=iak_public)
            else:
                evidence = pb.TpmEvidence(
                    certify_info=certify_info, certify_signature=certify_signature,
                    ldevid_public=ldevid_public, signer=pb.SIGNER_KIND_IDEVID,
                    signer_public=idevid_public)
            req = pb.EnrollRequest(
                token=ch.token, csr=csr, challenge_signature=signature,
                evidence=evidence, intermediates=intermediates, activated_secret=activated)
            pcrs = list(ch.quote_pcrs)
            result["quote_pcrs"] = pcrs
            if pcrs:
                # protocol.md 6.2: read the PCRs, then quote them with T.
                values = tpm.pcr_read(pcrs)
                signer = args.iak_handle or (ak_made and args.ak_handle) or args.idevid_handle
                if args.fault == "quote-idevid":
                    signer = args.idevid_handle
                qualifying = hashlib.sha256(T).digest() if args.fault == "quote-wrong-nonce" else T
                quote_info, quote_sig = tpm.quote(signer, pcrs, qualifying)
                req.quote.CopyFrom(pb.PcrQuote(
                    quote_info=quote_info, quote_signature=quote_sig,
                    pcrs=[pb.PcrValue(index=i, sha256=v) for i, v in zip(pcrs, values)]))
                if ak_made and not args.iak_handle:
                    req.quote.ak_public = ak_public
                    req.quote.ak_activated_secret = ak_activated
            body = req.SerializeToString()
            write_file(os.path.join(work, "enroll_request.bin"), body)
            ex = Exchange(pb, "enroll", *conn.request("POST", "/v1/enroll", body))
            result["enroll"] = ex.summary(pb)
            if ex.error is not None:
                log(f"enroll refused: {result['enroll']}")
                return 1
            resp = pb.EnrollResponse.FromString(ex.body)
            if not resp.certificate:
                raise ClientError("enroll answered 200 without a certificate")
            write_file(os.path.join(work, "cert.der"), resp.certificate)
            write_file(os.path.join(work, "cert.pem"), der_to_pem(resp.certificate))
            write_file(os.path.join(work, "chain.pem"),
                       b"".join(der_to_pem(c) for c in resp.chain))
            result.update(serial=resp.serial, chain_len=len(resp.chain))
            enrolled = True
            log(f"enrolled: certificate serial {resp.serial}")
            return 0
        except ClientError as e:
            result["error"] = str(e)
            log(f"error: {e}")
            return 2
        except Exception as e:  # a malformed answer, a bug here: not a refusal
            result["error"] = f"{type(e).__name__}: {e}"
            log(f"error: {type(e).__name__}: {e}")
            return 2
        finally:
            for c in conns:
                c.close()
            result["s_client_pids"] = [c.proc.pid for c in conns]
            # Only an issued key stays in the TPM.
            if key_made and not enrolled:
                try:
                    tpm.evict(args.key_handle)
                except ClientError as e:
                    log(f"cannot evict {args.key_handle}: {e}")
            if ak_made:
                try:
                    tpm.evict(args.ak_handle)
                except ClientError as e:
                    log(f"cannot evict the AK at {args.ak_handle}: {e}")
            if second is not None:
                try:
                    second.evict(args.key_handle)
                    second.flush_transients()
                except ClientError as e:
                    log(f"cannot evict {args.key_handle} in the second TPM: {e}")
            try:
                tpm.flush_transients()
            except ClientError as e:
                log(f"cannot flush transient objects: {e}")
            with open(result_path, "w") as f:
                json.dump(result, f, indent=1, sort_keys=True)


def check_attest(info, T, name):
    """TPMS_ATTEST: magic, type, qualifiedSigner (TPM2B_NAME), extraData
    (TPM2B_DATA) = T, clockInfo (17 bytes), firmwareVersion (8), then
    attested.certify: name (TPM2B_NAME) = the new key's Name."""
    off = 6
    (n,) = struct.unpack(">H", info[off:off + 2])
    off += 2 + n
    (n,) = struct.unpack(">H", info[off:off + 2])
    extra = info[off + 2:off + 2 + n]
    off += 2 + n + 17 + 8
    (n,) = struct.unpack(">H", info[off:off + 2])
    certified = info[off + 2:off + 2 + n]
    if extra != T:
        raise ClientError("TPM2_Certify: extraData is not T")
    if certified != name:
        raise ClientError("TPM2_Certify: the certified Name is not the new key's")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca-bundle", required=True, help="verifies the verifier's TLS certificate")
    ap.add_argument("--idevid-cert", required=True, help="PEM IDevID certificate")
    ap.add_argument("--chain", required=True, help="PEM intermediates the device holds")
    ap.add_argument("--proto", required=True, help="directory holding devid/v1/enroll.proto")
    ap.add_argument("--tcti", required=True)
    ap.add_argument("--work", required=True, help="output directory")
    ap.add_argument("--tls", choices=["1.3", "1.2"], default="1.3")
    ap.add_argument("--idevid-handle", default="0x81020000")
    ap.add_argument("--srk-handle", default="0x81000001")
    ap.add_argument("--key-handle", default="0x81020001",
                    help="where the new key is kept (persistent)")
    ap.add_argument("--fault", default="none",
                    choices=["none", "wrong-connection", "no-fixedtpm", "csr-mismatch",
                             "no-ems", "forged-attest", "ek-other-tpm", "ek-second-tpm-key",
                             "quote-idevid", "quote-wrong-nonce", "ak-secret-wrong"])
    ap.add_argument("--iak-handle", help="certify (and quote) with the IAK at this handle")
    ap.add_argument("--iak-cert", help="PEM certificate of the IAK of --iak-handle")
    ap.add_argument("--ek-handle", help="run the EK credential activation with this EK")
    ap.add_argument("--ek-cert", help="DER EK certificate to send instead of this TPM's")
    ap.add_argument("--ek-public", help="TPMT_PUBLIC of the EK to send instead of this TPM's")
    ap.add_argument("--ek-secret", help="send this file as activated_secret")
    ap.add_argument("--ak-handle", help="with --ek-handle: create an AK here for the quote")
    ap.add_argument("--ak-secret", help="send this file as quote.ak_activated_secret")
    ap.add_argument("--second-tcti", help="the second TPM of --fault ek-second-tpm-key")
    ap.add_argument("--resend", metavar="FILE",
                    help="send FILE as the body of POST /v1/enroll, nothing else")
    ap.add_argument("--no-handshake-chain", action="store_true",
                    help="send the intermediates only in the messages")
    args = ap.parse_args()
    if bool(args.ek_cert) != bool(args.ek_public):
        ap.error("--ek-cert and --ek-public go together")
    if args.fault in ("ek-other-tpm", "ek-second-tpm-key") and not args.ek_handle:
        ap.error(f"--fault {args.fault} needs --ek-handle")
    if bool(args.iak_handle) != bool(args.iak_cert):
        ap.error("--iak-handle and --iak-cert go together")
    if (args.ak_handle or args.fault == "ak-secret-wrong") and not args.ek_handle:
        ap.error("--ak-handle and --fault ak-secret-wrong need --ek-handle")
    if args.fault == "ak-secret-wrong" and not args.ak_handle:
        ap.error("--fault ak-secret-wrong needs --ak-handle")
    if args.fault == "ek-second-tpm-key" and not args.second_tcti:
        ap.error("--fault ek-second-tpm-key needs --second-tcti")
    return resend(args) if args.resend else enroll(args)


if __name__ == "__main__":
    sys.exit(main())
