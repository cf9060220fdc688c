#!/usr/bin/env bash
# The Secrets the manifests mount, from a dev CA made by deploy/certs/make-dev-certs.sh:
#
#   deploy/k8s/make-secrets.sh <dir> [cluster-id] | kubectl apply -n dispenser -f -
#
#   dispenser-ledger-tls       ca.pem, ledger-N.pem, ledger-N-key.pem (pod ledger-K is node K+1;
#                              every ledger pod mounts all three keys: see deploy/README.md)
#   dispenser-edge-dcD-tls     ca.pem, edge.pem, edge-key.pem: the DC's edges' certificate, for
#                              their clients (DNS:edge-dcD) and for the ledger (.../edge/dcD)
#   dispenser-users            users: `app` (issue) and `ops` (admin) with generated secrets
#   dispenser-admin-tls        ca.pem, admin.pem, admin-key.pem, for operators' jobs
#
# <dir> keeps the CA, the keys and the tokens (app.token, ops.token: user:secret, what
# DISPENSER_TOKEN_FILE points at); keep it off the cluster. Run again: what exists is kept.
# cluster-id must be the ledger's DISPENSER_LEDGER_CLUSTER_ID (default region-1).
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 <dir> [cluster-id]" >&2
  exit 64
fi
dir=$1
cluster=${2:-region-1}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
umask 077

names=()
for n in ledger-1 ledger-2 ledger-3 edge-dc0 edge-dc1 edge-dc2 admin-ops; do
  [ -f "$dir/$n.pem" ] || names+=("$n")
done
if [ ${#names[@]} -gt 0 ]; then
  "$here/../certs/make-dev-certs.sh" "$dir" "$cluster" "${names[@]}" >&2
fi
if [ ! -f "$dir/users" ]; then
  : >"$dir/users"
  for u in app:issue ops:admin; do
    name=${u%%:*}
    role=${u#*:}
    secret=$(openssl rand -hex 24)
    printf '%s:%s\n' "$name" "$secret" >"$dir/$name.token"
    printf '%s %s sha256:%s\n' "$name" "$role" "$(printf %s "$secret" | sha256sum | cut -d' ' -f1)" >>"$dir/users"
  done
fi

# secret <name> <key>=<file>...: one Secret as YAML.
secret() {
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  labels:\n    app.kubernetes.io/part-of: dispenser\ntype: Opaque\ndata:\n' "$1"
  shift
  for kv in "$@"; do
    printf '  %s: %s\n' "${kv%%=*}" "$(base64 -w0 <"${kv#*=}")"
  done
}

secret dispenser-ledger-tls "ca.pem=$dir/ca.pem" \
  "ledger-1.pem=$dir/ledger-1.pem" "ledger-1-key.pem=$dir/ledger-1-key.pem" \
  "ledger-2.pem=$dir/ledger-2.pem" "ledger-2-key.pem=$dir/ledger-2-key.pem" \
  "ledger-3.pem=$dir/ledger-3.pem" "ledger-3-key.pem=$dir/ledger-3-key.pem"
for dc in 0 1 2; do
  secret "dispenser-edge-dc$dc-tls" "ca.pem=$dir/ca.pem" "edge.pem=$dir/edge-dc$dc.pem" "edge-key.pem=$dir/edge-dc$dc-key.pem"
done
secret dispenser-users "users=$dir/users"
secret dispenser-admin-tls "ca.pem=$dir/ca.pem" "admin.pem=$dir/admin-ops.pem" "admin-key.pem=$dir/admin-ops-key.pem"
