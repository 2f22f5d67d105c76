#!/usr/bin/env bash
# The verifier's CPU per enrollment beside a peer doing less: nginx (Debian's
# nginx-light) with mutual TLS on the same server certificate and the same
# manufacturer root and intermediate, driven by `openssl s_time -new` with an
# IDevID-shaped client certificate sent with the intermediate, as devices send
# theirs (the leaf alone is measured too, and printed); and beside the crypto
# floor that `openssl speed` gives for the public-key operations one
# enrollment cannot avoid.
# CPU is read from /proc/PID/stat (utime + stime) of the verifier and of the
# signer process it forks, before and after each run, so the clients sharing
# the cores do not distort it. nginx is measured right before each verifier
# (and once after the last), and each verifier's ratio is to the nginx run
# next to it: the machine's speed drifts between runs. Prints figures; never
# fails on them (STYLE.md). Not run by ctest.
#
#   DEVID_BIN=build-rel tests/bench/bench_peer.sh
#
# Environment:
#   DEVID_BIN          build directory (default: <source>/build; use a
#                      Release or RelWithDebInfo build)
#   BENCH_VERIFIERS    "LABEL=PATH ..." verifier binaries measured one after
#                      the other in this run, e.g. "before=/tmp/old after=..."
#                      (default: "this=$DEVID_BIN/verifier/devid-verifier")
#   BENCH_DEVICES      enrollments in the peak run (default 1000)
#   BENCH_PARALLEL     devices at a time in the peak run (default 16)
#   BENCH_RATE_SECONDS length of the run at half the peak rate (default 10)
#   BENCH_SECONDS      length of the nginx run and of each `openssl speed`
#                      test (default 10 and 3)
#   BENCH_WORKERS      verifier worker threads (default: nproc)
#
# What the floor counts, per enrollment: the TLS 1.3 handshake's ephemeral
# key and its key agreement (X25519, the group both clients offer first),
# two ECDSA P-256 signatures (the server's CertificateVerify and the issued
# certificate) and six verifications (the IDevID by the intermediate, the
# intermediate by the root, the client's CertificateVerify, the CSR's
# self-signature, the signed challenge and the certify signature). The
# ephemeral key is priced as one X25519 operation.
set -uo pipefail
TEST_NAME=bench_peer
here=$(cd "$(dirname "$0")" && pwd -P)
. "$here/../lib/swtpm.sh"
. "$here/../lib/devid.sh"

FLEETSIM=$DEVID_BIN/tests/fleetsim/devid-fleetsim
[[ -x $FLEETSIM ]] || die "no fleet simulator at $FLEETSIM (build target devid-fleetsim; set DEVID_BIN)"
NGINX=${NGINX:-/usr/sbin/nginx}
[[ -x $NGINX ]] || die "no nginx at $NGINX (apt-get install nginx-light)"
DEVICES=${BENCH_DEVICES:-1000}
PAR=${BENCH_PARALLEL:-16}
RATE_SECS=${BENCH_RATE_SECONDS:-10}
NGINX_SECS=${BENCH_SECONDS:-10}
SPEED_SECS=3
WORKERS=${BENCH_WORKERS:-$(nproc)}
read -r -a VERIFIERS <<<"${BENCH_VERIFIERS:-this=$VERIFIER}"
HZ=$(getconf CLK_TCK)

devid_tmpdir
T=$DEVID_TMP
"$FACTORY" ca --dir "$T/acme" --name "Bench Devices" >/dev/null || die "factory ca failed"
"$DEV_PKI" --dir "$T/pki" >/dev/null || die "dev pki failed"
mkdir -p "$T/roots"
cp "$T/acme/root.pem" "$T/roots/bench.pem"

# ticks PID: CPU time (utime + stime, clock ticks) the process used so far.
ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# tree_ticks PID: ticks of PID and of its children: the verifier and the
# signer process it forks (which holds the CA key and signs every
# certificate), so that privilege separation is not left out of the count.
tree_ticks() {
    local t c
    t=$(ticks "$1")
    for c in $(pgrep -P "$1"); do
        t=$((t + $(ticks "$c" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

# ms TICKS COUNT: milliseconds of CPU per item.
ms() {
    awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.3f", t * 1000 / hz / n; else print "-" }'
}

get() { sed -n "s/^$1=//p" "$2" | head -n 1; }

fleet() {
    timeout 900 "$FLEETSIM" --url "$VERIFIER_URL" --ca-bundle "$T/pki/tls-ca.pem" \
        --factory-ca "$T/acme" --retries 3 "$@"
}

# nginx: one process (no master), mutual TLS, the same server key and the
# manufacturer's root and intermediate as the client CAs.
issue_idevid "$T/acme" "$T/dev" "/O=Bench Devices/CN=Sim Gateway/serialNumber=NGX-1" NGX-1 ||
    die "cannot issue the nginx client certificate"
cat "$T/acme/root.pem" "$T/acme/intermediate.pem" >"$T/client-cas.pem"
mkdir -p "$T/nginx"
nport=$(devid_free_port) || die "no free port"
cat >"$T/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    server {
        listen 127.0.0.1:$nport ssl;
        ssl_certificate $T/pki/server.pem;
        ssl_certificate_key $T/pki/server.key;
        ssl_client_certificate $T/client-cas.pem;
        ssl_verify_client on;
        ssl_verify_depth 3;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / { return 200 "ok\n"; }
    }
}
EOF
"$NGINX" -p "$T/nginx" -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf" &
NGINX_PID=$!
DEVID_PIDS+=("$NGINX_PID")
DEVID_PIDFILES+=("")
wait_port "$nport" 10 || die "nginx did not start: $(cat "$T/nginx/error.log")"
# client_cert_len ARGS...: the length of the Certificate message the client
# sends with s_time's certificate options ARGS, read from s_client -msg.
client_cert_len() {
    local hex
    hex=$(echo | openssl s_client -connect "127.0.0.1:$nport" -cert "$T/dev.pem" \
        -key "$T/dev.key" "$@" -msg 2>/dev/null |
        sed -n 's/^>>> .*Handshake \[length \([0-9a-f]*\)\], Certificate$/\1/p' | head -n 1)
    [[ -n $hex ]] && echo $((16#$hex))
}

# nginx_run NAME ARGS...: NGINX_MS[NAME] and NGINX_RATE[NAME] for s_time
# -new with certificate options ARGS.
declare -A NGINX_MS NGINX_RATE NGINX_N NGINX_CERT
nginx_run() {
    local name=$1 c0 c1 n
    shift
    openssl s_time -connect "127.0.0.1:$nport" -new -cert "$T/dev.pem" -key "$T/dev.key" "$@" \
        -www / -time 2 >/dev/null 2>&1
    c0=$(ticks "$NGINX_PID")
    openssl s_time -connect "127.0.0.1:$nport" -new -cert "$T/dev.pem" -key "$T/dev.key" "$@" \
        -www / -time "$NGINX_SECS" >"$T/s_time-$name.out" 2>&1
    c1=$(ticks "$NGINX_PID")
    n=$(awk '/connections in/ { print $1; exit }' "$T/s_time-$name.out")
    NGINX_N[$name]=${n:-0}
    NGINX_MS[$name]=$(ms $((c1 - c0)) "${n:-0}")
    NGINX_RATE[$name]=$(awk -v n="${n:-0}" -v s="$NGINX_SECS" 'BEGIN { printf "%.1f", n / s }')
    NGINX_CERT[$name]=$(client_cert_len "$@")
}

# A device sends its IDevID and the manufacturer's intermediate, and so does
# fleetsim: nginx is compared with the same chain. s_time sends the chain it
# builds from -CAfile; with the intermediate alone there, that is the
# IDevID and the intermediate. nginx_chain NAME measures that.
nginx_chain() { nginx_run "$1" -CAfile "$T/acme/intermediate.pem"; }

# The verifier: a warm-up, the peak run (CPU and wall rate), then a run paced
# at half the peak rate for latency.
declare -A V_MS V_SIGNER V_RATE V_P50 V_P99 V_OK
n_run=0
for spec in "${VERIFIERS[@]}"; do
    label=${spec%%=*}
    bin=${spec#*=}
    [[ -x $bin ]] || die "no verifier binary at $bin"
    n_run=$((n_run + 1))
    # nginx right before, so that the ratio compares neighbours in time:
    # the machine's speed drifts by more than 10 % between runs.
    nginx_chain "v:$label"
    VERIFIER=$bin verifier_start "$label" --tls-cert "$T/pki/server.pem" \
        --tls-key "$T/pki/server.key" --roots "$T/roots" \
        --intermediates "$T/acme/intermediate.pem" --ca-cert "$T/pki/opca.pem" \
        --ca-key "$T/pki/opca.key" --token-key "$T/pki/token.key" \
        --ledger "sqlite:$T/ledger-$n_run.db" --workers "$WORKERS" ||
        die "verifier $label did not start"
    fleet --devices 50 --parallel 8 --serial-prefix "W$n_run" >"$T/warm-$n_run.report" 2>&1
    c0=$(tree_ticks "$VERIFIER_PID")
    s0=$(($(tree_ticks "$VERIFIER_PID") - $(ticks "$VERIFIER_PID")))
    fleet --devices "$DEVICES" --parallel "$PAR" --serial-prefix "P$n_run" \
        >"$T/peak-$n_run.report" 2>"$T/peak-$n_run.err"
    c1=$(tree_ticks "$VERIFIER_PID")
    s1=$(($(tree_ticks "$VERIFIER_PID") - $(ticks "$VERIFIER_PID")))
    ok=$(get ok "$T/peak-$n_run.report")
    V_SIGNER[$label]=$(ms $((s1 - s0)) "${ok:-0}")
    V_OK[$label]=${ok:-0}/$DEVICES
    V_MS[$label]=$(ms $((c1 - c0)) "${ok:-0}")
    V_RATE[$label]=$(get enrollments_per_s "$T/peak-$n_run.report")
    half=$(awk -v r="${V_RATE[$label]:-0}" 'BEGIN { h = int(r / 2); print h < 1 ? 1 : h }')
    fleet --devices $((half * RATE_SECS)) --parallel 64 --rate "$half" \
        --serial-prefix "H$n_run" >"$T/half-$n_run.report" 2>"$T/half-$n_run.err"
    V_P50[$label]="$(get latency_ms.p50 "$T/half-$n_run.report")"
    V_P99[$label]="$(get latency_ms.p99 "$T/half-$n_run.report")"
    V_RATE[$label]+=" (half: $half/s, ok $(get ok "$T/half-$n_run.report")/$((half * RATE_SECS)))"
    stop_pid "$VERIFIER_PID"
done

# Once more after the last verifier, and the leaf alone.
nginx_chain after-all
nginx_run leaf
stop_pid "$NGINX_PID"

# The floor, from openssl speed (-mr: +F4:i:bits:sign/s:verify/s, +F5:i:bits:ops/s).
openssl speed -mr -seconds "$SPEED_SECS" ecdsap256 ecdhx25519 >"$T/speed.out" 2>/dev/null
read -r SIGN_MS VERIFY_MS < <(awk -F: '/^\+F4:/ { printf "%.4f %.4f\n", 1000 / $4, 1000 / $5 }' \
    "$T/speed.out")
ECDH_MS=$(awk -F: '/^\+F5:/ { printf "%.4f\n", 1000 / $4; exit }' "$T/speed.out")
FLOOR_MS=$(awk -v s="$SIGN_MS" -v v="$VERIFY_MS" -v e="$ECDH_MS" \
    'BEGIN { printf "%.3f", 2 * e + 2 * s + 6 * v }')

printf 'devid verifier beside nginx and the crypto floor: %s, %s cores (%s), %s\n' "$(uname -m)" \
    "$(nproc)" "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" \
    "$(openssl version | cut -d' ' -f1-2)"
printf 'verifier: %s workers, SQLite ledger; fleetsim %s devices at parallelism %s, then paced at half the peak rate for %s s\n' \
    "$WORKERS" "$DEVICES" "$PAR" "$RATE_SECS"
printf 'nginx %s: one process, mutual TLS, openssl s_time -new for %s s each run; the client sends the IDevID + intermediate, as devices do (Certificate message %s bytes)\n' \
    "$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')" "$NGINX_SECS" "${NGINX_CERT[after-all]:-?}"
printf 'nginx runs (CPU ms per handshake + GET, handshakes/s), one right before each verifier and one after the last:'
for spec in "${VERIFIERS[@]}" after-all=; do
    name=${spec%%=*}
    key=$name
    [[ $spec = after-all= ]] || key=v:$name
    printf ' %s %s (%s/s)' "$name" "${NGINX_MS[$key]}" "${NGINX_RATE[$key]}"
done
printf '\nnginx with the IDevID alone (Certificate message %s bytes): %s ms, %s/s\n' \
    "${NGINX_CERT[leaf]:-?}" "${NGINX_MS[leaf]}" "${NGINX_RATE[leaf]}"
printf 'floor: 2 x X25519 (%s ms) + 2 ECDSA P-256 signs (%s ms) + 6 verifies (%s ms) = %s ms\n' \
    "$ECDH_MS" "$SIGN_MS" "$VERIFY_MS" "$FLOOR_MS"
echo
echo "cpu_ms/enroll counts the verifier and its signer process; signer_ms is the signer's share;"
echo "nginx_ms is the nginx run right before that verifier's, and x_nginx the ratio to it"
printf '%-8s %9s %13s %9s %10s %9s %11s %10s %8s %8s  %s\n' verifier ok cpu_ms/enroll signer_ms nginx_ms floor_ms \
    x_nginx x_floor p50_ms p99_ms "enroll/s at peak"
for spec in "${VERIFIERS[@]}"; do
    label=${spec%%=*}
    printf '%-8s %9s %13s %9s %10s %9s %11s %10s %8s %8s  %s\n' "$label" "${V_OK[$label]}" \
        "${V_MS[$label]}" "${V_SIGNER[$label]}" "${NGINX_MS[v:$label]}" "$FLOOR_MS" \
        "$(awk -v a="${V_MS[$label]}" -v b="${NGINX_MS[v:$label]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" \
        "$(awk -v a="${V_MS[$label]}" -v b="$FLOOR_MS" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" \
        "${V_P50[$label]:--}" "${V_P99[$label]:--}" "${V_RATE[$label]:--}"
done
exit 0
