#!/usr/bin/python3
"""Checks that every devid_ metric a Grafana dashboard queries, or an alerting
rules file names, is a family in a /metrics scrape, so that a renamed metric
cannot leave the shipped examples watching nothing.

usage: promnames.py METRICS.txt FILE...   (FILE: *.json dashboard, or rules text)
Prints each unknown name with its file and exits 1 if there is any; exits 2 if
a dashboard is not JSON or queries nothing.
"""
import json
import re
import sys

NAME = re.compile(r"(?<![\w-])(devid_[a-z0-9_]+)")


def families(path):
    """{name: type} from the # TYPE lines of a scrape."""
    out = {}
    for l in open(path):
        m = re.match(r"^# TYPE (\S+) (\S+)", l)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def dashboard_exprs(path):
    """Every query string of a dashboard: targets' expr and variable queries."""
    try:
        doc = json.load(open(path))
    except ValueError as e:
        sys.exit("promnames: %s is not JSON: %s" % (path, e))
    found = []

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if k in ("expr", "definition", "query") and isinstance(x, str):
                    found.append(x)
                else:
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(doc)
    if not any(NAME.search(e) for e in found):
        sys.exit("promnames: %s queries no devid_ metric" % path)
    return found


def known(name, fams):
    if name in fams:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and fams.get(base) in ("histogram", "summary"):
            return True
    return False


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    fams = families(sys.argv[1])
    if not fams:
        sys.exit("promnames: no # TYPE lines in %s" % sys.argv[1])
    bad = 0
    for path in sys.argv[2:]:
        texts = dashboard_exprs(path) if path.endswith(".json") else [open(path).read()]
        for name in sorted({n for t in texts for n in NAME.findall(t)}):
            if not known(name, fams):
                print("%s: %s is not in /metrics" % (path, name))
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
