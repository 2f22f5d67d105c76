# shellcheck shell=bash
# tests/lib/devid.sh: starting devid's own processes in integration tests.
# Source after swtpm.sh. Uses DEVID_BIN (the build directory; ctest sets it) and
# DEVID_SRC (the source tree).
#
#   verifier_start NAME ARGS...   start devid-verifier serve on a free loopback
#                                 port; exports VERIFIER_URL, VERIFIER_LOG
#   verifier_start_at NAME PORT ARGS...
#                                 the same on 127.0.0.1:PORT (a replica that
#                                 must come back on its address)
#   device_new NAME CA SERIAL MODEL [factory args...]
#                                 fresh swtpm + tpm2-abrmd, factory-provisioned;
#                                 sets DEV_<NAME>_ENV (a file of exports)
#   agent NAME ARGS...            run devid-agent with that device's TPM
#   issue_idevid CADIR OUT SUBJECT SERIAL [PUBKEY]
#                                 an IDevID certificate from the factory CA
#   lab_pki                       manufacturer CA, roots and verifier PKI
#   need TOOL..., need_py_protobuf
#                                 what a test needs, or it dies
#   verifier_stop_checked         SIGTERM the verifier; check it ran and exits 0
#
# Counting: `check DESCRIPTION CMD...` runs CMD and counts a pass or a failure
# (and returns CMD's verdict); `skip DESCRIPTION` counts a check that cannot run
# here; `finish` prints the closing line, exactly
#   "N passed, M failed, K skipped"
# and fails when M > 0 or when nothing passed at all.

DEVID_SRC=${DEVID_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
DEVID_BIN=${DEVID_BIN:-$DEVID_SRC/build}
VERIFIER=$DEVID_BIN/verifier/devid-verifier
AGENT=$DEVID_BIN/agent/devid-agent
FACTORY=$DEVID_SRC/deploy/factory/devid-factory
DEV_PKI=$DEVID_SRC/deploy/dev/devid-dev-pki

[[ -x $VERIFIER ]] || die "no verifier binary at $VERIFIER (set DEVID_BIN)"
# Started as root, serve drops to [server] user, devid by default; on a
# machine where that user exists (the package installed) it could not read a
# test's files. Tests run it as root unless they name a user: every
# `serve` a test starts itself takes "${VERIFIER_AS_ROOT[@]}".
VERIFIER_AS_ROOT=()
[[ $(id -u) -eq 0 ]] && VERIFIER_AS_ROOT=(--user root)
[[ -x $AGENT ]] || die "no agent binary at $AGENT (set DEVID_BIN)"

# shellcheck source=tests/lib/check.sh
. "$DEVID_SRC/tests/lib/check.sh"

# have TOOL: TOOL is a command on PATH.
have() {
    command -v "$1" >/dev/null 2>&1
}

# same_text A B: strings A and B are equal and not empty (two failed commands
# print the same nothing).
same_text() {
    [[ -n $1 ]] || { log "    first value is empty"; return 1; }
    [[ -n $2 ]] || { log "    second value is empty"; return 1; }
    [[ $1 == "$2" ]]
}

# differ_text A B: strings A and B are both non-empty and differ.
differ_text() {
    [[ -n $1 ]] || { log "    first value is empty"; return 1; }
    [[ -n $2 ]] || { log "    second value is empty"; return 1; }
    [[ $1 != "$2" ]]
}

# same_file A B: files A and B exist, are not empty, and are equal.
same_file() {
    [[ -s $1 ]] || { log "    missing or empty: $1"; return 1; }
    [[ -s $2 ]] || { log "    missing or empty: $2"; return 1; }
    cmp -s "$1" "$2"
}

# differ_file A B: files A and B exist, are not empty, and differ.
differ_file() {
    [[ -s $1 ]] || { log "    missing or empty: $1"; return 1; }
    [[ -s $2 ]] || { log "    missing or empty: $2"; return 1; }
    ! cmp -s "$1" "$2"
}

# cert_pub_der CERT OUT: the public key of certificate CERT, DER, into OUT.
# Fails when openssl fails or writes nothing.
cert_pub_der() {
    local pem
    rm -f "$2"
    pem=$(openssl x509 -in "$1" -noout -pubkey 2>/dev/null) && [[ -n $pem ]] ||
        { log "    no public key in certificate $1"; return 1; }
    openssl pkey -pubin -outform DER -out "$2" <<<"$pem" 2>/dev/null && [[ -s $2 ]]
}

# tpm_pub_der HANDLE OUT: the public key at persistent HANDLE of the TPM that
# TPM2TOOLS_TCTI names (`tpm NAME tpm_pub_der ...`), DER, into OUT. Fails when
# tpm2_readpublic or openssl fails or writes nothing.
tpm_pub_der() {
    rm -f "$2" "$2.pem"
    timeout 30 tpm2_readpublic -c "$1" -f pem -o "$2.pem" >/dev/null 2>&1 && [[ -s $2.pem ]] ||
        { log "    tpm2_readpublic -c $1 failed or wrote no key"; return 1; }
    openssl pkey -pubin -in "$2.pem" -outform DER -out "$2" 2>/dev/null && [[ -s $2 ]]
}

# agent_attempts FILE: the number of attempts an agent's log FILE records
# ("attempt N: enrolling with ..." lines); prints nothing when FILE is missing.
agent_attempts() {
    [[ -r $1 ]] || return 1
    grep -c "^devid-agent: info: attempt [0-9]*: enrolling with " "$1"
}

# agent_one_attempt FILE: the agent's log FILE records exactly one attempt,
# attempt 1, and no retry (it stopped at once).
agent_one_attempt() {
    local n
    n=$(agent_attempts "$1")
    [[ $n == 1 ]] || { log "    $1 records ${n:-no} attempts, want 1"; return 1; }
    grep -q "attempt 1: enrolling with " "$1" && ! grep -q "retrying in" "$1"
}

# agent_waits_ok FILE [MIN_S]: the agent's log FILE records at least one retry,
# and every "retrying in X s (backoff ceiling C ms[, Retry-After honoured], N s
# left)" waits at most its jitter ceiling C (unless Retry-After asked for more),
# at least MIN_S seconds, and not past the deadline: X < N + 1, N being the
# whole seconds left. Checked from the agent's own words, not the wall clock.
agent_waits_ok() {
    local delay='retrying in \([0-9.]*\) s' ceiling='(backoff ceiling \([0-9]*\) ms'
    local ra='\(, Retry-After honoured\)\{0,1\}' left=', \([0-9]*\) s left)'
    [[ -r $1 ]] || return 1
    # One line per wait: "X C N [, Retry-After honoured]".
    sed -n "s/.*$delay $ceiling$ra$left.*/\\1 \\2 \\4 [\\3]/p" "$1" |
        awk -v min="${2:-0}" '
            { n++; ra = ($0 ~ /Retry-After/) }
            !ra && $1 * 1000 > $2 { print "    wait " $1 " s above its ceiling " $2 " ms"; bad = 1 }
            $1 < min { print "    wait " $1 " s below " min " s"; bad = 1 }
            $1 >= $3 + 1 { print "    wait " $1 " s past the deadline (" $3 " s left)"; bad = 1 }
            END { if (n == 0) print "    no retry logged"; exit (n == 0 || bad) }' >&2
}

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds; fails if it
# has not after SECONDS (a bound against hangs, generous: not a timing check).
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# crl_lists URL CA_BUNDLE SERIAL [OUT]: the CRL the verifier at URL serves
# (GET /v1/crl, fetched into OUT, default $DEVID_TMP/crl.der) lists SERIAL
# (hex, any case, leading zeros ignored). 1 when it does not; 2 when the CRL
# cannot be fetched or parsed.
crl_lists() {
    local out=${4:-$DEVID_TMP/crl.der} text want
    [[ -n $3 ]] || { log "crl_lists: no serial given"; return 2; }
    want=$(tr 'A-Z' 'a-z' <<<"$3" | sed 's/^0*//')
    curl -sf --cacert "$2" "$1/v1/crl" -o "$out" || return 2
    text=$(openssl crl -inform DER -in "$out" -noout -text) || return 2
    tr 'A-Z' 'a-z' <<<"$text" | sed -n 's/^ *serial number: *0*//p' | grep -qx "$want"
}

# crl_lists_soon URL CA_BUNDLE SERIAL: crl_lists within 30 s. A verifier
# rebuilds its CRL within [crl] poll_seconds of a revocation; the bound is
# against hangs, not a timing check.
crl_lists_soon() {
    wait_for 30 crl_lists "$@"
}

# wait_port PORT SECONDS: wait until something listens on 127.0.0.1:PORT.
wait_port() {
    local port=$1 deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# verifier_start NAME ARGS...: start the verifier with ARGS after `serve`;
# exports VERIFIER_URL, VERIFIER_LOG, VERIFIER_PID.
verifier_start() {
    local name=$1 port attempt
    shift
    for ((attempt = 0; attempt < 5; attempt++)); do
        port=$(devid_free_port) || return 1
        verifier_start_at "$name" "$port" "$@" 2>/dev/null && return 0
    done
    sed 's/^/    /' "$VERIFIER_LOG" >&2
    return 1
}

# listening_since LOG PORT N: LOG has more than N "listening on" lines for
# 127.0.0.1:PORT (serve logs one once its workers run).
listening_since() {
    [[ $(grep -c "listening on 127.0.0.1:$2 " "$1" 2>/dev/null) -gt $3 ]]
}

# serving_or_gone PID LOG PORT N: listening_since, or PID has exited.
serving_or_gone() {
    listening_since "$2" "$3" "$4" || ! pid_alive "$1"
}

# verifier_start_at NAME PORT ARGS...: start the verifier on 127.0.0.1:PORT
# with ARGS after `serve` (the log, VERIFIER_LOG, is appended to); exports
# VERIFIER_URL, VERIFIER_LOG, VERIFIER_PID. Fails when it does not listen.
# It returns once the workers run (the log says so), not when the port is
# bound: serve binds before it drops root and opens the ledger.
# A command in the array VERIFIER_WRAP, if set, runs it (it must exec it,
# as setpriv does, so that the pid is the verifier's).
verifier_start_at() {
    local name=$1 port=$2 user=() before
    shift 2
    VERIFIER_LOG=$DEVID_TMP/verifier-$name.log
    before=$(grep -c "listening on 127.0.0.1:$port " "$VERIFIER_LOG" 2>/dev/null)
    [[ " $* " == *" --user "* ]] || user=(${VERIFIER_AS_ROOT[@]+"${VERIFIER_AS_ROOT[@]}"})
    # No metrics listener unless the test asks for one: the default port
    # would collide between tests running in parallel.
    ${VERIFIER_WRAP[@]+"${VERIFIER_WRAP[@]}"} "$VERIFIER" serve --listen "127.0.0.1:$port" \
        --metrics-listen "" ${user[@]+"${user[@]}"} "$@" >>"$VERIFIER_LOG" 2>&1 &
    VERIFIER_PID=$!
    DEVID_PIDS+=("$VERIFIER_PID")
    DEVID_PIDFILES+=("")
    if wait_port "$port" 10 &&
        wait_for 20 serving_or_gone "$VERIFIER_PID" "$VERIFIER_LOG" "$port" "${before:-0}" &&
        pid_alive "$VERIFIER_PID"; then
        VERIFIER_URL=https://127.0.0.1:$port
        export VERIFIER_URL VERIFIER_LOG VERIFIER_PID
        return 0
    fi
    stop_pid "$VERIFIER_PID"
    sed 's/^/    /' "$VERIFIER_LOG" >&2
    return 1
}

# device_new NAME CADIR SERIAL MODEL [factory provision args...]: a fresh swtpm
# behind its own tpm2-abrmd, provisioned by the factory. Writes
# $DEVID_TMP/dev-NAME/env with DBUS_SESSION_BUS_ADDRESS and TCTI for `agent`.
device_new() {
    local name=$1 ca=$2 serial=$3 model=$4 dir
    shift 4
    dir=$DEVID_TMP/dev-$name
    mkdir -p "$dir"
    swtpm_start "$dir/tpm" || return 1
    abrmd_start || return 1
    "$FACTORY" provision --ca "$ca" --tcti "$ABRMD_TCTI" --serial "$serial" --model "$model" \
        --out "$dir/factory" "$@" >"$dir/factory.log" 2>&1 || {
        sed 's/^/    /' "$dir/factory.log" >&2
        return 1
    }
    {
        printf 'export DBUS_SESSION_BUS_ADDRESS=%q\n' "$DBUS_SESSION_BUS_ADDRESS"
        printf 'export DEV_TCTI=%q\n' "$ABRMD_TCTI"
        printf 'export DEV_DIR=%q\n' "$dir"
    } >"$dir/env"
}

# agent NAME ARGS...: run devid-agent ARGS with device NAME's TPM, in a subshell.
agent() {
    local name=$1
    shift
    (
        # shellcheck disable=SC1090
        . "$DEVID_TMP/dev-$name/env"
        "$AGENT" "$@" --tcti "$DEV_TCTI"
    )
}

# tpm NAME CMD...: run a tpm2-tools command against device NAME's TPM.
tpm() {
    local name=$1
    shift
    (
        # shellcheck disable=SC1090
        . "$DEVID_TMP/dev-$name/env"
        TPM2TOOLS_TCTI=$DEV_TCTI "$@"
    )
}

# issue_idevid CADIR OUT SUBJECT SERIAL [PUBKEY]: an IDevID certificate
# OUT.pem from the intermediate CA in CADIR (devid-factory ca), with the
# factory's profile: SUBJECT as given (openssl -subj syntax, any bytes) and
# the hardwareModuleName SAN with SERIAL. For the public key PUBKEY (PEM; for
# instance a TPM's key) or, without it, a new software P-256 key in OUT.key.
issue_idevid() {
    local ca=$1 out=$2 subj=$3 serial=$4 pub=${5:-} key force=()
    key=$out.key
    if [[ -n $pub ]]; then
        key=$out.throwaway.key
        force=(-force_pubkey "$pub")
    fi
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key" 2>"$out.err" &&
        openssl req -new -key "$key" -utf8 -subj "$subj" -out "$out.csr" 2>>"$out.err" ||
        return 1
    cat >"$out.cnf" <<EOF
[v3_idevid]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hmn
[hmn]
hwType = OID:1.3.6.1.4.1.32473.1.1
hwSerialNum = OCTETSTRING:$serial
EOF
    openssl x509 -req -in "$out.csr" -CA "$ca/intermediate.pem" -CAkey "$ca/intermediate.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 365 "${force[@]}" \
        -extfile "$out.cnf" -extensions v3_idevid -out "$out.pem" 2>>"$out.err"
}

# need TOOL...: every TOOL is on PATH, or the test dies naming the installer.
need() {
    local t
    for t in "$@"; do
        have "$t" || die "$t is missing (deploy/install-deps.sh --tests installs it)"
    done
}

# need_py_protobuf: sets PY to the system python, the one python3-protobuf
# is installed for (the python3 on PATH may be another), or dies.
need_py_protobuf() {
    PY=/usr/bin/python3
    "$PY" -c 'import google.protobuf' 2>/dev/null ||
        die "$PY has no protobuf module (python3-protobuf; deploy/install-deps.sh --tests)"
}

# interop_client DEV URL WORK ARGS...: the spec-written client
# (tests/interop/client.py; need_py_protobuf first) enrolls device DEV (made
# by device_new) at URL with the lab PKI's CA bundle; its files go to WORK
# (result.json, cert.pem, ...), its output to WORK.log. Returns its status.
interop_client() {
    local dev=$1 url=$2 work=$3
    shift 3
    (
        # shellcheck disable=SC1090
        . "$DEVID_TMP/dev-$dev/env"
        timeout 300 "$PY" "$DEVID_SRC/tests/interop/client.py" --url "$url" \
            --ca-bundle "$DEVID_TMP/pki/tls-ca.pem" --idevid-cert "$DEV_DIR/factory/idevid.pem" \
            --chain "$DEV_DIR/factory/chain.pem" --proto "$DEVID_SRC/proto" --tcti "$DEV_TCTI" \
            --work "$work" "$@"
    ) >"$work.log" 2>&1
}

# interop_field WORK KEY[.KEY]: a value from WORK/result.json (booleans as
# true/false); prints nothing when it is absent.
interop_field() {
    "$PY" - "$1/result.json" "$2" <<'EOF' 2>/dev/null
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
if isinstance(v, bool):
    v = "true" if v else "false"
print("" if v is None else v)
EOF
}

# lab_pki: the manufacturer "Acme Devices" (devid-factory ca) in
# $DEVID_TMP/acme, its root alone in $DEVID_TMP/roots, and a verifier's lab
# PKI (devid-dev-pki) in $DEVID_TMP/pki; dies if one cannot be made.
lab_pki() {
    "$FACTORY" ca --dir "$DEVID_TMP/acme" --name "Acme Devices" >/dev/null || die "factory ca failed"
    "$DEV_PKI" --dir "$DEVID_TMP/pki" >/dev/null || die "dev pki failed"
    mkdir -p "$DEVID_TMP/roots"
    cp "$DEVID_TMP/acme/root.pem" "$DEVID_TMP/roots/acme.pem"
}

# verifier_stop_checked: two checks, that the verifier still runs and that
# SIGTERM stops it with exit 0.
verifier_stop_checked() {
    local rc
    check "verifier still running" pid_alive "$VERIFIER_PID"
    kill -TERM "$VERIFIER_PID"
    wait "$VERIFIER_PID"
    rc=$?
    check "verifier exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
}
