#!/usr/bin/env bash
# Load test of the release binary on loopback (docs/hardening.md, "Load").
#
# For 10 and 10,000 RBAC-shaped policies (benches/load/gen_policies.py),
# with the decision cache off (--cache-size 0: every request evaluated,
# "cold") and on (default size, warmed first: "warm"), it measures
#   - wrk: HTTP/1.1 over TLS, bodies drawn from a pool of distinct SARs
#     (benches/load/sar.lua, benches/load/gen_sars.py);
#   - h2load: HTTP/2 over TLS, 4 connections x 8 streams (the same 32
#     requests in flight as wrk's 32 connections), one body (h2load sends a
#     single body; cold runs still evaluate every request since the cache
#     is off);
# and prints throughput and p50/p99 latency. Bounded: each run lasts
# --duration seconds, everything talks to 127.0.0.1 only, and the server is
# stopped at the end (or on any exit).
#
# The server runs without --client-ca-file (wrk cannot present a client
# certificate) and with --decision-log none (so the log does not measure
# the terminal). wrk, h2load and the server share the machine's cores.
#
# usage: scripts/load.sh [--duration SECONDS] [--connections N] [--pool N] [--policies "10 10000"] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."

duration=15
connections=32
# h2load: as many requests in flight as wrk, multiplexed the way client-go
# does it (a few connections, several streams each).
h2_connections=4
h2_streams=8
pool=20000
sizes="10 10000"
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --pool) pool=$2; shift 2 ;;
    --policies) sizes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in wrk h2load python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install -y wrk nghttp2-client python3)" >&2; exit 2; }
done

cargo build --release --locked --bin cedar-authorizer
bin=$PWD/target/release/cedar-authorizer
work=$(mktemp -d)
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap 'stop_server; rm -rf "$work"' EXIT

"$bin" certs --out "$work/certs" >/dev/null
python3 benches/load/gen_sars.py "$pool" > "$work/sars.jsonl"
head -n 1 "$work/sars.jsonl" > "$work/body.json"
for n in $sizes; do
  python3 benches/load/gen_policies.py "$n" "$work/policies-$n"
done

# Starts the server; sets server_pid and addr.
start_server() {
  local policies=$1 cache=$2 log=$3
  "$bin" serve --policies "$policies" --cache-size "$cache" \
    --tls-cert-file "$work/certs/serving.pem" --tls-private-key-file "$work/certs/serving-key.pem" \
    --bind-address 127.0.0.1 --secure-port 0 --metrics-bind-address 127.0.0.1:0 \
    --log-format json --decision-log none --max-connections 4096 2> "$log" &
  server_pid=$!
  addr=""
  for _ in $(seq 1 600); do
    addr=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: v = json.loads(l)
    except ValueError: continue
    if v.get("message", "").startswith("webhook listening"): print(v["address"]); break' "$log")
    [ -n "$addr" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$log" >&2; exit 1
}

field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<"$2"; }

results=()
for n in $sizes; do
  for mode in cold warm; do
    cache=$([ "$mode" = cold ] && echo 0 || echo 65536)
    start_server "$work/policies-$n" "$cache" "$work/server-$n-$mode.log"
    url="https://$addr/authorize"
    if [ "$mode" = warm ]; then
      # One pass over the pool (and the h2load body) fills the cache.
      SAR_POOL="$work/sars.jsonl" wrk -t 2 -c "$connections" -d 5s -s benches/load/sar.lua "$url" >/dev/null
      h2load -n 100 -c 1 -d "$work/body.json" -H 'content-type: application/json' "$url" >/dev/null
    fi
    wrk_out=$(SAR_POOL="$work/sars.jsonl" wrk -t 2 -c "$connections" -d "${duration}s" --timeout 5s -s benches/load/sar.lua "$url")
    wrk_line=$(grep '^RESULT' <<<"$wrk_out")
    rm -f "$work/h2.log"
    h2load -D "$duration" -c "$h2_connections" -m "$h2_streams" -t 2 -d "$work/body.json" -H 'content-type: application/json' \
      --log-file "$work/h2.log" "$url" > "$work/h2load.out"
    h2_line=$(python3 benches/load/h2load_stats.py "$work/h2.log")
    stop_server
    h2_failed=$(sed -n 's/^requests: .* \([0-9]*\) failed, \([0-9]*\) errored, \([0-9]*\) timeout$/\1+\2+\3/p' "$work/h2load.out")
    wrk_errors=$(( $(field non2xx "$wrk_line") + $(field connect "$wrk_line") + $(field read "$wrk_line") + $(field write "$wrk_line") + $(field timeout "$wrk_line") ))
    h2_errors=$(( $(field non2xx "$h2_line") + ${h2_failed:-0} ))
    results+=("| $n | $mode | wrk (HTTP/1.1) | $(field rps "$wrk_line") | $(field p50_ms "$wrk_line") | $(field p99_ms "$wrk_line") | $(field requests "$wrk_line") | $wrk_errors |")
    results+=("| $n | $mode | h2load (HTTP/2) | $(field rps "$h2_line") | $(field p50_ms "$h2_line") | $(field p99_ms "$h2_line") | $(field requests "$h2_line") | $h2_errors |")
    echo "policies=$n cache=$mode wrk:    $wrk_line"
    echo "policies=$n cache=$mode h2load: $h2_line"
  done
done

{
  echo "load: ${duration}s per run, wrk $connections connections, h2load $h2_connections connections x $h2_streams streams, pool of $pool SARs, $(nproc) cores shared by server and client"
  echo
  echo "| policies | cache | client | req/s | p50 ms | p99 ms | requests | failed |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${results[@]}"
} | tee ${out:+"$out"}
