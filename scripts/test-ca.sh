#!/bin/sh
# Test PKI for hvagent's engine transport (STOMP over mutual TLS), in VDSM's file layout:
#   scripts/test-ca.sh DIR
# DIR/certs/cacert.pem        the test CA ([tls] ca)
# DIR/certs/vdsmcert.pem      host certificate, CN=localhost, SAN localhost + 127.0.0.1 ([tls] cert)
# DIR/keys/vdsmkey.pem        its key ([tls] key)
# DIR/client/cert.pem, key.pem  an "engine" client certificate signed by the test CA
# DIR/other/cacert.pem, DIR/other/cert.pem, key.pem  a second CA and a client it signed
#                             (hvagent must refuse it)
# Idempotent: an existing DIR/certs/cacert.pem is kept. Needs only openssl. Not for production.
set -eu
dir=${1:?usage: test-ca.sh DIR}
[ -f "$dir/certs/cacert.pem" ] && exit 0
mkdir -p "$dir/certs" "$dir/keys" "$dir/client" "$dir/other"
chmod 700 "$dir/keys"
cd "$dir"
days=3650
ca() {  # ca DIR CN
    openssl req -x509 -newkey rsa:2048 -nodes -days $days -subj "/O=hvagent test/CN=$2" \
        -keyout "$1/cakey.pem" -out "$1/cacert.pem" 2>/dev/null
}
issue() {  # issue CADIR CERT KEY CN EXT
    openssl req -newkey rsa:2048 -nodes -subj "/O=hvagent test/CN=$4" \
        -keyout "$3" -out req.csr 2>/dev/null
    printf '%s\n' "$5" > ext.cnf
    openssl x509 -req -in req.csr -CA "$1/cacert.pem" -CAkey "$1/cakey.pem" -CAcreateserial \
        -days $days -extfile ext.cnf -out "$2" 2>/dev/null
    rm -f req.csr ext.cnf
}
mkdir -p ca
ca ca "hvagent test engine CA"
cp ca/cacert.pem certs/cacert.pem
issue ca certs/vdsmcert.pem keys/vdsmkey.pem localhost \
    "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
issue ca client/cert.pem client/key.pem engine "extendedKeyUsage=clientAuth"
ca other "another CA"
issue other other/cert.pem other/key.pem intruder "extendedKeyUsage=clientAuth"
chmod 600 keys/vdsmkey.pem client/key.pem other/key.pem ca/cakey.pem other/cakey.pem
