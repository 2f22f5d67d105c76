# shellcheck shell=bash
# tests/lib/haproxy.sh: a real HAProxy (Debian's haproxy package) in front of
# verifier replicas, in TCP mode with PROXY protocol v2, as deploy/haproxy/
# haproxy.cfg configures it. Source after swtpm.sh.
#
#   haproxy_start NAME ADDR:PORT:METRICS_PORT...
#                      one server per replica (TLS port, and the metrics port
#                      its health check asks GET /healthz on); exports
#                      HAPROXY_URL, HAPROXY_PORT, HAPROXY_STATS, HAPROXY_PID
#   haproxy_server_state SERVER   UP, DOWN, ... from the stats page

haproxy_start() {
    local name=$1 port sport cfg i=0 spec addr mport
    shift
    command -v haproxy >/dev/null || die "no haproxy (deploy/install-deps.sh --tests installs it)"
    port=$(devid_free_port) || return 1
    sport=$((port + 1))
    cfg=$DEVID_TMP/haproxy-$name.cfg
    {
        printf 'global\n    maxconn 20000\n\n'
        printf 'defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n'
        printf '    timeout server 60s\n    timeout check 2s\n\n'
        printf 'listen stats\n    mode http\n    bind 127.0.0.1:%s\n    stats enable\n' "$sport"
        printf '    stats uri /stats\n\n'
        printf 'frontend devices\n    bind 127.0.0.1:%s\n    default_backend verifiers\n\n' "$port"
        printf 'backend verifiers\n    balance roundrobin\n    option httpchk GET /healthz\n'
        for spec in "$@"; do
            i=$((i + 1))
            addr=${spec%:*}
            mport=${spec##*:}
            printf '    server v%s %s send-proxy-v2 check port %s inter 500ms fall 2 rise 2\n' \
                "$i" "$addr" "$mport"
        done
    } >"$cfg"
    haproxy -f "$cfg" -db >"$DEVID_TMP/haproxy-$name.log" 2>&1 &
    HAPROXY_PID=$!
    DEVID_PIDS+=("$HAPROXY_PID")
    DEVID_PIDFILES+=("")
    wait_port "$port" 10 || { sed 's/^/    /' "$DEVID_TMP/haproxy-$name.log" >&2; return 1; }
    HAPROXY_PORT=$port
    HAPROXY_URL=https://127.0.0.1:$port
    HAPROXY_STATS=http://127.0.0.1:$sport/stats
    export HAPROXY_PORT HAPROXY_URL HAPROXY_STATS HAPROXY_PID
}

haproxy_server_state() {
    curl -sf "$HAPROXY_STATS;csv" | awk -F, -v s="$1" '$1 == "verifiers" && $2 == s {print $18}'
}
