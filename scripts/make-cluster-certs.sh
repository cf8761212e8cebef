#!/usr/bin/env bash
# Makes certificates for mutual TLS inside an Osprey cluster (--cluster-tls-cert, -key, -ca)
# with openssl:
#   DIR/ca.pem, DIR/ca.key      the cluster's certificate authority: made on the first call,
#                               reused by the next ones. Keep ca.key off the cluster's hosts.
#   DIR/NAME.pem, DIR/NAME.key  one process's certificate (EC P-256, for server and client
#                               authentication), naming SAN, signed by the CA
# Usage: scripts/make-cluster-certs.sh DIR NAME [SAN]
#   SAN defaults to DNS:localhost,IP:127.0.0.1; name every address others dial the process by,
#   e.g. scripts/make-cluster-certs.sh certs executor-1 DNS:executor-1.osprey,IP:10.0.0.5
# The files are written to temporary names and renamed into place, so a process that reloads
# them never reads half a file. Certificates are valid for 30 days: for tests and trials; in
# production they come from your CA (on Kubernetes, cert-manager: deploy/kubernetes/README.md).
set -euo pipefail
dir=${1:?usage: make-cluster-certs.sh DIR NAME [SAN]}
name=${2:?usage: make-cluster-certs.sh DIR NAME [SAN]}
san=${3:-DNS:localhost,IP:127.0.0.1}
mkdir -p "$dir"
cd "$dir"
curve=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
if [ ! -f ca.pem ] || [ ! -f ca.key ]; then
  openssl req -x509 "${curve[@]}" -days 30 -subj "/CN=osprey-cluster-ca" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout ca.key -out ca.pem 2>/dev/null
  chmod 600 ca.key
fi
work=$(mktemp -d "./.$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
openssl req "${curve[@]}" -subj "/CN=$name" -keyout "$work/key" -out "$work/csr" 2>/dev/null
printf '%s\n' "subjectAltName=$san" 'basicConstraints=CA:FALSE' \
  'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth,clientAuth' > "$work/ext"
openssl x509 -req -in "$work/csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile "$work/ext" -out "$work/pem" 2>/dev/null
chmod 600 "$work/key"
mv "$work/key" "$name.key"
mv "$work/pem" "$name.pem"
