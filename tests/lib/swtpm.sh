# shellcheck shell=bash
# tests/lib/swtpm.sh: software TPM helpers for devid integration tests.
#
# Source this file from a bash test script:
#
#   . "$(dirname "$0")/../lib/swtpm.sh"
#   devid_tmpdir                 # DEVID_TMP, removed on exit
#   swtpm_start "$DEVID_TMP/tpm" # SWTPM_PORT, SWTPM_TCTI, SWTPM_PID, ...
#   abrmd_start                  # ABRMD_TCTI, DBUS_SESSION_BUS_ADDRESS
#
# Everything is made for tests that run in parallel: ports are picked at random (and
# retried if taken), each swtpm has its own state directory, each tpm2-abrmd has its
# own private D-Bus daemon. Sourcing installs an EXIT trap that runs devid_cleanup,
# which stops every process started here. A test that needs its own EXIT trap must
# call devid_cleanup from it. Every wait is bounded (a few seconds at most).
#
# Exported variables (after the last swtpm_start / abrmd_start call):
#   SWTPM_PORT      TPM command port P (the control port is P+1)
#   SWTPM_CTRL_PORT P+1
#   SWTPM_TCTI      "swtpm:host=127.0.0.1,port=P" (one client at a time!)
#   SWTPM_PID       pid of the swtpm daemon
#   SWTPM_DIR       absolute state directory of that swtpm
#   DBUS_SESSION_BUS_ADDRESS  the test's private session bus (one per test process,
#                   shared by all its tpm2-abrmd instances)
#   ABRMD_TCTI      "tabrmd:bus_name=com.intel.tss2.Tabrmd.p<pid>n<k>,bus_type=session"
#                   (needs DBUS_SESSION_BUS_ADDRESS; names one TPM even when a test
#                   runs several)
#   ABRMD_PID, ABRMD_BUS_NAME, DBUS_PID
#   DEVID_TMP       scratch directory from devid_tmpdir
#
# While a tpm2-abrmd holds the swtpm connection, direct SWTPM_TCTI clients block:
# use ABRMD_TCTI from then on.

# Ports are picked below the kernel's ephemeral range, so that no outgoing
# connection takes one between the pick and the bind.
DEVID_EPHEMERAL_LO=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
DEVID_PORT_MIN=${DEVID_PORT_MIN:-10000}
DEVID_PORT_MAX=${DEVID_PORT_MAX:-$((DEVID_EPHEMERAL_LO > 12000 ? DEVID_EPHEMERAL_LO - 2 : 60000))}

TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}

# Processes to stop, in start order; devid_cleanup stops them in reverse.
DEVID_PIDS=()
DEVID_PIDFILES=()
# Commands devid_cleanup runs first, newest first (servers with their own stop
# command, such as PostgreSQL's pg_ctl).
DEVID_CLEANUP_CMDS=()
DEVID_TMP=${DEVID_TMP:-}

# log MSG...: print a message prefixed with the test name, on stderr.
log() {
    printf '[%s] %s\n' "$TEST_NAME" "$*" >&2
}

# die MSG...: print an error prefixed with the test name and exit 1 (cleanup runs).
die() {
    printf '[%s] ERROR: %s\n' "$TEST_NAME" "$*" >&2
    exit 1
}

# root_searchable: as root, let other users search /. A root directory only
# root may search (a chroot made in a mktemp directory is mode 0700) stops
# every other user, the postgres server or a verifier that dropped root, at
# the first lookup; it gets o+x, and the log says so.
root_searchable() {
    [[ $(id -u) -eq 0 && $(stat -c '%A' /) != *x ]] || return 0
    log "the root directory is mode $(stat -c '%a' /): no user but root can reach a file; giving it o+x"
    chmod o+x /
}

# devid_tmpdir: create DEVID_TMP (a fresh directory, absolute path), removed at exit
# unless DEVID_KEEP_TMP=1.
devid_tmpdir() {
    DEVID_TMP=$(mktemp -d "${TMPDIR:-/tmp}/devid-${TEST_NAME}.XXXXXX") ||
        die "cannot create a temporary directory"
    export DEVID_TMP
}

# port_in_use PORT: true if something listens on 127.0.0.1:PORT (or any address).
port_in_use() {
    local port=$1
    # Any socket on the port counts, TIME-WAIT included: a server that binds
    # without SO_REUSEADDR fails on those.
    if ss -Htan "sport = :$port" 2>/dev/null | grep -q .; then
        return 0
    fi
    # Fall back to a connect probe; a bounded one.
    if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
        return 0
    fi
    return 1
}

# devid_free_port: print a port P such that P and P+1 are both free on 127.0.0.1.
# P is random in [DEVID_PORT_MIN, DEVID_PORT_MAX). There is
# still a window between this check and the bind: swtpm_start retries on failure.
devid_free_port() {
    local i p span=$((DEVID_PORT_MAX - DEVID_PORT_MIN - 1))
    for ((i = 0; i < 200; i++)); do
        p=$((DEVID_PORT_MIN + (RANDOM * 32768 + RANDOM) % span))
        if ! port_in_use "$p" && ! port_in_use "$((p + 1))"; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    log "no free port pair found in $DEVID_PORT_MIN-$DEVID_PORT_MAX"
    return 1
}

# wait_tpm TCTI SECONDS: wait until a TPM answers on TCTI, at most SECONDS.
wait_tpm() {
    local tcti=$1 secs=$2 deadline
    deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        if timeout 3 tpm2_getcap -T "$tcti" properties-fixed >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# pid_alive PID: true if PID runs (a zombie counts as gone: daemons are reparented
# to whatever reaps orphans here, which may take seconds to do so).
pid_alive() {
    local st
    [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}

# stop_pid PID: SIGTERM, wait up to ~3 s, then SIGKILL.
stop_pid() {
    local pid=$1 i
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 30; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    log "process $pid did not exit"
}

# swtpm_start DIR: start a fresh swtpm daemon with its state in DIR (created; made
# absolute). Exports SWTPM_PORT, SWTPM_CTRL_PORT, SWTPM_TCTI, SWTPM_PID, SWTPM_DIR.
# Returns non-zero (after logging why) if no swtpm could be started.
swtpm_start() {
    local dir=${1:-}
    local attempt port pidfile logfile pid
    [[ -n $dir ]] || die "swtpm_start: state directory required"
    mkdir -p "$dir" || die "swtpm_start: cannot create $dir"
    dir=$(cd "$dir" && pwd -P) || die "swtpm_start: cannot resolve $dir"
    pidfile=$dir/swtpm.pid
    logfile=$dir/swtpm.log
    for ((attempt = 0; attempt < 5; attempt++)); do
        port=$(devid_free_port) || return 1
        rm -f "$pidfile"
        if ! timeout 5 swtpm socket --tpm2 \
            --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
            --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
            --tpmstate "dir=$dir" \
            --flags not-need-init,startup-clear \
            --log "file=$logfile" \
            --pid "file=$pidfile" \
            --daemon; then
            log "swtpm failed to start on port $port (attempt $((attempt + 1)))"
            continue
        fi
        pid=
        [[ -s $pidfile ]] && pid=$(<"$pidfile")
        if ! pid_alive "$pid"; then
            log "swtpm on port $port exited at once (attempt $((attempt + 1)))"
            continue
        fi
        DEVID_PIDS+=("$pid")
        DEVID_PIDFILES+=("$pidfile")
        if ! wait_tpm "swtpm:host=127.0.0.1,port=$port" 8; then
            log "swtpm on port $port does not answer; log: $logfile"
            stop_pid "$pid"
            continue
        fi
        SWTPM_PORT=$port
        SWTPM_CTRL_PORT=$((port + 1))
        SWTPM_TCTI="swtpm:host=127.0.0.1,port=$port"
        SWTPM_PID=$pid
        SWTPM_DIR=$dir
        export SWTPM_PORT SWTPM_CTRL_PORT SWTPM_TCTI SWTPM_PID SWTPM_DIR
        return 0
    done
    log "could not start swtpm in $dir"
    return 1
}

# swtpm_stop [PID]: stop one swtpm (default: SWTPM_PID) before the end of the test.
swtpm_stop() {
    stop_pid "${1:-${SWTPM_PID:-}}"
}

# abrmd_start [TCTI]: start a tpm2-abrmd in front of TCTI (default SWTPM_TCTI).
# The first call in a test also starts the test's private D-Bus session daemon;
# later calls (one per device) reuse it, and each tpm2-abrmd owns its own bus name,
# so ABRMD_TCTI names one TPM by itself. Exports DBUS_SESSION_BUS_ADDRESS, DBUS_PID,
# ABRMD_PID, ABRMD_BUS_NAME and
# ABRMD_TCTI="tabrmd:bus_name=com.intel.tss2.Tabrmd.<unique>,bus_type=session".
DEVID_ABRMD_COUNT=0
abrmd_start() {
    local tcti=${1:-${SWTPM_TCTI:-}} out addr dpid apid logfile name
    [[ -n $tcti ]] || die "abrmd_start: no TCTI (call swtpm_start first)"
    [[ -n $DEVID_TMP ]] || devid_tmpdir
    if ! pid_alive "${DBUS_PID:-}"; then
        out=$(timeout 5 dbus-daemon --session --fork --nosyslog \
            --print-address=1 --print-pid=1) || {
            log "dbus-daemon failed to start"
            return 1
        }
        addr=$(sed -n 1p <<<"$out")
        dpid=$(sed -n 2p <<<"$out")
        if [[ -z $addr || ! $dpid =~ ^[0-9]+$ ]]; then
            log "dbus-daemon printed no address/pid: $out"
            return 1
        fi
        DEVID_PIDS+=("$dpid")
        DEVID_PIDFILES+=("")
        DBUS_SESSION_BUS_ADDRESS=$addr
        DBUS_PID=$dpid
        export DBUS_SESSION_BUS_ADDRESS DBUS_PID
    fi

    DEVID_ABRMD_COUNT=$((DEVID_ABRMD_COUNT + 1))
    name=com.intel.tss2.Tabrmd.p$$n$DEVID_ABRMD_COUNT
    logfile=$DEVID_TMP/abrmd-$DEVID_ABRMD_COUNT.log
    tpm2-abrmd --allow-root --session --dbus-name="$name" --tcti "$tcti" --flush-all \
        >"$logfile" 2>&1 </dev/null &
    apid=$!
    DEVID_PIDS+=("$apid")
    DEVID_PIDFILES+=("")
    ABRMD_PID=$apid
    ABRMD_BUS_NAME=$name
    ABRMD_TCTI="tabrmd:bus_name=$name,bus_type=session"
    export ABRMD_PID ABRMD_BUS_NAME ABRMD_TCTI
    if ! wait_tpm "$ABRMD_TCTI" 8; then
        log "tpm2-abrmd does not answer on $ABRMD_TCTI; log: $logfile"
        sed 's/^/    /' "$logfile" >&2 || true
        return 1
    fi
    return 0
}

# devid_cleanup: stop every process started by this library (newest first), remove
# DEVID_TMP unless DEVID_KEEP_TMP=1. Safe to call more than once.
devid_cleanup() {
    local i pid
    for ((i = ${#DEVID_CLEANUP_CMDS[@]} - 1; i >= 0; i--)); do
        eval "${DEVID_CLEANUP_CMDS[i]}" >/dev/null 2>&1 || true
    done
    DEVID_CLEANUP_CMDS=()
    for ((i = ${#DEVID_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${DEVID_PIDS[i]}
        stop_pid "$pid"
        [[ -n ${DEVID_PIDFILES[i]} ]] && rm -f "${DEVID_PIDFILES[i]}"
    done
    DEVID_PIDS=()
    DEVID_PIDFILES=()
    if [[ -n $DEVID_TMP && -d $DEVID_TMP ]]; then
        if [[ ${DEVID_KEEP_TMP:-0} == 1 ]]; then
            log "kept $DEVID_TMP"
        else
            rm -rf -- "$DEVID_TMP"
        fi
    fi
}

trap devid_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
