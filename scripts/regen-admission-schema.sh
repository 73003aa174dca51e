#!/usr/bin/env bash
# Regenerates schema/admission.cedarschema (the admission part of the
# built-in schema) and the saved OpenAPI documents of
# tests/fixtures/openapi/k8s-1.36 from a real kube-apiserver:
#   scripts/regen-admission-schema.sh
# Needs kube-apiserver and etcd (KUBEBUILDER_ASSETS, or what
# scripts/e2e-assets.sh finds) and openssl. Starts both on loopback ports
# in a temporary directory and stops them on exit. CEDAR_AUTHORIZER names
# the binary to use; by default `cargo build` makes it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
assets=$(scripts/e2e-assets.sh)
bin=${CEDAR_AUTHORIZER:-}
if [ -z "$bin" ]; then
  cargo build --quiet
  bin=$root/target/debug/cedar-authorizer
fi

work=$(mktemp -d)
pids=()
cleanup() {
  # SIGKILL: a kube-apiserver told to stop waits for etcd, which may be gone.
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port=$(port); peer_port=$(port); api_port=$(port)

openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
  openssl pkcs8 -topk8 -nocrypt >"$work/sa-key.pem"
openssl ec -in "$work/sa-key.pem" -pubout >"$work/sa-pub.pem" 2>/dev/null
token=$(openssl rand -hex 16)
echo "$token,regen-admin,regen-admin,\"system:masters\"" >"$work/tokens.csv"

"$assets/etcd" --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
pids+=($!)
"$assets/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
  --secure-port "$api_port" --cert-dir "$work/certs" \
  --service-account-key-file "$work/sa-pub.pem" \
  --service-account-signing-key-file "$work/sa-key.pem" \
  --service-account-issuer https://kubernetes.default.svc \
  --service-cluster-ip-range 10.96.0.0/24 \
  --token-auth-file "$work/tokens.csv" \
  --endpoint-reconciler-type none >"$work/apiserver.log" 2>&1 &
pids+=($!)

cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: regen
    cluster:
      server: https://127.0.0.1:$api_port
      certificate-authority: $work/certs/apiserver.crt
users:
  - name: regen
    user:
      token: $token
contexts:
  - name: regen
    context: {cluster: regen, user: regen}
current-context: regen
EOF

for _ in $(seq 120); do
  if [ -f "$work/certs/apiserver.crt" ] &&
    curl -sf --cacert "$work/certs/apiserver.crt" -H "Authorization: Bearer $token" \
      "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then
    break
  fi
  sleep 1
done
curl -sf --cacert "$work/certs/apiserver.crt" -H "Authorization: Bearer $token" \
  "https://127.0.0.1:$api_port/readyz" >/dev/null ||
  { echo "kube-apiserver did not become ready:" >&2; tail -20 "$work/apiserver.log" >&2; exit 1; }

fixtures=tests/fixtures/openapi/k8s-1.36
rm -rf "$fixtures"
"$bin" schema generate --kubeconfig "$work/kubeconfig" --admission-only \
  --save "$fixtures" --out "$work/admission.cedarschema"
{
  echo "// The admission part of the built-in schema. Do not edit: regenerate with"
  echo "// scripts/regen-admission-schema.sh (docs/policy-model.md, \"Admission schema\")."
  cat "$work/admission.cedarschema"
} >schema/admission.cedarschema
echo "wrote schema/admission.cedarschema and $fixtures" >&2
