#!/usr/bin/python3
"""Checks the man pages against the programs, not against the table the pages
were built from: every option the built binaries' --help names (for every
subcommand) must be on its page, and every configuration key on its
configuration page. Key lists come from the verifier's key table
(devid-mangen), the example configurations and the agent's parser
(agent/core/config.c), so a key missing from any one of them shows.

usage: mancheck.py --verifier EXE --agent EXE --mangen EXE --src DIR --pages DIR
The lab tools, devid-factory(1) and devid-dev-pki(1), are checked against
the scripts in DIR/deploy.
Prints one line per missing item and exits 1 if there is any.
"""
import argparse
import os
import re
import subprocess
import sys

LONG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")
OPTLINE = re.compile(r"^  (?:-\w, )?--([a-z][a-z0-9-]*)")


def plain(roff):
    """Roff source to comparable text: hyphens, fonts and zero-width marks."""
    s = roff.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")
    return re.sub(r"\\f[BIRP]", "", s)


def sections(roff, level):
    """{title: [lines]} for each .SH (level "SH") or .SS heading."""
    out, cur = {}, None
    for l in roff.splitlines():
        if l.startswith(".SH ") or l.startswith(".SS "):
            if l.startswith("." + level + " "):
                cur = l[4:].strip().strip('"')
                out[cur] = []
                continue
            if l.startswith(".SH "):
                cur = None
                continue
        if cur is not None:
            out[cur].append(l)
    return out


def tags(lines):
    """The first line after each .TP: the tag of a tagged paragraph."""
    return [plain(lines[i + 1]) for i, l in enumerate(lines[:-1]) if l.strip() == ".TP"]


def run_help(exe, *words):
    r = subprocess.run([exe, *words, "--help"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("mancheck: %s %s --help exited %d" % (exe, " ".join(words), r.returncode))
    return r.stdout


def check_help(helptext, lines, where, missing):
    """Every --option of |helptext| is in |lines|; each one the option list
    describes is a tag there."""
    text = plain("\n".join(lines))
    tagged = " ".join(tags(lines))
    for name in sorted(set(LONG.findall(helptext))):
        if not re.search(r"(?<![\w-])--%s(?![\w-])" % re.escape(name), text):
            missing.append("%s: --%s (in --help) is not on the page" % (where, name))
    for l in helptext.splitlines():
        m = OPTLINE.match(l)
        if m and not re.search(r"(?<![\w-])--%s(?![\w-])" % re.escape(m.group(1)), tagged):
            missing.append("%s: --%s has no entry of its own on the page" % (where, m.group(1)))


def example_keys(path):
    """(section, key) of every key, set or commented out, in an example file."""
    keys, sec = set(), None
    for l in open(path):
        l = l.strip()
        m = re.match(r"^\[([a-z_]+)\]$", l)
        if m:
            sec = m.group(1)
            continue
        m = re.match(r"^[;#]?\s*([a-z_]+)\s*=", l)
        if m and sec:
            keys.add((sec, m.group(1)))
    return keys


def check_keys(keys, roff, where, missing):
    """Each (section, key) is a tag under the page's .SS [section]."""
    by_section = sections(roff, "SS")
    for sec, key in sorted(keys):
        lines = by_section.get("[%s]" % sec)
        if lines is None:
            missing.append("%s: section [%s] (key %s) is not on the page" % (where, sec, key))
        elif not any(t.split(" = ")[0].strip() == key for t in tags(lines)):
            missing.append("%s: key [%s] %s is not on the page" % (where, sec, key))


def check(a, pages):
    missing = []
    read = lambda name: open(os.path.join(pages, name)).read()

    vpage = read("devid-verifier.8")
    vsecs = sections(vpage, "SS")
    top = run_help(a.verifier)
    subs = [m.group(1) for m in re.finditer(r"^  ([a-z][a-z-]*)\s{2,}", top, re.M)]
    if "serve" not in subs:
        sys.exit("mancheck: no subcommands in devid-verifier --help")
    check_help(top, vpage.splitlines(), "devid-verifier.8", missing)
    for sub in subs:
        if sub == "help":
            continue
        if sub not in vsecs:
            missing.append("devid-verifier.8: subcommand %s has no section" % sub)
            continue
        check_help(run_help(a.verifier, sub), vsecs[sub], "devid-verifier.8 %s" % sub, missing)

    apage = read("devid-agent.8")
    asecs = sections(apage, "SH")
    top = run_help(a.agent)
    subs = [m.group(1) for m in re.finditer(r"^  ([a-z][a-z-]*)\s{2,}", top, re.M)]
    check_help(top, apage.splitlines(), "devid-agent.8", missing)
    for sub in subs:
        if sub in ("help", "version"):
            continue
        check_help(run_help(a.agent, sub), asecs.get("OPTIONS", []), "devid-agent.8 %s" % sub,
                   missing)

    dump = subprocess.run([a.mangen, "verifier-keys"], capture_output=True, text=True, check=True)
    vkeys = {tuple(l.split("\t")[:2]) for l in dump.stdout.splitlines() if l}
    vkeys |= example_keys(os.path.join(a.src, "deploy/config/verifier.conf.example"))
    check_keys(vkeys, read("devid-verifier.conf.5"), "devid-verifier.conf.5", missing)

    akeys = example_keys(os.path.join(a.src, "deploy/config/agent.conf.example"))
    parser = open(os.path.join(a.src, "agent/core/config.c")).read()
    parsed = set(re.findall(r'strcmp\(key, "([a-z_]+)"\)', parser))
    if not parsed:
        sys.exit("mancheck: found no keys in agent/core/config.c")
    fac = os.path.join(a.src, "deploy/factory/devid-factory")
    fpage = read("devid-factory.1")
    fsecs = sections(fpage, "SS")
    top = run_help(fac)
    cmds = [m.group(1) for m in re.finditer(r"^  ([a-z][a-z-]*)\s{2,}", top, re.M)]
    if "provision" not in cmds:
        sys.exit("mancheck: no commands in devid-factory --help")
    check_help(top, fpage.splitlines(), "devid-factory.1", missing)
    for cmd in cmds:
        if cmd == "help":
            continue
        if cmd not in fsecs:
            missing.append("devid-factory.1: command %s has no section" % cmd)
            continue
        check_help(run_help(fac, cmd), fsecs[cmd], "devid-factory.1 %s" % cmd, missing)
    pki = os.path.join(a.src, "deploy/dev/devid-dev-pki")
    check_help(run_help(pki), read("devid-dev-pki.1").splitlines(), "devid-dev-pki.1", missing)

    apage5 = read("devid-agent.conf.5")
    check_keys(akeys, apage5, "devid-agent.conf.5", missing)
    atags = [t.split(" = ")[0].strip() for t in tags(apage5.splitlines())]
    for key in sorted(parsed - set(atags)):
        missing.append("devid-agent.conf.5: key %s (agent/core/config.c) is not on the page" % key)
    return missing


def main():
    p = argparse.ArgumentParser()
    for o in ("verifier", "agent", "mangen", "src", "pages"):
        p.add_argument("--" + o, required=True)
    a = p.parse_args()
    missing = check(a, a.pages)
    for m in missing:
        print(m)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
