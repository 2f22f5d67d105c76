#!/usr/bin/python3
"""Checks an inclusion proof of the devid issuance log, exactly as
docs/protocol.md ("Checking an inclusion proof") tells a third party to:
hashlib and struct only, no devid code.

usage: logproof.py PROOF_FILE CERT_DER_FILE
  PROOF_FILE     what `devid-verifier show --serial S --proof` printed
  CERT_DER_FILE  the certificate (DER) the proof is about
Exit 0 when the leaf names this certificate and its audit path leads to the
root the signed head carries; 1 otherwise, with the reason."""
import hashlib
import struct
import sys


def main(proof_path, cert_path):
    fields, path = {}, []
    for line in open(proof_path):
        name, _, value = line.strip().partition(": ")
        if name == "proof":
            path.append(bytes.fromhex(value))
        else:
            fields[name] = value
    index = int(fields["log index"])
    leaf = bytes.fromhex(fields["leaf"])
    head = bytes.fromhex(fields["signed head"])

    # The signed head: context, size, timestamp, root, signature.
    if head[:18] != b"devid/v1 tree head":
        return "the signed head does not start with its context string"
    size, timestamp = struct.unpack(">QQ", head[18:34])
    root = head[34:66]

    # The leaf, version 1: version, type, time, reason, SHA-256(cert DER).
    if leaf[0] != 1 or leaf[1] != 1:
        return "the leaf is not a version 1 issuance"
    if leaf[11:43] != hashlib.sha256(open(cert_path, "rb").read()).digest():
        return "the leaf names another certificate"

    # RFC 9162 2.1.3.2, with RFC 6962's hashes.
    r = hashlib.sha256(b"\x00" + leaf).digest()
    if index >= size:
        return "the index is outside the tree"
    fn, sn = index, size - 1
    for p in path:
        if sn == 0:
            return "the proof is too long"
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return "the proof is too short"
    if r != root:
        return "the audit path does not lead to the signed root"
    print("inclusion proof ok: entry %d of %d, signed at %d" % (index, size, timestamp))
    return None


if __name__ == "__main__":
    why = main(sys.argv[1], sys.argv[2])
    if why:
        print("inclusion proof FAILED: " + why)
        sys.exit(1)
