# shellcheck shell=bash
# tests/lib/devid.sh: starting devid's own processes in integration tests.
# Source after swtpm.sh. Uses DEVID_BIN (the build directory; ctest sets it) and
# DEVID_SRC (the source tree).
#
#   verifier_start NAME ARGS...   start devid-verifier serve on a free loopback
#                                 port; exports VERIFIER_URL, VERIFIER_LOG
#   device_new NAME CA SERIAL MODEL [factory args...]
#                                 fresh swtpm + tpm2-abrmd, factory-provisioned;
#                                 sets DEV_<NAME>_ENV (a file of exports)
#   agent NAME ARGS...            run devid-agent with that device's TPM

DEVID_SRC=${DEVID_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
DEVID_BIN=${DEVID_BIN:-$DEVID_SRC/build}
VERIFIER=$DEVID_BIN/verifier/devid-verifier
AGENT=$DEVID_BIN/agent/devid-agent
FACTORY=$DEVID_SRC/deploy/factory/devid-factory
DEV_PKI=$DEVID_SRC/deploy/dev/devid-dev-pki

[[ -x $VERIFIER ]] || die "no verifier binary at $VERIFIER (set DEVID_BIN)"
[[ -x $AGENT ]] || die "no agent binary at $AGENT (set DEVID_BIN)"

PASSED=0
FAILED=0

# check DESCRIPTION CMD...: run CMD, count it as passed or failed.
check() {
    local what=$1
    shift
    if "$@"; then
        PASSED=$((PASSED + 1))
        log "ok: $what"
    else
        FAILED=$((FAILED + 1))
        log "FAIL: $what"
    fi
}

# finish: print the closing count line and exit with the verdict.
finish() {
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
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
    VERIFIER_LOG=$DEVID_TMP/verifier-$name.log
    for ((attempt = 0; attempt < 5; attempt++)); do
        port=$(devid_free_port) || return 1
        # No metrics listener unless the test asks for one: the default port
        # would collide between tests running in parallel.
        "$VERIFIER" serve --listen "127.0.0.1:$port" --metrics-listen "" "$@" \
            >>"$VERIFIER_LOG" 2>&1 &
        VERIFIER_PID=$!
        DEVID_PIDS+=("$VERIFIER_PID")
        DEVID_PIDFILES+=("")
        if wait_port "$port" 10 && pid_alive "$VERIFIER_PID"; then
            VERIFIER_URL=https://127.0.0.1:$port
            export VERIFIER_URL VERIFIER_LOG VERIFIER_PID
            return 0
        fi
        stop_pid "$VERIFIER_PID"
    done
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
