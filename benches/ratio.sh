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
# The three servers run side by side and are measured in interleaved
# rounds (--rounds, default 3; the order rotates each round), so a slow
# spell of the machine falls on all three rather than on one: on the 2-core
# class the floor alone swings by 15% from one 5-second run to the next.
# It prints every round's req/s and ratios, then the medians: req/s, p99
# and errors (summed) of each server, and the ratios of the median req/s,
# cold/floor and warm/floor. Absolute numbers move with the machine; the
# ratios are the figure to compare. Beside them, each server's own CPU time
# per request (user + system, from /proc): what the decision path costs,
# without the load generator's share of the cores.
#
# Load and servers share the machine's cores. Hold the build lock around
# the whole run so nothing compiles meanwhile:
#   flock /tmp/cargo-build.lock bash benches/ratio.sh [--policies N] [--sars N] [--duration S] [--rounds R] [--server BIN]
# (the builds inside are plain `cargo build`, no-ops when up to date;
# --server measures another build of ours, e.g. a saved baseline).
set -euo pipefail
cd "$(dirname "$0")/.."

policies=10000
sars=20000
duration=8
rounds=3
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --policies) policies=$2; shift 2 ;;
    --sars) sars=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
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
# Per server (floor, cold, warm): its port and process id.
declare -A port pid
stop() {
  for p in "${pid[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pid[@]}"; do wait "$p" 2>/dev/null || true; done
  pid=()
}
trap 'stop; rm -rf "$work"' EXIT

python3 "$bench/genload.py" "$work" "$policies" "$sars"
head -n 1 "$work/sars.jsonl" > "$work/body.json"
"$bin" certs --out "$work/certs" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_tls PORT PID LOG
wait_tls() {
  for _ in $(seq 1 600); do
    if python3 - "$1" <<'EOF' 2>/dev/null; then return 0; fi
import socket, ssl, sys
c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
    with c.wrap_socket(s): pass
EOF
    kill -0 "$2" 2>/dev/null || { echo "server exited" >&2; cat "$3" >&2 || true; exit 1; }
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}

# started NAME: the server just started in the background is NAME's.
started() {
  pid[$1]=$!
  wait_tls "${port[$1]}" "${pid[$1]}" "$work/$1.log"
}

start_floor() {
  port[floor]=$(free_port)
  "$floor" "${port[floor]}" 2> "$work/floor.log" &
  started floor
}

# start_ours NAME CACHE_SIZE
start_ours() {
  port[$1]=$(free_port)
  "$bin" serve --policies "$work/policies" --cache-size "$2" \
    --tls-cert-file "$work/certs/serving.pem" --tls-private-key-file "$work/certs/serving-key.pem" \
    --bind-address 127.0.0.1 --secure-port "${port[$1]}" --metrics-bind-address 127.0.0.1:0 \
    --log-format json --max-connections 4096 2> "$work/$1.log" &
  started "$1"
}

field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# CPU seconds (user + system) a process has used so far.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }

# h1 PORT: sets rps_, p99_ (ms), err_ and n_ (requests answered).
h1() {
  local out line
  out=$(SAR_POOL="$work/sars.jsonl" wrk -t1 -c32 -d"${duration}s" --timeout 5s -s "$bench/sarpool.lua" "https://127.0.0.1:$1/authorize")
  line=$(grep '^RESULT' <<<"$out")
  rps_=$(printf '%.0f' "$(field rps "$line")")
  n_=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$out")
  p99_=$(awk -v us="$(field p99_us "$line")" 'BEGIN { printf "%.2f", us / 1000 }')
  err_=$(( $(field errors "$line") + $(field non2xx "$line") ))
}

# h2 PORT: sets rps_, p99_ (ms), err_ and n_ (requests answered).
h2() {
  rm -f "$work/h2.log"
  h2load -D "$duration" -t1 -c4 -m8 -d "$work/body.json" -H 'content-type: application/json' \
    --log-file "$work/h2.log" "https://127.0.0.1:$1/authorize" > "$work/h2.out"
  rps_=$(sed -n 's/^finished in .*s, \([0-9.]*\) req\/s.*/\1/p' "$work/h2.out" | xargs printf '%.0f')
  n_=$(sed -n 's/^requests: .* \([0-9]*\) succeeded,.*/\1/p' "$work/h2.out")
  local stats failed
  stats=$(python3 "$(pwd)/benches/load/h2load_stats.py" "$work/h2.log")
  p99_=$(field p99_ms "$stats")
  failed=$(sed -n 's/^requests: .* \([0-9]*\) failed, \([0-9]*\) errored, \([0-9]*\) timeout$/\1+\2+\3/p' "$work/h2.out")
  err_=$(( $(field non2xx "$stats") + ${failed:-0} ))
}

start_floor
start_ours cold 0
start_ours warm 65536
# One pass over the pool (and the h2 body) fills the warm server's cache.
SAR_POOL="$work/sars.jsonl" wrk -t1 -c32 -d3s -s "$bench/sarpool.lua" "https://127.0.0.1:${port[warm]}/authorize" >/dev/null
h2load -n 100 -c 1 -d "$work/body.json" -H 'content-type: application/json' "https://127.0.0.1:${port[warm]}/authorize" >/dev/null

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
label() { if [ "$1" = h1 ]; then echo "HTTP/1.1 wrk"; else echo "HTTP/2 h2load"; fi; }

names=(floor cold warm)
# Per server and protocol: the rounds' req/s, p99s and server CPU µs per
# request, and the errors.
declare -A rps p99 cpu err last lastcpu
echo "ratio.sh: $policies policies, $sars distinct SARs, ${duration}s per measurement, $rounds interleaved rounds, 32 in flight, $(nproc) cores shared by servers and load"
echo
echo "| round | proto | floor req/s (CPU µs/req) | cold req/s (CPU µs/req) | warm req/s (CPU µs/req) | cold/floor | warm/floor |"
echo "|---|---|---|---|---|---|---|"
for r in $(seq 1 "$rounds"); do
  for proto in h1 h2; do
    # The order rotates: floor, cold, warm; then cold, warm, floor; ...
    for k in 0 1 2; do
      name=${names[$(( (k + r - 1) % 3 ))]}
      before=$(cpu_seconds "${pid[$name]}")
      "$proto" "${port[$name]}"
      used=$(awk -v a="$before" -v b="$(cpu_seconds "${pid[$name]}")" -v n="$n_" 'BEGIN { printf "%.1f", (b - a) * 1e6 / (n > 0 ? n : 1) }')
      cpu[$name,$proto]+="$used "
      lastcpu[$name]=$used
      rps[$name,$proto]+="$rps_ "
      p99[$name,$proto]+="$p99_ "
      err[$name,$proto]=$(( ${err[$name,$proto]:-0} + err_ ))
      last[$name]=$rps_
    done
    echo "| $r | $(label "$proto") | ${last[floor]} (${lastcpu[floor]}) | ${last[cold]} (${lastcpu[cold]}) | ${last[warm]} (${lastcpu[warm]}) | $(ratio "${last[cold]}" "${last[floor]}") | $(ratio "${last[warm]}" "${last[floor]}") |"
  done
done
echo
echo "Medians of the $rounds rounds (errors summed over them):"
echo
echo "| proto | floor req/s (p99 ms, errors) | cold req/s (p99 ms, errors) | warm req/s (p99 ms, errors) | cold/floor | warm/floor | server CPU µs/req: floor, cold, warm |"
echo "|---|---|---|---|---|---|---|"
for proto in h1 h2; do
  row="| $(label "$proto") |"
  cpus=""
  declare -A med
  for name in "${names[@]}"; do
    # shellcheck disable=SC2086 # the lists are space-separated numbers
    med[$name]=$(median ${rps[$name,$proto]})
    # shellcheck disable=SC2086
    row+=" ${med[$name]} ($(median ${p99[$name,$proto]}), ${err[$name,$proto]}) |"
    # shellcheck disable=SC2086
    cpus+="${cpus:+, }$(median ${cpu[$name,$proto]})"
  done
  echo "$row $(ratio "${med[cold]}" "${med[floor]}") | $(ratio "${med[warm]}" "${med[floor]}") | $cpus |"
done
