#!/usr/bin/env bash
# Finds or unpacks kube-apiserver and etcd (envtest layout) for tests/e2e.rs
# and prints the directory, for:
#   export KUBEBUILDER_ASSETS="$(scripts/e2e-assets.sh [DIR])"
# Order: $KUBEBUILDER_ASSETS if it already holds both binaries; else the
# prebuilt copies in ../shared/envtest (unpacked into DIR, default
# target/envtest); else `setup-envtest use 1.36 -p path`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/target/envtest}
have() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ]; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have "$KUBEBUILDER_ASSETS"; then
  dir=$KUBEBUILDER_ASSETS
elif [ -f "$root/../shared/envtest/setup.sh" ]; then
  bash "$root/../shared/envtest/setup.sh" "$dir" >/dev/null
elif command -v setup-envtest >/dev/null 2>&1; then
  dir=$(setup-envtest use 1.36 -p path)
else
  echo "no kube-apiserver/etcd: run \`setup-envtest use 1.36 -p path\` or \`../shared/envtest/setup.sh DIR\`, then export KUBEBUILDER_ASSETS=DIR" >&2
  exit 1
fi
have "$dir" || { echo "$dir: kube-apiserver or etcd missing" >&2; exit 1; }
echo "$dir"
