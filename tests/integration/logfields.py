#!/usr/bin/python3
"""Reads devid-verifier's decision lines back as fields, as a log pipeline
would: docs/verifier.md's format, `PROG: LEVEL: EVENT key=value ...`, a value either a
bare word or "quoted" with \\" \\\\ and \\xHH escapes. A line that starts like
an event but does not parse, or names a key twice, is malformed.

  logfields.py LOG [--malformed] [--count K=V,...] [--get FIELD --where K=V,...]

--malformed prints the malformed lines (exit 1 if there are any); --count
prints how many events have every K=V (event=... matches the event word);
--get prints FIELD of the one event that matches (exit 1 unless exactly one
does).
"""

import argparse
import re
import sys

EVENTS = ("challenge", "enroll", "request")
WORD = re.compile(r"[A-Za-z0-9._:+/-]+")
KEY = re.compile(r"[a-z0-9_]+")


def parse_value(s, i):
    """The value at s[i:] and where it ends; ValueError if malformed."""
    if i < len(s) and s[i] == '"':
        out, i = [], i + 1
        while i < len(s) and s[i] != '"':
            if s[i] == "\\":
                n = s[i + 1:i + 2]
                if n in ('"', "\\"):
                    out.append(n)
                    i += 2
                elif n == "x" and re.fullmatch(r"[0-9a-f]{2}", s[i + 2:i + 4]):
                    out.append(chr(int(s[i + 2:i + 4], 16)))
                    i += 4
                else:
                    raise ValueError(f"bad escape at {i}")
            elif not " " <= s[i] <= "~":
                raise ValueError(f"raw byte {ord(s[i])} at {i}")
            else:
                out.append(s[i])
                i += 1
        if i >= len(s):
            raise ValueError("unterminated quote")
        return "".join(out), i + 1
    m = WORD.match(s, i)
    if not m:
        raise ValueError(f"no value at {i}")
    return m.group(0), m.end()


def parse_event(text):
    """The fields of one event line's text, or ValueError."""
    event, _, rest = text.partition(" ")
    fields, i = {"event": event}, 0
    while i < len(rest):
        m = KEY.match(rest, i)
        if not m or rest[m.end():m.end() + 1] != "=":
            raise ValueError(f"no key at {i}")
        key = m.group(0)
        value, i = parse_value(rest, m.end() + 1)
        if key in fields:
            raise ValueError(f"key {key} twice")
        fields[key] = value
        if i < len(rest):
            if rest[i] != " ":
                raise ValueError(f"junk at {i}")
            i += 1
    return fields


def read(path):
    events, malformed = [], []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            m = re.match(r"^[^:]+: [a-z]+: (.*)$", line)
            if not m:
                # Not devid's (a library's warning), unless it carries
                # decision fields: a forged line break would land here.
                if re.search(r"\b(result|device_serial)=", line):
                    malformed.append((n, line))
                continue
            text = m.group(1)
            if text.split(" ", 1)[0] not in EVENTS:
                continue
            try:
                events.append(parse_event(text))
            except ValueError as e:
                malformed.append((n, f"{e}: {line}"))
    return events, malformed


def matching(events, spec):
    want = dict(kv.split("=", 1) for kv in spec.split(",") if kv)
    return [e for e in events if all(e.get(k) == v for k, v in want.items())]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--malformed", action="store_true")
    ap.add_argument("--count")
    ap.add_argument("--get")
    ap.add_argument("--where", default="")
    a = ap.parse_args()
    events, malformed = read(a.log)
    if a.malformed:
        for n, line in malformed:
            print(f"line {n}: {line}")
        return 1 if malformed else 0
    if a.count is not None:
        print(len(matching(events, a.count)))
        return 0
    found = matching(events, a.where)
    if len(found) != 1:
        print(f"{len(found)} events match {a.where}", file=sys.stderr)
        return 1
    print(found[0].get(a.get, ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
