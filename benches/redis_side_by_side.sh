#!/usr/bin/env bash
# Redis 7 Streams side by side with cbm-hub, in one sitting, on this machine (issue 16).
#
# Redis as a user would run it for a durable log: `appendonly yes`, `appendfsync always`, no
# RDB snapshots, mutual TLS (tls-auth-clients yes) with a fresh P-256 PKI, clients on the same
# machine (redis-benchmark, redis-cli). Entries carry one 1229-byte field: the hub's bench
# content (1.2 KiB). Measured:
#   - durable XADD/s at 64 in flight, and a single client's p50 (redis-benchmark);
#   - replay: XRANGE of 1,000 entries per call by one client, entries/s = calls/s x 1,000;
#   - restart with ENTRIES stored: from spawning redis-server to the first PONG over TLS, after
#     a clean SHUTDOWN and after SIGKILL; RSS then;
#   - disk: the data directory after SHUTDOWN (du), per entry, against the 1229-byte field.
# With CBM_HUB set to a release binary, the hub's own figures follow in the same sitting:
#   `bench --only floor,publish,replay` (sled alone, then the hub) and `bench --only restart,disk,memory --events ...`.
#
# Usage: benches/redis_side_by_side.sh [ENTRIES]          (default 100000)
#        CBM_HUB=target/release/cbm-hub HUB_EVENTS=100000,1000000 benches/redis_side_by_side.sh
# Needs redis-server, redis-cli and redis-benchmark 7 (`apt-get install -y redis-server`) and
# openssl. Uses a temporary directory and port 16380 (REDIS_PORT), removed at the end.
set -euo pipefail

ENTRIES=${1:-100000}
PORT=${REDIS_PORT:-16380}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-5}
DIR=$(mktemp -d /tmp/redis-side-by-side.XXXXXX)
PID=
cleanup() {
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then kill -9 "$PID" 2>/dev/null || true; fi
    rm -rf "$DIR"
}
trap cleanup EXIT

for tool in redis-server redis-cli redis-benchmark openssl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y redis-server openssl)" >&2; exit 1; }
done

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "redis: $(redis-server --version)"

# --- PKI: CA, server (127.0.0.1), client -------------------------------------------------
pki="$DIR/pki"
mkdir -p "$pki" "$DIR/data"
ec() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
ec "$pki/ca.key"
openssl req -x509 -new -key "$pki/ca.key" -subj /CN=redis-bench-ca -days 2 -out "$pki/ca.pem" 2>/dev/null
for who in server client; do
    ec "$pki/$who.key"
    openssl req -new -key "$pki/$who.key" -subj "/CN=$who" -out "$pki/$who.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$pki/$who.ext"
    openssl x509 -req -in "$pki/$who.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 2 -extfile "$pki/$who.ext" -out "$pki/$who.pem" 2>/dev/null
done
TLS=(--tls --cacert "$pki/ca.pem" --cert "$pki/client.pem" --key "$pki/client.key")

now_ns() { date +%s%N; }

# Starts redis-server on the data directory (PID); MS: milliseconds from spawn to the first PONG.
start_redis() {
    local t0 t1
    t0=$(now_ns)
    redis-server --port 0 --tls-port "$PORT" --bind 127.0.0.1 \
        --tls-cert-file "$pki/server.pem" --tls-key-file "$pki/server.key" \
        --tls-ca-cert-file "$pki/ca.pem" --tls-auth-clients yes \
        --dir "$DIR/data" --appendonly yes --appendfsync always --save '' \
        --daemonize no --logfile "$DIR/redis.log" </dev/null >/dev/null 2>&1 &
    PID=$!
    for _ in $(seq 1 200000); do
        if [[ "$(redis-cli -p "$PORT" "${TLS[@]}" ping 2>/dev/null)" == PONG ]]; then
            t1=$(now_ns)
            MS=$(((t1 - t0) / 1000000))
            return 0
        fi
        kill -0 "$PID" 2>/dev/null || { echo "redis-server exited; see $DIR/redis.log" >&2; cat "$DIR/redis.log" >&2; exit 1; }
    done
    echo "redis-server did not answer" >&2
    exit 1
}
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }
cli() { redis-cli -p "$PORT" "${TLS[@]}" "$@"; }
bench() { redis-benchmark -p "$PORT" "${TLS[@]}" "$@"; }

# redis-benchmark sends one value for every entry: random base64, so that nothing compresses it.
VALUE=$(head -c 1000 /dev/urandom | base64 -w0 | head -c 1229)
# Keeps the figures of redis-benchmark's quiet line, not the command and its 1229-byte value.
figures() { tr '\r' '\n' | tail -1 | sed 's/^.*: \([0-9.]* requests per second.*\)$/\1/'; }
# ENTRIES XADDs to `bench` in the Redis protocol, each with its own random 1229-byte value (the
# stored data then holds distinct values, as the hub's does; redis-benchmark repeats one).
xadds() {
    python3 - "$1" <<'PY'
import base64, os, sys
out = sys.stdout.buffer
for _ in range(int(sys.argv[1])):
    value = base64.b64encode(os.urandom(924))[:1229]
    out.write(b"*5\r\n$4\r\nXADD\r\n$5\r\nbench\r\n$1\r\n*\r\n$1\r\nf\r\n$1229\r\n" + value + b"\r\n")
PY
}

echo
echo "== durable XADD (appendfsync always), one 1229-byte field, mTLS"
start_redis
echo "empty start: ${MS} ms"
# Enough requests for about SECONDS_PER_ROUND at the rates seen here (30-50k/s at 64, 3-6k/s single).
echo "64 in flight: $(bench -c 64 -n $((40000 * SECONDS_PER_ROUND)) -q --precision 3 XADD bench '*' f "$VALUE" | figures)"
echo "single client: $(bench -c 1 -n $((4000 * SECONDS_PER_ROUND)) -q --precision 3 XADD bench '*' f "$VALUE" | figures)"
cli DEL bench >/dev/null
# A fresh data directory for what follows (the rounds above filled the AOF).
cli SHUTDOWN >/dev/null 2>&1 || true
wait "$PID" 2>/dev/null || true
rm -rf "$DIR/data"
mkdir -p "$DIR/data"
start_redis

echo
echo "== $ENTRIES entries stored (distinct random values, redis-cli --pipe), then replay: XRANGE 1,000 entries per call, one client"
t0=$(now_ns)
xadds "$ENTRIES" | cli --pipe | tail -1
echo "stored: $(cli XLEN bench) entries in $((($(now_ns) - t0) / 1000000)) ms"
xrange=$(bench -c 1 -n 500 -q --precision 3 XRANGE bench - + COUNT 1000 | figures)
echo "XRANGE COUNT 1000: $xrange"
echo "$xrange" | awk '{for (i = 1; i <= NF; i++) if ($(i+1) == "requests") printf "replay: %.0f entries/s\n", $i * 1000}'

echo
echo "== restart with $ENTRIES stored: spawn to first PONG over mTLS"
cli SHUTDOWN >/dev/null 2>&1 || true
wait "$PID" 2>/dev/null || true
du_bytes=$(du -sb "$DIR/data" | cut -f1)
du_alloc=$(du -sk "$DIR/data" | cut -f1)
ls -l "$DIR/data/appendonlydir" | tail -n +2 | awk '{print "  " $5 " bytes  " $9}'
echo "disk after SHUTDOWN: ${du_bytes} bytes apparent, $((du_alloc * 1024)) allocated: $((du_alloc * 1024 / ENTRIES)) bytes/entry (du), $(awk -v b="$du_alloc" -v n="$ENTRIES" 'BEGIN {printf "%.2f", b * 1024 / n / 1229}')x the 1229-byte field"
for round in 1 2 3; do
    start_redis
    echo "after SHUTDOWN, round $round: ${MS} ms to PONG, RSS $(rss_mib) MiB, $(cli XLEN bench) entries"
    cli SHUTDOWN >/dev/null 2>&1 || true
    wait "$PID" 2>/dev/null || true
done
start_redis
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
start_redis
echo "after SIGKILL: ${MS} ms to PONG, RSS $(rss_mib) MiB, $(cli XLEN bench) entries"
cli SHUTDOWN >/dev/null 2>&1 || true
wait "$PID" 2>/dev/null || true
PID=

if [[ -n "${CBM_HUB:-}" ]]; then
    echo
    echo "== cbm-hub ($CBM_HUB), same sitting"
    "$CBM_HUB" --log error bench --only floor,publish,replay --seconds "$SECONDS_PER_ROUND" --replay-events "$ENTRIES"
    "$CBM_HUB" --log error bench --only restart,disk,memory --events "${HUB_EVENTS:-$ENTRIES}"
fi
