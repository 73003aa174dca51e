#!/usr/bin/env bash
# Throughput as a fraction of the floor (../shared/bench/README.md), from
# one run on one machine: the floor (same TLS/HTTP/JSON stack, parses the
# review and always allows), then our server cold (--cache-size 0: every
# request evaluated) and warm (cache on, primed with one pass over the
# pool), each over
#   - HTTP/1.1: wrk, 1 thread, 32 connections, bodies drawn from the pool
#     (../shared/bench/sarpool.lua);
#   - HTTP/2: h2load, 1 thread, 4 connections x 8 streams (the same 32 in
#     flight, multiplexed as client-go does), one body from the pool
#     (h2load sends a single body; with the cache off it is still
#     evaluated every time).
# It prints req/s, p99 and errors of every run and the ratios cold/floor and
# warm/floor. Absolute numbers move with the machine; the ratios are the
# figure to compare.
#
# Load and servers share the machine's cores. Hold the build lock around
# the whole run so nothing compiles meanwhile:
#   flock /tmp/cargo-build.lock bash benches/ratio.sh [--policies N] [--sars N] [--duration S] [--server BIN]
# (the builds inside are plain `cargo build`, no-ops when up to date;
# --server measures another build of ours, e.g. a saved baseline).
set -euo pipefail
cd "$(dirname "$0")/.."

policies=10000
sars=20000
duration=8
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --policies) policies=$2; shift 2 ;;
    --sars) sars=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --server) bin=$(realpath "$2"); shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in wrk h2load python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install -y wrk nghttp2-client python3)" >&2; exit 2; }
done

bench=$(cd ../shared/bench && pwd)
if [ -z "$bin" ]; then
  cargo build --release --locked --quiet --bin cedar-authorizer
  bin=$PWD/target/release/cedar-authorizer
fi
# The floor is its own workspace; its build goes into a target dir of ours.
cargo build --release --locked --quiet --manifest-path "$bench/floor/Cargo.toml" --target-dir "$PWD/target/floor"
floor=$PWD/target/floor/release/floor

work=$(mktemp -d)
pid=""
stop() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
trap 'stop; rm -rf "$work"' EXIT

python3 "$bench/genload.py" "$work" "$policies" "$sars"
head -n 1 "$work/sars.jsonl" > "$work/body.json"
"$bin" certs --out "$work/certs" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_tls() {
  for _ in $(seq 1 600); do
    if python3 - "$1" <<'EOF' 2>/dev/null; then return 0; fi
import socket, ssl, sys
c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
    with c.wrap_socket(s): pass
EOF
    kill -0 "$pid" 2>/dev/null || { echo "server exited" >&2; cat "$work/server.log" >&2 || true; exit 1; }
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}

start_floor() {
  port=$(free_port)
  "$floor" "$port" 2> "$work/server.log" &
  pid=$!
  wait_tls "$port"
}

start_ours() {
  port=$(free_port)
  "$bin" serve --policies "$work/policies" --cache-size "$1" \
    --tls-cert-file "$work/certs/serving.pem" --tls-private-key-file "$work/certs/serving-key.pem" \
    --bind-address 127.0.0.1 --secure-port "$port" --metrics-bind-address 127.0.0.1:0 \
    --log-format json --max-connections 4096 2> "$work/server.log" &
  pid=$!
  wait_tls "$port"
}

field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<"$2"; }

h1() {
  local out
  out=$(SAR_POOL="$work/sars.jsonl" wrk -t1 -c32 -d"${duration}s" --timeout 5s -s "$bench/sarpool.lua" "https://127.0.0.1:$port/authorize")
  local line
  line=$(grep '^RESULT' <<<"$out")
  h1_rps=$(printf '%.0f' "$(field rps "$line")")
  h1_p99=$(awk -v us="$(field p99_us "$line")" 'BEGIN { printf "%.2f", us / 1000 }')
  h1_err=$(( $(field errors "$line") + $(field non2xx "$line") ))
}

h2() {
  rm -f "$work/h2.log"
  h2load -D "$duration" -t1 -c4 -m8 -d "$work/body.json" -H 'content-type: application/json' \
    --log-file "$work/h2.log" "https://127.0.0.1:$port/authorize" > "$work/h2.out"
  h2_rps=$(sed -n 's/^finished in .*s, \([0-9.]*\) req\/s.*/\1/p' "$work/h2.out" | xargs printf '%.0f')
  local stats
  stats=$(python3 "$(pwd)/benches/load/h2load_stats.py" "$work/h2.log")
  h2_p99=$(field p99_ms "$stats")
  local failed
  failed=$(sed -n 's/^requests: .* \([0-9]*\) failed, \([0-9]*\) errored, \([0-9]*\) timeout$/\1+\2+\3/p' "$work/h2.out")
  h2_err=$(( $(field non2xx "$stats") + ${failed:-0} ))
}

declare -A rps p99 err
run() {
  local name=$1
  h1; rps[$name,h1]=$h1_rps; p99[$name,h1]=$h1_p99; err[$name,h1]=$h1_err
  h2; rps[$name,h2]=$h2_rps; p99[$name,h2]=$h2_p99; err[$name,h2]=$h2_err
  stop
}

start_floor; run floor
start_ours 0; run cold
start_ours 65536
# One pass over the pool (and the h2 body) fills the cache.
SAR_POOL="$work/sars.jsonl" wrk -t1 -c32 -d3s -s "$bench/sarpool.lua" "https://127.0.0.1:$port/authorize" >/dev/null
h2load -n 100 -c 1 -d "$work/body.json" -H 'content-type: application/json' "https://127.0.0.1:$port/authorize" >/dev/null
run warm

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "ratio.sh: $policies policies, $sars distinct SARs, ${duration}s per run, 32 in flight, $(nproc) cores shared by servers and load"
echo "| proto | floor req/s (p99 ms, errors) | cold req/s (p99 ms, errors) | warm req/s (p99 ms, errors) | cold/floor | warm/floor |"
echo "|---|---|---|---|---|---|"
for proto in h1 h2; do
  label=$([ "$proto" = h1 ] && echo "HTTP/1.1 wrk" || echo "HTTP/2 h2load")
  cell() { echo "${rps[$1,$proto]} (${p99[$1,$proto]}, ${err[$1,$proto]})"; }
  echo "| $label | $(cell floor) | $(cell cold) | $(cell warm) | $(ratio "${rps[cold,$proto]}" "${rps[floor,$proto]}") | $(ratio "${rps[warm,$proto]}" "${rps[floor,$proto]}") |"
done
