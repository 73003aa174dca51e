#!/usr/bin/env bash
# Soak test of the release binary on loopback (docs/hardening.md, "Soak").
#
# For --duration seconds (default 600) it keeps the server under wrk load
# (HTTP/1.1 over TLS, a pool of distinct SARs) while
#   - every --swap-every seconds the policy set alternates between A and B,
#     whose answers for a probe SAR differ (A allows it, B denies it); after
#     each swap it waits for cedar_authorizer_policy_generation to move on
#     and then asks the probe over a new HTTP/2 connection: the answer must
#     be the new set's (a stale answer fails the run);
#   - every --rotate-every seconds the serving certificate is replaced by
#     the other of two pairs (written in place, key first, as a careless
#     rotation would);
#   - every 10 s the server's RSS and open file descriptors are sampled
#     into soak.csv.
# The run fails unless wrk saw zero non-2xx answers and zero socket errors,
# every swap was seen and no probe was stale. Everything talks to
# 127.0.0.1 only, and everything stops by itself at the end of the run.
#
# usage: scripts/soak.sh [--duration SECONDS] [--connections N] [--swap-every S] [--rotate-every S] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

duration=600
connections=32
swap_every=3
rotate_every=30
out=target/soak
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --swap-every) swap_every=$2; shift 2 ;;
    --rotate-every) rotate_every=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 2; }
done

cargo build --release --locked --bin cedar-authorizer
bin=$PWD/target/release/cedar-authorizer
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
server_pid=""
wrk_pid=""
cleanup() {
  [ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null || true
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Two serving pairs from two CAs; the probe trusts both CAs.
"$bin" certs --out "$work/pair-a" >/dev/null
"$bin" certs --out "$work/pair-b" >/dev/null
cat "$work/pair-a/ca.pem" "$work/pair-b/ca.pem" > "$work/cas.pem"
mkdir -p "$work/tls"
cp "$work/pair-a/serving.pem" "$work/tls/serving.pem"
cp "$work/pair-a/serving-key.pem" "$work/tls/serving-key.pem"

# The live directory: 1,000 RBAC-shaped policies (so every reload does
# real work) plus probe.cedar, which the swaps replace by rename.
python3 benches/load/gen_policies.py 1000 "$work/policies"
cat > "$work/probe-a.cedar" <<'CEDAR'
@id("probe-allow")
permit (principal == k8s::User::"soak-probe", action == k8s::Action::"get", resource is k8s::Resource)
when { resource.resource == "pods" };
CEDAR
cat > "$work/probe-b.cedar" <<'CEDAR'
@id("probe-deny")
forbid (principal == k8s::User::"soak-probe", action == k8s::Action::"get", resource is k8s::Resource)
when { resource.resource == "pods" };
CEDAR
cp "$work/probe-a.cedar" "$work/policies/probe.cedar"
probe_sar='{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"soak-probe","groups":["group-1"],"resourceAttributes":{"verb":"get","version":"v1","resource":"pods","namespace":"soak"}}}'
python3 benches/load/gen_sars.py 20000 > "$work/sars.jsonl"

"$bin" serve --policies "$work/policies" \
  --tls-cert-file "$work/tls/serving.pem" --tls-private-key-file "$work/tls/serving-key.pem" \
  --bind-address 127.0.0.1 --secure-port 0 --metrics-bind-address 127.0.0.1:0 \
  --cert-poll-interval 1s --policy-poll-interval 5s --reload-debounce 100ms \
  --log-format json --decision-log none 2> "$out/server.log" &
server_pid=$!
addr=""; admin=""
for _ in $(seq 1 600); do
  read -r addr admin < <(python3 -c 'import json,sys
a = b = ""
for l in open(sys.argv[1]):
    try: v = json.loads(l)
    except ValueError: continue
    m = v.get("message", "")
    if m.startswith("webhook listening"): a = v["address"]
    if m.startswith("admin listening"): b = v["address"]
print(a, b)' "$out/server.log") || true
  [ -n "$addr" ] && [ -n "$admin" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$out/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "server did not start" >&2; exit 1; }
port=${addr##*:}

metric() {
  local text
  text=$(curl -s "http://$admin/metrics") || return 0
  awk -v m="$1" '$1 == m { print $2; exit }' <<<"$text"
}
probe() {
  curl -s --http2 --cacert "$work/cas.pem" --resolve "localhost:$port:127.0.0.1" \
    -H 'content-type: application/json' --data-binary "$probe_sar" "https://localhost:$port/authorize"
}

echo "soak: ${duration}s, $connections connections, swap every ${swap_every}s, rotate every ${rotate_every}s; server pid $server_pid on $addr"
SAR_POOL="$work/sars.jsonl" wrk -t 2 -c "$connections" -d "${duration}s" --timeout 5s \
  -s benches/load/sar.lua "https://$addr/authorize" > "$out/wrk.txt" 2>&1 &
wrk_pid=$!

echo "seconds,rss_kb,fds,generation,requests_total" > "$out/soak.csv"
sample() {
  local t=$1 rss fds gen reqs
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status")
  fds=$(ls "/proc/$server_pid/fd" | wc -l)
  gen=$(metric cedar_authorizer_policy_generation)
  reqs=$(curl -s "http://$admin/metrics" | awk '/^cedar_authorizer_requests_total/ { s += $2 } END { print s + 0 }') || true
  echo "$t,$rss,$fds,$gen,$reqs" >> "$out/soak.csv"
}

start=$(date +%s)
next_swap=$((start + swap_every))
next_rotate=$((start + rotate_every))
next_sample=$start
current=a
pair=a
swaps=0; stale=0; missed=0; rotations=0
while kill -0 "$wrk_pid" 2>/dev/null; do
  now=$(date +%s)
  if [ "$now" -ge "$next_sample" ]; then
    sample $((now - start))
    next_sample=$((next_sample + 10))
  fi
  if [ "$now" -ge "$next_swap" ] && [ $((now - start)) -lt $((duration - 5)) ]; then
    before=$(metric cedar_authorizer_policy_generation)
    current=$([ "$current" = a ] && echo b || echo a)
    cp "$work/probe-$current.cedar" "$work/policies/.probe.tmp"
    mv "$work/policies/.probe.tmp" "$work/policies/probe.cedar"
    swaps=$((swaps + 1))
    seen=""
    for _ in $(seq 1 100); do
      gen=$(metric cedar_authorizer_policy_generation)
      if [ -n "$gen" ] && [ "${gen%.*}" -gt "${before%.*}" ]; then seen=1; break; fi
      sleep 0.1
    done
    if [ -z "$seen" ]; then
      missed=$((missed + 1))
      echo "swap $swaps: generation stayed at $before after 10 s" >&2
    else
      answer=$(probe)
      want=$([ "$current" = a ] && echo '"allowed":true' || echo '"denied":true')
      if ! grep -q "$want" <<<"$answer"; then
        stale=$((stale + 1))
        echo "swap $swaps (set $current, generation $gen): stale answer $answer" >&2
      fi
    fi
    next_swap=$(( $(date +%s) + swap_every ))
  fi
  if [ "$now" -ge "$next_rotate" ]; then
    pair=$([ "$pair" = a ] && echo b || echo a)
    cp "$work/pair-$pair/serving-key.pem" "$work/tls/serving-key.pem"
    cp "$work/pair-$pair/serving.pem" "$work/tls/serving.pem"
    rotations=$((rotations + 1))
    next_rotate=$((now + rotate_every))
  fi
  sleep 0.2
done
wait "$wrk_pid" || true
wrk_pid=""
sample $(( $(date +%s) - start ))

result=$(grep '^RESULT' "$out/wrk.txt" || echo "RESULT missing")
failed=$(python3 -c 'import re,sys
f = dict(re.findall(r"(\w+)=([\d.]+)", sys.argv[1]))
print(sum(int(f.get(k, 1)) for k in ("non2xx", "connect", "read", "write", "timeout")))' "$result")
rotated=$(grep -c 'serving certificate rotated' "$out/server.log" || true)
reload_failures=$(metric 'cedar_authorizer_policy_reloads_total{result="failure"}')
python3 - "$out/soak.csv" <<'PY' | tee "$out/summary.txt"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def at(t):
    return min(rows, key=lambda r: abs(int(r["seconds"]) - t))
first, warm, last = rows[0], at(60), rows[-1]
peak = max(rows, key=lambda r: int(r["rss_kb"]))
for name, r in (("first", first), ("after warm-up (60 s)", warm), ("last", last), ("peak", peak)):
    print(f"{name:>22}: t={r['seconds']:>4}s rss={int(r['rss_kb']) / 1024:.1f} MiB fds={r['fds']} generation={r['generation']}")
PY
{
  echo "wrk: $result"
  echo "failed requests: $failed"
  echo "policy swaps: $swaps, generation not seen to move: $missed, stale probe answers: $stale, reload failures: ${reload_failures:-?}"
  echo "certificate rotations written: $rotations, logged as rotated: $rotated"
} | tee -a "$out/summary.txt"
echo "samples: $out/soak.csv; server log: $out/server.log"
[ "$failed" = 0 ] && [ "$stale" = 0 ] && [ "$missed" = 0 ]
