#!/usr/bin/env bash
# A development CA and certificates for one dispenser cluster, with openssl only.
#
#   deploy/certs/make-dev-certs.sh <out-dir> <cluster-id> <name>...
#
# Each <name> is role-id: ledger-1, ledger-2, edge-eu1, admin-ops. The certificate of <role>-<id>
# names its identity in a URI SAN, dispenser://<cluster-id>/<role>/<id>, which is what the
# processes check (see packages/plumbing/src/tls.ts); it also carries IP:127.0.0.1, DNS:localhost
# and DNS:<name>, so clients that check hostnames accept a node's certificate on loopback and in
# compose/k8s. Writes ca.pem, ca-key.pem and <name>.pem, <name>-key.pem; an existing CA in
# <out-dir> is reused, so more names can be added later. For production, issue the same SANs
# from your own CA; keep ca-key.pem off the machines that run the cluster.
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 <out-dir> <cluster-id> <role>-<id>..." >&2
  exit 64
fi
out=$1
cluster=$2
shift 2
part='^[A-Za-z0-9._-]{1,128}$'
[[ $cluster =~ $part ]] || { echo "cluster id '$cluster' must match $part" >&2; exit 64; }

mkdir -p "$out"
umask 077
if [ ! -f "$out/ca.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -keyout "$out/ca-key.pem" -out "$out/ca.pem" -subj "/CN=dispenser dev CA ($cluster)" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

for name in "$@"; do
  role=${name%%-*}
  id=${name#*-}
  case $role in ledger | edge | admin) ;; *) echo "'$name': the role must be ledger, edge or admin" >&2; exit 64 ;; esac
  [[ $id != "$name" && $id =~ $part ]] || { echo "'$name' is not <role>-<id>" >&2; exit 64; }
  ext=$(mktemp)
  printf 'subjectAltName=URI:dispenser://%s/%s/%s,IP:127.0.0.1,DNS:localhost,DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' \
    "$cluster" "$role" "$id" "$name" >"$ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$out/$name-key.pem" \
    -out "$out/$name.csr" -subj "/CN=$name" 2>/dev/null
  openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" -CAcreateserial \
    -days 825 -extfile "$ext" -out "$out/$name.pem" 2>/dev/null
  rm -f "$out/$name.csr" "$ext"
done
chmod 0644 "$out"/*.pem
chmod 0600 "$out"/*-key.pem
echo "wrote $out: ca.pem and $* (dispenser://$cluster/<role>/<id>)"
