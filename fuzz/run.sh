#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/, git-ignored) from the conformance
# corpus's SARs and from every policy file of the project, then runs both
# targets side by side (one core each) for a bounded time, and prints each
# one's last status line (docs/hardening.md, "Fuzzing"). Crashes land in
# fuzz/artifacts/<target>/.
#
# usage: [TARGETS="sar_decide ..."] fuzz/run.sh [SECONDS]     (default 600, all three targets)
# cargo-fuzz wants nightly; on a stable toolchain RUSTC_BOOTSTRAP=1 lets it
# pass its -Z flags.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
mkdir -p corpus/sar_decide corpus/policy_load corpus/admission_decide
python3 - <<'PY'
import glob, hashlib, json, os
def put(target, data):
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join("corpus", target, name), "wb") as f:
        f.write(data)
for cases in glob.glob("../../shared/corpus/*/cases.json"):
    for case in json.load(open(cases)):
        put("sar_decide", json.dumps(case["sar"]).encode())
for review in glob.glob("../tests/fixtures/admission/*.json"):
    put("admission_decide", open(review, "rb").read())
for policy in glob.glob("../**/*.cedar", recursive=True) + glob.glob("../../shared/corpus/**/*.cedar", recursive=True):
    if "/target/" not in policy and "/fuzz/" not in policy:
        put("policy_load", open(policy, "rb").read())
PY
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
mkdir -p target
pids=()
for target in ${TARGETS:-sar_decide policy_load admission_decide}; do
  cargo fuzz run -O "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=65536 \
    -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 > "target/fuzz-$target.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=$?
done
for target in ${TARGETS:-sar_decide policy_load admission_decide}; do
  echo "== $target: $(ls "corpus/$target" | wc -l) corpus files"
  grep -E '^#[0-9]+' "target/fuzz-$target.log" | tail -n 1
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|SUMMARY|panicked|artifact' "target/fuzz-$target.log" || true
done
exit $status
