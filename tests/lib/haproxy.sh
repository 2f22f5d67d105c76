# shellcheck shell=bash
# tests/lib/haproxy.sh: a real HAProxy (Debian's haproxy package) in front of
# verifier replicas, started from deploy/haproxy/haproxy.cfg itself: TCP
# mode, PROXY protocol v2 to the replicas, GET /healthz on each replica's
# metrics port, a stats page. Only the addresses change, and the checks run
# every 300 ms instead of 2 s. Source after swtpm.sh and devid.sh.
#
#   haproxy_start NAME ADDR:PORT:METRICS_PORT...
#                      one server per replica, v1, v2, ... (its TLS address
#                      and the metrics port its health check asks); exports
#                      HAPROXY_URL, HAPROXY_PORT, HAPROXY_STATS, HAPROXY_PID,
#                      HAPROXY_LOG (one tcplog line per connection: the
#                      client's address first)
#   haproxy_server_state SERVER   UP, DOWN, ... of server vN (stats page)

haproxy_start() {
    local name=$1 port sport cfg servers="" spec addr mport i=0
    shift
    command -v haproxy >/dev/null || die "no haproxy (deploy/install-deps.sh --tests installs it)"
    port=$(devid_free_port) || return 1
    sport=$((port + 1))
    cfg=$DEVID_TMP/haproxy-$name.cfg
    for spec in "$@"; do
        i=$((i + 1))
        addr=${spec%:*}
        mport=${spec##*:}
        servers+="    server v$i $addr port $mport"$'\n'
    done
    awk -v port="$port" -v sport="$sport" -v servers="$servers" '
        $0 == "    bind :8443" { print "    bind 127.0.0.1:" port; next }
        $0 == "    bind 127.0.0.1:8404" { print "    bind 127.0.0.1:" sport; next }
        /^    default-server / { sub(/ inter 2s /, " inter 300ms ") }
        /^    server verifier-/ { if (!done) printf "%s", servers; done = 1; next }
        { print }' "$DEVID_SRC/deploy/haproxy/haproxy.cfg" >"$cfg"
    grep -q "bind 127.0.0.1:$port\$" "$cfg" && grep -q "bind 127.0.0.1:$sport\$" "$cfg" &&
        grep -q "inter 300ms" "$cfg" && grep -q "^    server v1 " "$cfg" ||
        die "deploy/haproxy/haproxy.cfg no longer has the lines tests/lib/haproxy.sh rewrites"
    haproxy -c -q -f "$cfg" || die "HAProxy refuses $cfg"
    HAPROXY_LOG=$DEVID_TMP/haproxy-$name.log
    haproxy -f "$cfg" -db >"$HAPROXY_LOG" 2>&1 &
    HAPROXY_PID=$!
    DEVID_PIDS+=("$HAPROXY_PID")
    DEVID_PIDFILES+=("")
    wait_port "$port" 10 || { sed 's/^/    /' "$HAPROXY_LOG" >&2; return 1; }
    HAPROXY_PORT=$port
    HAPROXY_URL=https://127.0.0.1:$port
    HAPROXY_STATS=http://127.0.0.1:$sport/stats
    export HAPROXY_PORT HAPROXY_URL HAPROXY_STATS HAPROXY_PID HAPROXY_LOG
}

haproxy_server_state() {
    curl -sf "$HAPROXY_STATS;csv" | awk -F, -v s="$1" '$1 == "verifiers" && $2 == s {print $18}'
}

# haproxy_is SERVER STATE: server vN is in STATE now, exactly (UP, DOWN; not
# a transition such as "DOWN 1/2").
haproxy_is() {
    [[ $(haproxy_server_state "$1") == "$2" ]]
}
