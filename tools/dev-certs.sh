#!/usr/bin/env bash
# Makes a throw-away CA and a server certificate for 127.0.0.1/localhost into DIR
# (for `make run` and the tests). Never commit what it writes.
set -euo pipefail
dir=${1:?usage: dev-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -s server.pem ] && [ -s server.key ] && [ -s ca.pem ] && exit 0
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=imscloud dev CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth,clientAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile ext.cnf -out server.pem 2>/dev/null
rm -f server.csr ext.cnf ca.srl
chmod 644 ca.pem server.pem
