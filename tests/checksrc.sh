#!/usr/bin/env bash
# tests/checksrc.sh [FILE...]: fails on the C functions STYLE.md bans, in the
# spirit of curl's scripts/checksrc.pl. With no arguments it checks every
# tracked *.c and *.h file.
#
# Banned outright: sprintf vsprintf strcat strncat strcpy strncpy strtok atoi
# atol atoll atof gets gmtime localtime ctime asctime (use snprintf, a length
# check and memcpy, strtoull with checks, gmtime_r).
#
# strtol and its kin (strtoul, strtoll, strtoull, strtod, strtoimax, ...) are
# allowed only when checked: errno is zeroed on one of the two lines before
# the call, the end pointer is a variable (&end, never NULL), and the three
# lines after test both errno and *end.
#
# A comment line (starting with *, // or /*) is not code and is skipped.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -eq 0 ]; then
    mapfile -t files < <(git ls-files '*.c' '*.h')
else
    files=("$@")
fi

banned='sprintf|vsprintf|strcat|strncat|strcpy|strncpy|strtok|atoi|atol|atoll|atof|gets|gmtime|localtime|ctime|asctime'
conv='strto(l|ul|ll|ull|d|f|ld|imax|umax)'
comment='^[[:space:]]*(\*|//|/\*)'
bad=0

for f in "${files[@]}"; do
    while IFS=: read -r n text; do
        echo "$f:$n: banned function: $(grep -oE "\\b($banned)\\s*\\(" <<<"$text" | head -n 1)"
        echo "    $text"
        bad=1
    done < <(grep -nE "\\b($banned)\\s*\\(" "$f" | grep -vE "^[0-9]+:$comment")

    while IFS=: read -r n text; do
        end=$(sed -nE "s/.*\\b$conv\\s*\\([^,]*,[[:space:]]*&([A-Za-z_][A-Za-z0-9_]*)[,)].*/\\2/p" <<<"$text")
        before=$(sed -n "$((n > 2 ? n - 2 : 1)),$((n - 1))p" "$f")
        after=$(sed -n "${n},$((n + 3))p" "$f")
        why=""
        if [ -z "$end" ]; then
            why="its end pointer is not a variable (&end)"
        elif ! grep -q 'errno = 0' <<<"$before"; then
            why="errno is not set to 0 just before it"
        elif ! grep -q 'errno != 0' <<<"$after"; then
            why="errno is not checked just after it"
        elif ! grep -qF "*$end" <<<"$after"; then
            why="*$end is not checked just after it"
        fi
        if [ -n "$why" ]; then
            echo "$f:$n: unchecked conversion: $why"
            echo "    $text"
            bad=1
        fi
    done < <(grep -nE "\\b$conv\\s*\\(" "$f" | grep -vE "^[0-9]+:$comment")
done

if [ $bad -ne 0 ]; then
    echo "checksrc: banned or unchecked functions found (STYLE.md, \"Inputs are hostile\")" >&2
    exit 1
fi
echo "checksrc: ${#files[@]} files, no banned functions"
