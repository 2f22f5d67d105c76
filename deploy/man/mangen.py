#!/usr/bin/python3
"""Builds a man page from its template (deploy/man/*.in) and the sources the
program itself uses, so that the page cannot drift from them:

  @HELP prog args...@   the options `prog args... --help` prints
  @VERIFIER_KEYS@       the verifier's key table (devid-mangen verifier-keys)
  @AGENT_KEYS@          the keys and comments of deploy/config/agent.conf.example
  @VERSION@             the project version
  @DOCDIR@              where the page's package puts its documents
                        (/usr/share/doc/devid, or the Debian package's own)

usage: mangen.py TEMPLATE OUT --bin-verifier EXE --bin-agent EXE --mangen EXE
                  --agent-conf FILE --version V [--docdir DIR]
                  [--bin-factory EXE] [--bin-dev-pki EXE]
writes OUT and OUT.gz.
"""
import argparse
import gzip
import os
import re
import subprocess
import sys

OPTION = re.compile(r"^  (-\w, )?(--[a-z0-9-]+)(?: ([^ ].*?))?(?:\s{2,}(.*))?$")


def esc(s):
    """Escapes text for roff: backslashes and hyphens."""
    return s.replace("\\", "\\e").replace("-", "\\-")


def line(s):
    """One roff text line: a leading . or ' would be a request."""
    s = esc(s.strip())
    return "\\&" + s if s[:1] in (".", "'") else s


def help_blocks(text):
    """Splits --help output into blocks at blank lines."""
    blocks, cur = [], []
    for raw in text.splitlines():
        if raw.strip():
            cur.append(raw.rstrip())
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def render_help(text):
    """The whole --help output as roff: the usage lines as they are, each
    option (two spaces and a dash; deeper-indented lines continue it) as a
    tagged paragraph, indented lists as they are, the rest as paragraphs."""
    out = []
    for block in help_blocks(text):
        if block[0].lower().startswith("usage:"):
            out += [".PP", ".nf"] + [line(l) if i == 0 else "\&" + esc(l)
                                     for i, l in enumerate(block)] + [".fi"]
            continue
        if not any(OPTION.match(l) for l in block):
            if any(l.startswith(" ") for l in block[1:]):
                out += [".PP", ".nf"] + ["\&" + esc(l) for l in block] + [".fi"]
            else:
                out += [".PP"] + [line(l) for l in block]
            continue
        intro = True
        for l in block:
            m = OPTION.match(l)
            if m:
                intro = False
                head = "\\fB%s\\fR, " % esc(m.group(1).rstrip(", ")) if m.group(1) else ""
                head += "\\fB%s\\fR" % esc(m.group(2))
                if m.group(3):
                    head += " \\fI%s\\fR" % esc(m.group(3))
                out += [".TP", head]
                if m.group(4):
                    out.append(line(m.group(4)))
            elif intro:
                out += [".PP", line(l)] if l is block[0] else [line(l)]
            else:
                out.append(line(l))
    return out


def run_help(bins, words):
    if words[0] not in bins:
        sys.exit("mangen: no --bin-%s given" % words[0].replace("devid-", ""))
    # The lab tools are scripts: a command word is an option to them, not a
    # subcommand binary, so it goes through as it is.
    r = subprocess.run([bins[words[0]]] + words[1:] + ["--help"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("mangen: %s --help exited %d" % (" ".join(words), r.returncode))
    return r.stdout


def verifier_keys(mangen):
    r = subprocess.run([mangen, "verifier-keys"], capture_output=True, text=True, check=True)
    rows = [l.split("\t") for l in r.stdout.splitlines() if l]
    sections = []
    for row in rows:
        if row[0] not in sections:
            sections.append(row[0])
    out = []
    for sec in sections:
        out.append(".SS [%s]" % esc(sec))
        for section, name, option, arg, text in (r_ for r_ in rows if r_[0] == sec):
            out.append(".TP")
            out.append("\\fB%s\\fR = \\fI%s\\fR" % (esc(name), esc(arg)))
            out.append(line(text))
            out.append(".br")
            out.append("Command line: \\fB\\-\\-%s\\fR." % esc(option))
    return out


def agent_keys(path):
    """Each [section] and key of the example, its example value and the
    comment above it; a key right after another shares that one's comment."""
    out, comment, seen, prev = [], [], set(), None
    header = True
    for raw in open(path):
        s = raw.strip()
        sec = re.match(r"^\[([a-z_]+)\]$", s)
        key = re.match(r"^[;#]?\s*([a-z_]+)\s*=\s*(.*)$", s)
        if sec:
            header = False
            out.append(".SS [%s]" % esc(sec.group(1)))
            comment, prev = [], None
        elif key and not header:
            name, value = key.group(1), key.group(2)
            if name in seen:
                out.append("Or: \\fI%s\\fR" % esc(value))
                comment = []
                continue
            seen.add(name)
            out.append(".TP")
            out.append("\\fB%s\\fR = \\fI%s\\fR" % (esc(name), esc(value)))
            if comment:
                out.extend(line(c) for c in comment)
            elif prev is not None:
                out.append("As \\fB%s\\fR above." % esc(prev))
            comment, prev = [], name
        elif s.startswith("#") and not header:
            comment.append(s.lstrip("#").strip())
        elif not s:
            comment = []
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("template")
    p.add_argument("out")
    p.add_argument("--bin-verifier", required=True)
    p.add_argument("--bin-agent", required=True)
    p.add_argument("--mangen", required=True)
    p.add_argument("--agent-conf", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--bin-factory")
    p.add_argument("--bin-dev-pki")
    p.add_argument("--docdir", default="/usr/share/doc/devid")
    a = p.parse_args()
    bins = {"devid-verifier": a.bin_verifier, "devid-agent": a.bin_agent}
    if a.bin_factory:
        bins["devid-factory"] = a.bin_factory
    if a.bin_dev_pki:
        bins["devid-dev-pki"] = a.bin_dev_pki
    out = []
    for raw in open(a.template):
        raw = raw.rstrip("\n")
        m = re.match(r"^@HELP (.*)@$", raw)
        if m:
            out.extend(render_help(run_help(bins, m.group(1).split())))
        elif raw == "@VERIFIER_KEYS@":
            out.extend(verifier_keys(a.mangen))
        elif raw == "@AGENT_KEYS@":
            out.extend(agent_keys(a.agent_conf))
        else:
            out.append(raw.replace("@VERSION@", a.version).replace("@DOCDIR@", a.docdir))
    text = ("\n".join(out) + "\n").encode()
    with open(a.out + ".tmp", "wb") as f:
        f.write(text)
    os.replace(a.out + ".tmp", a.out)
    # mtime 0 and no file name in the header: the .gz is reproducible.
    with open(a.out + ".gz.tmp", "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as f:
            f.write(text)
    os.replace(a.out + ".gz.tmp", a.out + ".gz")


if __name__ == "__main__":
    main()
