#!/bin/sh
# A throw-away CA and a certificate for localhost / 127.0.0.1 signed by it,
# for examples/tls/handover.yaml. Run it again to issue a new certificate
# (new serial, same CA): a running master sees the files change and serves
# the new one without a restart.
#
#   sh examples/tls/make-certs.sh [DIR]        (default: examples/tls/certs)
#   curl --cacert examples/tls/certs/ca.crt https://127.0.0.1:8443/
set -eu
out=${1:-"$(cd "$(dirname "$0")" && pwd)/certs"}
mkdir -p "$out"
cd "$out"
umask 077
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

if [ ! -f ca.crt ] || [ ! -f ca.key ]; then
  # shellcheck disable=SC2086
  openssl req -x509 $ec -days 30 -subj "/CN=handover example CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout ca.key -out ca.crt 2>/dev/null
  chmod 644 ca.crt
fi

# Issue into new files, then rename them over the served ones: a reader
# never sees a half-written file, and the key lands a moment after the
# certificate, which the watch waits for.
# shellcheck disable=SC2086
openssl req $ec -subj "/CN=localhost" -keyout tls.key.new -out tls.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' > leaf.ext
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" -days 7 \
  -extfile leaf.ext -out tls.crt.new 2>/dev/null
chmod 644 tls.crt.new
rm -f tls.csr leaf.ext
mv -f tls.crt.new tls.crt
mv -f tls.key.new tls.key
openssl x509 -in tls.crt -noout -subject -serial -enddate
