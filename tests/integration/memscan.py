#!/usr/bin/python3
"""memscan.py PID HEX: count where the bytes HEX (and the same bytes
reversed, as a little-endian BIGNUM holds them) occur in the readable memory
of process PID, read through /proc/PID/maps and /proc/PID/mem (root, or the
same user with ptrace permission). Prints "found N" and exits 0 when N > 0,
1 when the bytes are nowhere, 2 when the memory could not be read at all."""
import re
import sys


def main():
    pid, hexstr = sys.argv[1], sys.argv[2]
    needles = [bytes.fromhex(hexstr), bytes.fromhex(hexstr)[::-1]]
    found = read = 0
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if not m or m.group(3)[0] != "r" or "[vvar]" in line or "[vsyscall]" in line:
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            read += len(chunk)
            for n in needles:
                found += chunk.count(n)
    print(f"found {found} in {read} bytes")
    if read == 0:
        return 2
    return 0 if found > 0 else 1


sys.exit(main())
