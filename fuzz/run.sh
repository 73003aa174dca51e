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
# Reviews of other shapes: an update with its old object, a delete, a pod,
# a deployment, a custom resource, each field kind the conversion handles.
def review(op, obj, old=None, user="alice", groups=("requires-labels",)):
    api = obj["apiVersion"]; group, _, version = api.rpartition("/")
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "kind": {"group": group, "version": version, "kind": obj["kind"]},
        "resource": {"group": group, "version": version, "resource": obj["kind"].lower() + "s"},
        "name": obj["metadata"]["name"], "namespace": obj["metadata"].get("namespace"),
        "operation": op, "userInfo": {"username": user, "groups": list(groups), "extra": {"k": ["v"]}},
        "object": None if op == "DELETE" else obj, "oldObject": old}}
cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prod-a", "namespace": "dev",
      "labels": {"owner": "alice", "fuzz": "x"}, "annotations": {"a": "b"}}, "data": {"k": "v"}}
pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "dev"}, "spec": {
      "hostNetwork": True, "containers": [{"name": "c", "image": "registry.example/app:1",
      "securityContext": {"privileged": True}, "ports": [{"containerPort": 80}],
      "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}
deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "dev"},
      "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}}, "template": {
      "metadata": {"labels": {"app": "d"}}, "spec": pod["spec"]}}}
policy = {"apiVersion": "cedar.k8s.aws/v1alpha1", "kind": "Policy", "metadata": {"name": "x"},
      "spec": {"content": "permit(principal, action, resource);"}}
for r in [review("CREATE", cm), review("UPDATE", cm, dict(cm, metadata=dict(cm["metadata"], name="other"))),
          review("DELETE", cm, cm), review("CREATE", pod), review("CREATE", deploy),
          review("CREATE", policy), review("CONNECT", pod, user="system:admin", groups=())]:
    put("admission_decide", json.dumps(r).encode())
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
