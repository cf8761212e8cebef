#!/usr/bin/env bash
# Writes a throwaway certificate authority and a server certificate it signed, for TLS tests:
#   DIR/ca.pem          the CA certificate clients trust
#   DIR/server.pem      the server certificate (localhost, 127.0.0.1), valid for two days
#   DIR/server.key      its private key (PKCS#8 PEM)
# Usage: scripts/make-test-certs.sh DIR
set -euo pipefail
dir=${1:?usage: make-test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
curve=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${curve[@]}" -days 2 -subj /CN=osprey-test-ca \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req "${curve[@]}" -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null
printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
  'keyUsage=digitalSignature' 'extendedKeyUsage=serverAuth' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
