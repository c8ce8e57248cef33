#!/bin/sh
# One-shot set-up of the Compose trial (deploy/compose.yaml), run by its
# "setup" service before the auth servers start; it does what an operator
# does once for a new deployment:
#
#   - a master key (shared by both auth server instances);
#   - a throw-away CA and a certificate for the names the containers use
#     (auth, gateway) and for localhost, since tokens and passwords never
#     travel in clear text, not even between containers (the CA's key is
#     deleted once the certificate is signed);
#   - the schema (keycard migrate);
#   - the gateway's service client and its configuration file;
#   - three users: admin (role admin), demo (role customer) and viewer,
#     with generated passwords printed once, here.
#
# Everything lands in $SETUP_DIR (a volume the other services mount
# read-only). A second run finds it done and changes nothing; to start
# over, `docker compose -f deploy/compose.yaml down -v`.
#
# Settings (the compose file sets them): KEYCARD_STORE, KEYCARD (the
# binary), SETUP_DIR, AUTH_HOST and AUTH_PORT (where the gateway reaches the
# auth servers; also the issuer's host), GATEWAY_PORT, WEATHER_URL,
# ORDERS_URL, RUN_AS (owner of the files: the image's unprivileged user).
set -eu

KEYCARD=${KEYCARD:-/out/keycard}
SETUP_DIR=${SETUP_DIR:-/setup}
AUTH_HOST=${AUTH_HOST:-auth}
AUTH_PORT=${AUTH_PORT:-4000}
GATEWAY_PORT=${GATEWAY_PORT:-8443}
WEATHER_URL=${WEATHER_URL:-http://weather:8080}
ORDERS_URL=${ORDERS_URL:-http://orders:8080}
RUN_AS=${RUN_AS:-65532:65532}
: "${KEYCARD_STORE:?KEYCARD_STORE must name the PostgreSQL database}"

umask 077
cd "$SETUP_DIR"
if [ -f done ]; then
	echo "keycard setup: already done (docker compose down -v starts over)"
	exit 0
fi

echo "keycard setup: master key"
head -c 32 /dev/urandom | base64 >master.key

echo "keycard setup: a throw-away CA and a certificate for $AUTH_HOST, gateway, localhost"
mkdir -p tls
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	-subj "/CN=Keycard compose trial CA" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-keyout tls/ca-key.pem -out tls/ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$AUTH_HOST" \
	-keyout tls/key.pem -out tls/cert.csr 2>/dev/null
printf 'subjectAltName=DNS:%s,DNS:gateway,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' \
	"$AUTH_HOST" >tls/ext.cnf
openssl x509 -req -in tls/cert.csr -CA tls/ca.pem -CAkey tls/ca-key.pem -CAcreateserial \
	-days 825 -extfile tls/ext.cnf -out tls/cert.pem 2>/dev/null
rm -f tls/ca-key.pem tls/ca.srl tls/cert.csr tls/ext.cnf
chmod 0644 tls/ca.pem tls/cert.pem

echo "keycard setup: schema"
"$KEYCARD" migrate

echo "keycard setup: the gateway's service client"
client=$("$KEYCARD" clients add --name gateway)
client_id=$(printf '%s' "$client" | sed -n 's/.*"client_id":"\([^"]*\)".*/\1/p')
client_secret=$(printf '%s' "$client" | sed -n 's/.*"client_secret":"\([^"]*\)".*/\1/p')
if [ -z "$client_id" ] || [ -z "$client_secret" ]; then
	echo "keycard setup: unexpected output of keycard clients add" >&2
	exit 1
fi
printf '%s\n' "$client_secret" >gateway.secret

cat >gateway.yaml <<EOF
# Written by deploy/compose-setup.sh. The gateway rereads this file when it
# changes: edit it in the volume (docker compose exec … is not possible on
# the distroless image; docker compose cp it out and back) to try a reload.
listen: 0.0.0.0:$GATEWAY_PORT
tls:
  cert: tls/cert.pem
  key: tls/key.pem
metrics_listen: 0.0.0.0:9090
issuer: https://$AUTH_HOST:$AUTH_PORT
issuer_ca: tls/ca.pem
upstream_ca: tls/ca.pem
audience: api
client:
  id: $client_id
  secret_file: gateway.secret
routes:
  - path: /weather/
    upstream: $WEATHER_URL
    scopes: [weather:read]
  - path: /orders/
    methods: [POST]
    upstream: $ORDERS_URL
    scopes: [orders:write]
  # Everything else is the auth server (both instances, by round-robin
  # DNS): login, refresh, logout and the web pages, through one origin.
  - path: /
    upstream: https://$AUTH_HOST:$AUTH_PORT
    auth: none
EOF

echo "keycard setup: users (each password is shown only now)"
add_user() {
	name=$1
	shift
	# The generated password goes to stderr, the new user's JSON to stdout.
	if ! said=$("$KEYCARD" users add --username "$name" "$@" 2>&1 >/dev/null); then
		printf 'keycard setup: users add %s: %s\n' "$name" "$said" >&2
		exit 1
	fi
	pass=$(printf '%s\n' "$said" | sed -n 's/^generated password (shown only now): //p')
	if [ -z "$pass" ]; then
		echo "keycard setup: users add $name printed no password" >&2
		exit 1
	fi
	printf '  %-7s %s\n' "$name" "$pass"
}
add_user admin --role admin
add_user demo --role customer
add_user viewer

chown -R "$RUN_AS" .
chmod 0400 master.key gateway.secret tls/key.pem
touch done
echo "keycard setup: done; the gateway will listen on https://localhost:$GATEWAY_PORT (trust tls/ca.pem)"
