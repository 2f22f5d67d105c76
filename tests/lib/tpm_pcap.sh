# shellcheck shell=bash
# tests/lib/tpm_pcap.sh: the TPM commands in a capture of libtss2-tcti-pcap0.
#
#   TCTI_PCAP_FILE=out.pcap devid-agent ... --tcti "pcap:$SWTPM_TCTI"
#   tpm_pcap_commands out.pcap      # "ReadPublic 0x000 0x81000001", one a line
#   tpm_pcap_summary out.pcap       # counts by command code, then "total N"
#   tpm_pcap_total out.pcap         # N
#
# The pcap TCTI writes pcapng: a section header, one interface of link type
# IPv4, then one enhanced packet block per command and per response, each a
# whole TPM message in one IPv4/TCP packet (port 2321 is the TPM's side). This
# reads that with od and awk only, so nothing beyond coreutils and awk is
# needed; `tshark -r out.pcap` shows the same commands.

# The names of the command codes, from the TSS header when it is there.
TPM_PCAP_HEADER=${TPM_PCAP_HEADER:-/usr/include/tss2/tss2_tpm2_types.h}

# tpm_pcap_commands FILE: each TPM command of FILE in order, as its name (or
# CC_0x...), the response code in hex (0x000 on success) and, for a command
# longer than its header, the 4 bytes after it: the first handle of a command
# that has one ("ReadPublic 0x000 0x81000001"). Fails on a file that is not
# such a capture.
tpm_pcap_commands() {
    local names=
    [[ -r $1 ]] || { log "no capture at $1"; return 1; }
    [[ -r $TPM_PCAP_HEADER ]] &&
        names=$(sed -n 's/^#define TPM2_CC_\([A-Za-z0-9_]*\) *((TPM2_CC) 0x\([0-9a-fA-F]*\)).*/\2 \1/p' \
            "$TPM_PCAP_HEADER" | tr '\n' ' ')
    od -An -v -tu1 "$1" | awk -v names="$names" '
        function le32(o) { return b[o] + 256 * (b[o+1] + 256 * (b[o+2] + 256 * b[o+3])) }
        function be16(o) { return 256 * b[o] + b[o+1] }
        function be32(o) { return 256 * (256 * (256 * b[o] + b[o+1]) + b[o+2]) + b[o+3] }
        BEGIN {
            n = split(names, w, " ")
            # mawk and gawk read "0x..." only with strtonum or -n: by hand.
            for (i = 1; i < n; i += 2) { v = 0; h = tolower(w[i])
                for (j = 1; j <= length(h); j++) v = v * 16 + index("0123456789abcdef", substr(h, j, 1)) - 1
                name[v] = w[i+1] }
        }
        { for (i = 1; i <= NF; i++) b[len++] = $i }
        END {
            if (len < 28 || le32(0) != 168627466 || le32(8) != 439041101) {
                print "not a little-endian pcapng capture" > "/dev/stderr"; exit 1 }
            for (o = 0; o + 8 <= len; o += blen) {
                blen = le32(o + 4)
                if (blen < 12) { print "malformed block at " o > "/dev/stderr"; exit 1 }
                if (le32(o) != 6) continue
                ip = o + 28
                tcp = ip + (b[ip] % 16) * 4
                msg = tcp + int(b[tcp + 12] / 16) * 4
                code = be32(msg + 6)
                if (be16(tcp + 2) == 2321) {
                    cc[++sent] = code
                    first[sent] = be32(msg + 2) >= 14 ? sprintf(" 0x%08x", be32(msg + 10)) : ""
                    continue
                }
                c = cc[++answered]
                printf "%s 0x%03x%s\n", (c in name) ? name[c] : sprintf("CC_0x%03x", c), code,
                    first[answered]
            }
            if (answered != sent) { print "a command without a response" > "/dev/stderr"; exit 1 }
        }'
}

# tpm_pcap_summary FILE: the commands of FILE counted by command code, most
# frequent first, failed ones noted ("ReadPublic 3 (1 failed)"), then "total N".
tpm_pcap_summary() {
    local lines
    lines=$(tpm_pcap_commands "$1") || return 1
    awk '{ n[$1]++; t++; if ($2 != "0x000") f[$1]++ }
        END { for (c in n) printf "%s %d%s\n", c, n[c], (c in f) ? " (" f[c] " failed)" : ""
              printf "total %d\n", t }' <<<"$lines" |
        sort -k2,2nr -k1,1 | awk '$1 == "total" { last = $0; next } { print } END { print last }'
}

# tpm_pcap_total FILE: the number of TPM commands in FILE.
tpm_pcap_total() {
    local lines
    lines=$(tpm_pcap_commands "$1") || return 1
    [[ -z $lines ]] && { echo 0; return 0; }
    wc -l <<<"$lines"
}
